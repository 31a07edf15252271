"""The ONNX Runtime backend: fp32 parity with torch eager, a free batch dimension, honest providers."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from tests.policy.backends.trained import exported_artifact, parity_set, trained_artifact
from vla_kit.errors import ArtifactError, BackendError, ChecksumMismatchError, InputError
from vla_kit.policy import load_policy, write_artifact
from vla_kit.policy.backends import OrtPolicy
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE

FP32_ATOL = 1e-4  # normalised action units; measured ~5e-7 on the trained tiny model


@pytest.fixture(scope="module")
def onnx_policy() -> OrtPolicy:
    return load_policy(exported_artifact())


@pytest.fixture(scope="module")
def torch_policy():
    return load_policy(trained_artifact())


@pytest.fixture(scope="module")
def inputs(onnx_policy):
    return onnx_policy.processor.preprocess(parity_set())[0]


def test_artifact_records_its_backend_so_a_plain_load_uses_onnxruntime(onnx_policy):
    assert isinstance(onnx_policy, OrtPolicy)
    assert onnx_policy.session.get_providers() == ["CPUExecutionProvider"]


def test_fp32_graph_matches_torch_eager_on_the_same_inputs(onnx_policy, torch_policy, inputs):
    reference = torch_policy.infer(inputs)
    np.testing.assert_allclose(onnx_policy.infer(inputs), reference, rtol=0, atol=FP32_ATOL)


def test_predicted_chunks_match_torch_after_shared_post_processing(onnx_policy, torch_policy):
    obs = parity_set()[0]
    # De-normalised: action stds here are ~0.01-0.07, so 1e-4 normalised is < 1e-5 in action units.
    np.testing.assert_allclose(onnx_policy.predict(obs).actions, torch_policy.predict(obs).actions, rtol=0, atol=1e-5)


def test_batch_dimension_is_free(onnx_policy, inputs):
    batch = onnx_policy.infer(inputs)
    for size in (1, 3):
        part = type(inputs)(**{k: v[:size] for k, v in inputs.as_dict().items()})
        np.testing.assert_allclose(onnx_policy.infer(part), batch[:size], rtol=0, atol=1e-6)


def test_parameter_count_is_the_stored_weights(onnx_policy, torch_policy):
    torch_count = torch_policy.num_parameters
    # The exporter stores the keypoint grid buffer (2 x 48 x 48) as an initializer too.
    assert torch_count <= onnx_policy.num_parameters <= torch_count * 1.01


def test_provider_missing_from_this_build_is_a_backend_error_listing_the_available_ones():
    message = r"\['NoSuchExecutionProvider'\] are not in this onnxruntime build; available: .*CPUExecutionProvider"
    with pytest.raises(BackendError, match=message):
        load_policy(exported_artifact(), providers=["NoSuchExecutionProvider"])


@pytest.mark.filterwarnings("ignore:Specified provider .CUDAExecutionProvider. is not in available")
def test_provider_that_silently_falls_back_to_cpu_is_a_backend_error(monkeypatch):
    # Pretend the build has CUDA: the session is then created without it, as on a host whose
    # CUDA libraries fail to load, and only the fallback check stands between that and a CPU run.
    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with pytest.raises(BackendError, match=r"requested \['CUDAExecutionProvider'\] but the session runs on \['CPUExecutionProvider'\]"):
        load_policy(exported_artifact(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_threads_below_one_are_rejected():
    with pytest.raises(InputError, match="threads"):
        load_policy(exported_artifact(), threads=0)


def test_tampered_graph_refuses_to_load(tmp_path):
    copy = shutil.copytree(exported_artifact(), tmp_path / "p")
    data = bytearray((copy / ONNX_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / ONNX_FILE).write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        load_policy(copy)


def test_graph_with_other_inputs_is_an_artifact_error(tmp_path, spec):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    graph.ir_version = 8
    ort_spec = spec.model_copy(update={"backend": "onnxruntime"})
    path = write_artifact(tmp_path / "p", ort_spec, lambda d: onnx.save(graph, str(d / ONNX_FILE)))
    with pytest.raises(ArtifactError, match=r"graph takes \['x'\] and returns \['y'\]; expected inputs \['images'"):
        load_policy(path)


def test_unloadable_graph_is_an_artifact_error(tmp_path, spec):
    ort_spec = spec.model_copy(update={"backend": "onnxruntime"})
    path = write_artifact(tmp_path / "p", ort_spec, lambda d: (d / ONNX_FILE).write_bytes(b"not onnx"))
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load it"):
        load_policy(path)
