"""Which inference backends work on this host — proven by running a tiny model, not by import.

Every probe runs the same two-layer MLP with the same seeded weights and compares its output with
a float64 NumPy reference, so "ok" means: importable, the device is there, and the numbers are
right. ONNX Runtime is probed once per execution provider, and a provider that silently falls
back to the CPU is reported as failed — that fallback is the classic surprise on edge boxes.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from vla_kit import deps
from vla_kit.registry import Registry

__all__ = ["ProbeResult", "TinyModel", "PROBES", "probe_all", "tiny_model"]

TOLERANCE = 1e-3  # max |output - float64 reference| accepted for an fp32 backend


@dataclass(frozen=True)
class ProbeResult:
    """The verdict on one backend.

    ``status``: ``ok`` (ran and matched the reference), ``failed`` (present but broken or wrong),
    ``unavailable`` (package or device absent; ``detail`` says what to install or where it runs),
    ``skipped`` (switched off by a parameter, or not meaningful here).
    """

    name: str
    backend: str
    device: str
    status: str
    version: str | None
    max_abs_err: float | None
    latency_ms: float | None
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TinyModel:
    """A 64 -> 128 -> 32 ReLU MLP with fixed weights, its input and its float64 reference output."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    x: np.ndarray
    reference: np.ndarray

    def onnx_bytes(self) -> bytes:
        """The same MLP as an ONNX graph (input ``x`` [1, 64], output ``y`` [1, 32])."""
        from onnx import TensorProto, helper, numpy_helper

        inits = [numpy_helper.from_array(a, n) for a, n in ((self.w1, "w1"), (self.b1, "b1"), (self.w2, "w2"), (self.b2, "b2"))]
        nodes = [
            helper.make_node("MatMul", ["x", "w1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["h2"]),
            helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
            helper.make_node("Add", ["h3", "b2"], ["y"]),
        ]
        graph = helper.make_graph(
            nodes, "vla_kit_probe_mlp",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(self.reference.shape))],
            initializer=inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vla_kit")
        model.ir_version = 8  # readable by every ORT/TensorRT/OpenVINO release still in the field
        return model.SerializeToString()

    def torch_module(self):
        """The MLP as a ``torch.nn.Sequential`` in eval mode."""
        import torch

        lin1, lin2 = torch.nn.Linear(64, 128), torch.nn.Linear(128, 32)
        with torch.no_grad():
            lin1.weight.copy_(torch.from_numpy(self.w1.T.copy()))
            lin1.bias.copy_(torch.from_numpy(self.b1))
            lin2.weight.copy_(torch.from_numpy(self.w2.T.copy()))
            lin2.bias.copy_(torch.from_numpy(self.b2))
        return torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2).eval()


