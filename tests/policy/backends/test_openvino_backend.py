"""The OpenVINO backend: fp32 parity with torch on the exported graph, IR preferred, clear errors.

Needs the optional ``openvino`` package; without it the parity tests skip with the install line,
and the missing-package error is tested either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.policy.backends.trained import exported_artifact, parity_set, trained_artifact
from vla_kit import deps
from vla_kit.errors import BackendError, MissingDependencyError
from vla_kit.policy import load_policy
from vla_kit.policy.backends import OpenVinoPolicy
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE

needs_openvino = pytest.mark.skipif(
    not deps.is_available("openvino"), reason=f"openvino is not installed: {deps.install_hint('openvino')}"
)


@needs_openvino
def test_onnx_artifact_runs_on_openvino_like_torch_eager():
    policy = load_policy(exported_artifact(), backend="openvino")
    assert isinstance(policy, OpenVinoPolicy) and policy.model_file.name == ONNX_FILE
    inputs, _ = policy.processor.preprocess(parity_set())
    # f32 inference precision is forced: the CPU plugin would pick bf16 by itself on this CPU.
    np.testing.assert_allclose(policy.infer(inputs), load_policy(trained_artifact()).infer(inputs), rtol=0, atol=1e-4)
    first = type(inputs)(**{k: v[:1] for k, v in inputs.as_dict().items()})
    np.testing.assert_allclose(policy.infer(first), policy.infer(inputs)[:1], atol=1e-6)  # the batch is free


@needs_openvino
def test_unavailable_device_is_a_backend_error_listing_the_devices():
    with pytest.raises(BackendError, match=r"device 'NPU7' is not available; this host has \[.*'CPU'"):
        load_policy(exported_artifact(), backend="openvino", device="NPU7")


def test_missing_openvino_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(deps.OPTIONAL, "openvino", deps.OptionalDependency("vla_kit_no_such_openvino", "openvino", "OpenVINO inference"))
    with pytest.raises(MissingDependencyError, match=r"pip install 'vla_kit\[openvino\]'"):
        load_policy(exported_artifact(), backend="openvino")


def test_backend_reports_why_it_is_unavailable(monkeypatch):
    monkeypatch.setitem(deps.OPTIONAL, "openvino", deps.OptionalDependency("vla_kit_no_such_openvino", "openvino", "OpenVINO inference"))
    assert OpenVinoPolicy.unavailable() == "the 'openvino' package is not installed: pip install 'vla_kit[openvino]'"
