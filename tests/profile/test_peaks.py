"""Peak measurement: real timings, best kernel per precision, failures recorded not raised."""

from __future__ import annotations

from vla_kit.profile import peaks


def test_small_measurement_yields_positive_peaks_and_names_the_kernels():
    p = peaks.measure_peaks(sizes=[64], repeats=2, min_sample_ms=1, bandwidth_mib=8, bandwidth_repeats=2, devices=["cpu"])
    cpu = p.for_device("cpu")
    assert cpu["fp32_gflops"] > 0 and cpu["bf16_gflops"] > 0 and cpu["int8_gops"] > 0 and cpu["mem_bw_gbs"] > 0
    assert set(p.best_kernel["cpu"]) >= {"fp32", "bf16", "int8", "memory"}
    kernels = {s.kernel for s in p.gemm}
    assert "onnxruntime int8 (MatMulInteger u8s8)" in kernels and "torch fp32" in kernels
    assert list(p.labelled()) == ["this host, CPU (measured)"]
    assert p.as_dict()["gemm"][0]["n"] == 64


def test_a_failing_kernel_is_recorded_and_does_not_count(monkeypatch):
    real = peaks._torch_gemm

    def flaky(dtype_name, *a, **k):
        if dtype_name == "int8":
            raise RuntimeError("no int8 GEMM on this build")
        return real(dtype_name, *a, **k)

    monkeypatch.setattr(peaks, "_torch_gemm", flaky)
    p = peaks.measure_peaks(sizes=[64], repeats=1, min_sample_ms=1, bandwidth_mib=8, bandwidth_repeats=1, devices=["cpu"])
    failed = [s for s in p.gemm if s.status.startswith("failed")]
    assert len(failed) == 1 and "no int8 GEMM" in failed[0].status and failed[0].gflops_best is None
    assert "onnxruntime" in p.best_kernel["cpu"]["int8"]


def test_time_call_loops_short_calls_to_the_minimum_sample_length():
    calls = []
    out = peaks.time_call(lambda: calls.append(1), repeats=3, min_sample_s=0.002)
    assert len(out) == 3 and len(calls) > 3 and all(t > 0 for t in out)


def test_busy_host_flag_uses_the_load_average():
    assert peaks.HostPeaks(load_before=3.0, cores=2).host_was_busy
    assert not peaks.HostPeaks(load_before=0.1, cores=2).host_was_busy