def tiny_model(seed: int = 0) -> TinyModel:
    """The probe model for ``seed``."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((64, 128)) / 8).astype(np.float32)
    b1 = (rng.standard_normal(128) / 8).astype(np.float32)
    w2 = (rng.standard_normal((128, 32)) / 11).astype(np.float32)
    b2 = (rng.standard_normal(32) / 11).astype(np.float32)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    h = np.maximum(x.astype(np.float64) @ w1 + b1, 0.0)
    return TinyModel(w1, b1, w2, b2, x, h @ w2 + b2)


def _judge(name: str, backend: str, device: str, version: str | None, model: TinyModel, run: Callable[[], np.ndarray], detail: str = "") -> ProbeResult:
    """Run ``run`` a few times, compare with the reference, time it (median)."""
    y = np.asarray(run(), dtype=np.float64).reshape(model.reference.shape)
    err = float(np.max(np.abs(y - model.reference)))
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    lat = statistics.median(times) * 1e3
    if not np.isfinite(err) or err > TOLERANCE:
        return ProbeResult(name, backend, device, "failed", version, err, lat, f"output differs from the reference by {err:.3g} (> {TOLERANCE:g})")
    return ProbeResult(name, backend, device, "ok", version, err, lat, detail or "matches the float64 reference")


# A probe takes (tiny model, options) and returns one or more results.
ProbeFn = Callable[[TinyModel, dict], list[ProbeResult]]
PROBES: Registry[ProbeFn] = Registry("backend probe")


def _torch_version() -> str:
    import torch

    return torch.__version__


def _probe_torch_cpu(model: TinyModel, opts: dict) -> list[ProbeResult]:
    import torch

    mod = model.torch_module()
    x = torch.from_numpy(model.x)

    def run():
        with torch.inference_mode():
            return mod(x).numpy()

    return [_judge("torch-cpu", "torch", "cpu", _torch_version(), model, run, f"{torch.get_num_threads()} threads")]


def _probe_torch_cuda(model: TinyModel, opts: dict) -> list[ProbeResult]:
    import torch

    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return [ProbeResult("torch-cuda", "torch", "cuda", "unavailable", _torch_version(), None, None, f"no CUDA device visible to torch ({built})")]
    mod = model.torch_module().cuda()
    x = torch.from_numpy(model.x).cuda()

    def run():
        with torch.inference_mode():
            y = mod(x)
            torch.cuda.synchronize()
            return y.cpu().numpy()

    return [_judge("torch-cuda", "torch", torch.cuda.get_device_name(0), _torch_version(), model, run)]


def _probe_torch_compile(model: TinyModel, opts: dict) -> list[ProbeResult]:
    import torch

    if not opts.get("probe_torch_compile", True):
        return [ProbeResult("torch-compile", "torch.compile", "cpu", "skipped", _torch_version(), None, None, "disabled by survey.probe_torch_compile")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mod = model.torch_module().to(device)
    x = torch.from_numpy(model.x).to(device)
    try:
        compiled = torch.compile(mod, mode="default", dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(x)
        compile_s = time.perf_counter() - t0
    except Exception as e:  # inductor needs a C++ compiler (CPU) or Triton (GPU); say which failed
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return [ProbeResult("torch-compile", "torch.compile", device, "failed", _torch_version(), None, None, f"{type(e).__name__}: {msg[:300]}")]

    def run():
        with torch.inference_mode():
            y = compiled(x)
            if device == "cuda":
                torch.cuda.synchronize()
            return y.cpu().numpy()

    return [_judge("torch-compile", "torch.compile", device, _torch_version(), model, run, f"inductor; first call (compile) {compile_s:.1f} s")]


def _probe_onnxruntime(model: TinyModel, opts: dict) -> list[ProbeResult]:
    import onnxruntime as ort

    out = []
    blob = model.onnx_bytes()
    threads = int(opts.get("threads") or 0)
    for ep in ort.get_available_providers():
        name = f"onnxruntime-{ep.removesuffix('ExecutionProvider').lower()}"
        if ep == "AzureExecutionProvider":
            out.append(ProbeResult(name, "onnxruntime", "remote", "skipped", ort.__version__, None, None, "remote-inference provider, not a local backend"))
            continue
        try:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            sess = ort.InferenceSession(blob, so, providers=[ep])
            used = sess.get_providers()
            if not used or used[0] != ep:
                out.append(ProbeResult(name, "onnxruntime", ep, "failed", ort.__version__, None, None, f"session fell back to {used[0] if used else 'nothing'}"))
                continue
            feeds = {"x": model.x}
            out.append(_judge(name, "onnxruntime", ep, ort.__version__, model, lambda: sess.run(None, feeds)[0]))
        except Exception as e:  # a provider listed but unusable (missing driver libs) is a finding
            out.append(ProbeResult(name, "onnxruntime", ep, "failed", ort.__version__, None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"))
    return out


def _probe_tensorrt(model: TinyModel, opts: dict) -> list[ProbeResult]:
    if not deps.is_available("tensorrt"):
        return [ProbeResult("tensorrt", "tensorrt", "cuda", "unavailable", None, None, None, f"not installed: {deps.install_hint('tensorrt')}")]
    import torch

    trt = deps.require("tensorrt")
    if not torch.cuda.is_available():
        return [ProbeResult("tensorrt", "tensorrt", "cuda", "unavailable", trt.__version__, None, None, "TensorRT is installed but no CUDA GPU is visible")]
    try:
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        major = int(trt.__version__.split(".")[0])
        flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(model.onnx_bytes()):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            return [ProbeResult("tensorrt", "tensorrt", "cuda", "failed", trt.__version__, None, None, f"ONNX parse failed: {errs}")]
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            return [ProbeResult("tensorrt", "tensorrt", "cuda", "failed", trt.__version__, None, None, "engine build returned nothing")]
        engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
        context = engine.create_execution_context()
        x = torch.from_numpy(model.x).cuda()
        y = torch.empty(model.reference.shape, dtype=torch.float32, device="cuda")
        context.set_tensor_address("x", x.data_ptr())
        context.set_tensor_address("y", y.data_ptr())
        stream = torch.cuda.current_stream()

        def run():
            context.execute_async_v3(stream.cuda_stream)
            stream.synchronize()
            return y.cpu().numpy()

        return [_judge("tensorrt", "tensorrt", torch.cuda.get_device_name(0), trt.__version__, model, run, "fp32 engine built from ONNX")]
    except Exception as e:
        return [ProbeResult("tensorrt", "tensorrt", "cuda", "failed", trt.__version__, None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")]


def _probe_openvino(model: TinyModel, opts: dict) -> list[ProbeResult]:
    if not deps.is_available("openvino"):
        return [ProbeResult("openvino", "openvino", "cpu", "unavailable", None, None, None, f"not installed: {deps.install_hint('openvino')}")]
    ov = deps.require("openvino")
    version = getattr(ov, "__version__", None) or deps.version_of("openvino")
    try:
        core = ov.Core()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "probe.onnx"
            path.write_bytes(model.onnx_bytes())
            compiled = core.compile_model(core.read_model(str(path)), "CPU")
        request = compiled.create_infer_request()

        def run():
            return np.asarray(request.infer({0: model.x})[compiled.outputs[0]])

        return [_judge("openvino", "openvino", "CPU", version, model, run, f"devices: {', '.join(core.available_devices)}")]
    except Exception as e:
        return [ProbeResult("openvino", "openvino", "cpu", "failed", version, None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")]


for _name, _fn in (
    ("torch-cpu", _probe_torch_cpu),
    ("torch-cuda", _probe_torch_cuda),
    ("torch-compile", _probe_torch_compile),
    ("onnxruntime", _probe_onnxruntime),
    ("tensorrt", _probe_tensorrt),
    ("openvino", _probe_openvino),
):
    PROBES.register(_name, _fn)


def probe_all(
    *,
    seed: int = 0,
    threads: int = 0,
    probe_torch_compile: bool = True,
    names: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ProbeResult]:
    """Run every registered probe (or ``names``) and return one result per backend/provider.

    A probe that raises is reported as ``failed`` with the exception, never propagated: the
    survey is about finding out what breaks.
    """
    import torch

    model = tiny_model(seed)
    opts = {"threads": threads, "probe_torch_compile": probe_torch_compile}
    before = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    results: list[ProbeResult] = []
    try:
        for name in list(names) if names is not None else PROBES.names():
            if progress:
                progress(f"probing {name}")
            try:
                results.extend(PROBES.get(name)(model, opts))
            except Exception as e:
                results.append(ProbeResult(name, name, "?", "failed", None, None, None, f"{type(e).__name__}: {e}"))
    finally:
        torch.set_num_threads(before)
    return results
