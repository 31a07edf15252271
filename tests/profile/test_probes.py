"""Backend probes prove a backend by running it, and never crash the survey."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit import deps
from vla_kit.profile import probes


def test_tiny_model_onnx_graph_matches_its_reference():
    import onnxruntime as ort

    m = probes.tiny_model(3)
    sess = ort.InferenceSession(m.onnx_bytes(), providers=["CPUExecutionProvider"])
    assert np.max(np.abs(sess.run(None, {"x": m.x})[0] - m.reference)) < 1e-4


def test_cpu_backends_work_here():
    results = {r.name: r for r in probes.probe_all(names=["torch-cpu", "onnxruntime"], probe_torch_compile=False)}
    assert results["torch-cpu"].status == "ok" and results["torch-cpu"].max_abs_err < probes.TOLERANCE
    assert results["onnxruntime-cpu"].status == "ok" and results["onnxruntime-cpu"].latency_ms > 0


def test_absent_optional_backend_says_what_to_install():
    if deps.is_available("openvino"):
        pytest.skip("openvino is installed here")
    (r,) = probes.probe_all(names=["openvino"])
    assert r.status == "unavailable" and "pip install 'vla_kit[openvino]'" in r.detail


def test_tensorrt_without_cuda_or_package_is_unavailable_with_the_reason():
    import torch

    if deps.is_available("tensorrt") and torch.cuda.is_available():
        pytest.skip("TensorRT and CUDA present: covered by the GPU test")
    (r,) = probes.probe_all(names=["tensorrt"])
    assert r.status == "unavailable" and ("vla_kit[tensorrt]" in r.detail or "no CUDA GPU" in r.detail)


def test_wrong_numbers_are_a_failed_probe():
    m = probes.tiny_model(0)
    r = probes._judge("bad", "x", "cpu", None, m, lambda: m.reference + 0.1)
    assert r.status == "failed" and "differs from the reference" in r.detail


def test_a_probe_that_raises_is_reported_not_propagated():
    def broken(model, opts):
        raise RuntimeError("driver mismatch")

    probes.PROBES.register("broken-test-probe", broken)
    try:
        (r,) = probes.probe_all(names=["broken-test-probe"])
    finally:
        probes.PROBES.unregister("broken-test-probe")
    assert r.status == "failed" and "driver mismatch" in r.detail


@pytest.mark.gpu
def test_gpu_backends_work_where_cuda_exists():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine (runs on the GPU device)")
    results = {r.name: r for r in probes.probe_all(probe_torch_compile=False)}
    assert results["torch-cuda"].status == "ok"
    if deps.is_available("tensorrt"):
        assert results["tensorrt"].status == "ok", results["tensorrt"].detail
