"""Measured compute and memory peaks of this host: the roofline the profile stage judges against.

GEMM throughput is measured per precision with every kernel family a deployed policy could use
(PyTorch's, and ONNX Runtime's integer GEMM, which is what ORT int8 models run on x86), and the
peak for a precision is the best of them. Memory bandwidth is measured STREAM-style (copy and
triad over arrays far larger than the caches). Each figure is the best of repeated timed samples,
each sample looping long enough to be timed reliably; medians are kept to show the spread.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ["GemmSample", "BandwidthSample", "HostPeaks", "measure_peaks", "time_call"]


@dataclass(frozen=True)
class GemmSample:
    """One (kernel, size) GEMM measurement. ``gflops`` are 2·n³ / time (GOP/s for int8)."""

    kernel: str
    precision: str
    device: str
    n: int
    threads: int
    best_s: float | None
    median_s: float | None
    gflops_best: float | None
    gflops_median: float | None
    status: str  # "ok", or "failed: <why>"


@dataclass(frozen=True)
class BandwidthSample:
    """One memory-bandwidth measurement. Bytes counted STREAM-style (copy: 2 arrays, triad: 3)."""

    kernel: str
    device: str
    mib: int
    best_s: float
    gbs_best: float
    gbs_median: float


@dataclass
class HostPeaks:
    """The best measured figure per precision and device, with where it came from."""

    peaks: dict[str, dict[str, float | None]] = field(default_factory=dict)  # device -> {fp32_gflops, ...}
    best_kernel: dict[str, dict[str, str]] = field(default_factory=dict)  # device -> precision -> kernel
    gemm: list[GemmSample] = field(default_factory=list)
    bandwidth: list[BandwidthSample] = field(default_factory=list)
    threads: int = 0
    load_before: float | None = None  # 1-minute load average when measuring started (other work skews peaks)
    cores: int | None = None

    @property
    def host_was_busy(self) -> bool:
        """True when other processes kept more than a quarter of the cores busy as measuring began."""
        return bool(self.load_before is not None and self.cores and self.load_before > 0.25 * self.cores)

    def for_device(self, device: str = "cpu") -> dict[str, float | None]:
        """``{fp32_gflops, bf16_gflops, fp16_gflops, int8_gops, mem_bw_gbs}`` for ``device``."""
        return dict(self.peaks.get(device, {}))

    def labelled(self) -> dict[str, dict[str, float | None]]:
        """Peaks per device under readable labels (``"this host, CPU (measured)"``), CPU first."""
        names = {"cpu": "CPU", "cuda": "GPU"}
        order = sorted(self.peaks, key=lambda d: d != "cpu")
        return {f"this host, {names.get(d, d)} (measured)": dict(self.peaks[d]) for d in order}

    def as_dict(self) -> dict:
        """Plain data for ``metrics.json``."""
        return {
            "peaks": self.peaks,
            "best_kernel": self.best_kernel,
            "threads": self.threads,
            "load_before": self.load_before,
            "host_was_busy": self.host_was_busy,
            "gemm": [asdict(s) for s in self.gemm],
            "bandwidth": [asdict(s) for s in self.bandwidth],
        }


def time_call(fn: Callable[[], object], *, repeats: int, min_sample_s: float, sync: Callable[[], None] = lambda: None) -> list[float]:
    """Seconds per call of ``fn``, one value per timed sample.

    One warm-up call, then a calibration call sets how many calls each sample loops over so it
    lasts at least ``min_sample_s`` (short calls are too noisy to time one by one).
    """
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-9)
    loops = max(1, math.ceil(min_sample_s / once))
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        sync()
        out.append((time.perf_counter() - t0) / loops)
    return out


@contextmanager
def _torch_threads(n: int) -> Iterator[int]:
    import torch

    before = torch.get_num_threads()
    want = n or os.cpu_count() or 1
    torch.set_num_threads(want)
    try:
        yield want
    finally:
        torch.set_num_threads(before)


def _sample(kernel: str, precision: str, device: str, n: int, threads: int, times: list[float] | None, err: str = "") -> GemmSample:
    if not times:
        return GemmSample(kernel, precision, device, n, threads, None, None, None, None, f"failed: {err}")
    flops = 2.0 * n**3
    best, med = min(times), statistics.median(times)
    return GemmSample(kernel, precision, device, n, threads, best, med, flops / best / 1e9, flops / med / 1e9, "ok")


def _torch_gemm(dtype_name: str, n: int, device: str, repeats: int, min_s: float, seed: int) -> list[float]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if dtype_name == "int8":
        a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen).to(device)
        b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen).to(device)
        return time_call(lambda: torch._int_mm(a, b), repeats=repeats, min_sample_s=min_s, sync=sync)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    with torch.inference_mode():
        return time_call(lambda: torch.mm(a, b), repeats=repeats, min_sample_s=min_s, sync=sync)


def _ort_int8_gemm(n: int, threads: int, repeats: int, min_s: float, seed: int) -> list[float]:
    """u8 x s8 -> s32 MatMulInteger: the kernel ORT's quantized models use on x86 (VNNI when present)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "int8_gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n]), helper.make_tensor_value_info("B", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {"A": rng.integers(0, 256, (n, n), dtype=np.uint8), "B": rng.integers(-128, 128, (n, n), dtype=np.int8)}
    return time_call(lambda: sess.run(None, feeds), repeats=repeats, min_sample_s=min_s)


