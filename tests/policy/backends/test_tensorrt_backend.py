"""The TensorRT backend: fp16/int8 engines against torch eager on a CUDA GPU; clear reasons elsewhere.

The engine tests need ``tensorrt`` 10, a CUDA build of torch and a GPU, and skip with the reason
otherwise; what a host without them sees is tested everywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.policy.backends.trained import calibration_set, exported_artifact, parity_set, relative_error, trained_artifact
from vla_kit import deps
from vla_kit.errors import ArtifactError, BackendError
from vla_kit.optimize import OptimizeContext, build_chain, parse_step
from vla_kit.policy import load_policy
from vla_kit.policy.backends import TensorRtPolicy
from vla_kit.policy.backends.tensorrt_backend import cuda_unavailable_reason

REASON = cuda_unavailable_reason()
needs_gpu = pytest.mark.skipif(REASON is not None, reason=f"TensorRT cannot run here: {REASON}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, Path]:
    ctx = OptimizeContext(calibration=calibration_set())
    work = tmp_path_factory.mktemp("trt")
    return {p: build_chain([parse_step(f"tensorrt-{p}", "test")], exported_artifact(), work / p, ctx) for p in ("fp16", "int8")}


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("precision, bound", [("fp16", 0.02), ("int8", 0.15)])
def test_engine_matches_torch_eager_within_its_precision(engines, precision, bound):
    policy = load_policy(engines[precision])
    assert isinstance(policy, TensorRtPolicy)
    inputs, _ = policy.processor.preprocess(parity_set())
    reference = load_policy(trained_artifact()).infer(inputs)
    assert relative_error(policy.infer(inputs), reference) < bound
    assert policy.spec.provenance["tensorrt"]["version"]


@needs_gpu
@pytest.mark.gpu
def test_engine_built_for_another_gpu_is_a_backend_error(engines, tmp_path, monkeypatch):
    import vla_kit.policy.backends.tensorrt_backend as trt_backend

    real = trt_backend.engine_provenance
    monkeypatch.setattr(trt_backend, "engine_provenance", lambda device=0: {**real(device), "compute_capability": "0.1"})
    with pytest.raises(BackendError, match="rebuild it here"):
        load_policy(engines["fp16"])


def test_artifact_without_an_engine_says_which_file_is_missing():
    with pytest.raises(ArtifactError, match="model.engine: missing: the 'tensorrt' backend needs model.engine"):
        load_policy(exported_artifact(), backend="tensorrt")


def test_reason_names_the_install_line_when_tensorrt_is_absent(monkeypatch):
    monkeypatch.setitem(deps.OPTIONAL, "tensorrt", deps.OptionalDependency("vla_kit_no_such_tensorrt", "tensorrt", "TensorRT engines"))
    assert cuda_unavailable_reason() == "the 'tensorrt' package is not installed: pip install 'vla_kit[tensorrt]'"
    assert TensorRtPolicy.unavailable() == cuda_unavailable_reason()