def _bandwidth(device: str, mib: int, repeats: int, min_s: float) -> list[BandwidthSample]:
    import torch

    n = mib * 2**20 // 4
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a = torch.empty(n, dtype=torch.float32, device=device)
    b = torch.ones(n, dtype=torch.float32, device=device)
    c = torch.full((n,), 2.0, dtype=torch.float32, device=device)
    out = []
    for kernel, arrays, fn in (
        ("copy", 2, lambda: a.copy_(b)),
        ("triad", 3, lambda: torch.add(b, c, alpha=3.0, out=a)),
    ):
        times = time_call(fn, repeats=repeats, min_sample_s=min_s, sync=sync)
        nbytes = arrays * n * 4
        out.append(BandwidthSample(kernel, device, mib, min(times), nbytes / min(times) / 1e9, nbytes / statistics.median(times) / 1e9))
    del a, b, c
    return out


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def measure_peaks(
    *,
    sizes: Sequence[int],
    repeats: int,
    min_sample_ms: float,
    bandwidth_mib: int,
    bandwidth_repeats: int,
    threads: int = 0,
    seed: int = 0,
    devices: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> HostPeaks:
    """Measure GEMM peaks (fp32, bf16, int8 on CPU; plus fp16 on CUDA) and memory bandwidth.

    Args:
        sizes: square GEMM sizes ``n`` to time; the peak is the best over sizes.
        repeats: timed samples per (kernel, size); the best sample is the peak.
        min_sample_ms: each sample loops until at least this long.
        bandwidth_mib: MiB per array in the bandwidth test (use far more than the last-level cache).
        bandwidth_repeats: timed samples for bandwidth.
        threads: CPU threads for torch and ONNX Runtime; 0 = all cores.
        seed: seed for the input matrices.
        devices: ``["cpu"]``, ``["cpu", "cuda"]``; default: cpu, plus cuda when available.
        progress: called with a short line before each measurement.

    Returns:
        :class:`HostPeaks`. A kernel that fails is recorded with status ``failed: ...`` and does
        not count towards the peak.
    """
    devs = list(devices) if devices is not None else (["cpu", "cuda"] if _cuda_available() else ["cpu"])
    say = progress or (lambda _msg: None)
    min_s = min_sample_ms / 1000.0
    result = HostPeaks(cores=os.cpu_count())
    try:
        result.load_before = round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        result.load_before = None
    with _torch_threads(threads) as nthreads:
        result.threads = nthreads
        for device in devs:
            plan: list[tuple[str, str, Callable[[int], list[float]]]] = [
                ("torch fp32", "fp32", lambda n, d=device: _torch_gemm("fp32", n, d, repeats, min_s, seed)),
                ("torch bf16", "bf16", lambda n, d=device: _torch_gemm("bf16", n, d, repeats, min_s, seed)),
                ("torch int8 (_int_mm)", "int8", lambda n, d=device: _torch_gemm("int8", n, d, repeats, min_s, seed)),
            ]
            if device == "cpu":
                plan.append(("onnxruntime int8 (MatMulInteger u8s8)", "int8", lambda n: _ort_int8_gemm(n, nthreads, repeats, min_s, seed)))
            else:
                plan.insert(2, ("torch fp16", "fp16", lambda n, d=device: _torch_gemm("fp16", n, d, repeats, min_s, seed)))
            for kernel, precision, run in plan:
                for n in sizes:
                    say(f"GEMM {kernel} n={n} on {device}")
                    try:
                        times, err = run(n), ""
                    except Exception as e:  # a kernel missing on this build/device is a finding, not a crash
                        times, err = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    result.gemm.append(_sample(kernel, precision, device, n, nthreads, times, err))
            say(f"memory bandwidth on {device} ({bandwidth_mib} MiB arrays)")
            result.bandwidth.extend(_bandwidth(device, bandwidth_mib, bandwidth_repeats, min_s))
            peaks: dict[str, float | None] = {"fp32_gflops": None, "bf16_gflops": None, "fp16_gflops": None, "int8_gops": None}
            kernels: dict[str, str] = {}
            for s in result.gemm:
                if s.device != device or s.gflops_best is None:
                    continue
                key = "int8_gops" if s.precision == "int8" else f"{s.precision}_gflops"
                if peaks[key] is None or s.gflops_best > peaks[key]:
                    peaks[key] = round(s.gflops_best, 2)
                    kernels[s.precision] = f"{s.kernel} n={s.n}"
            bw = [b for b in result.bandwidth if b.device == device]
            best_bw = max(bw, key=lambda b: b.gbs_best)
            peaks["mem_bw_gbs"] = round(best_bw.gbs_best, 2)
            kernels["memory"] = f"{best_bw.kernel} {best_bw.mib} MiB"
            result.peaks[device] = peaks
            result.best_kernel[device] = kernels
    return result
