"""Tables and plotly figures of the survey: backends, peaks, GEMM scaling, platforms, roofline.

Each function takes the survey's data objects and returns a pandas DataFrame or a plotly Figure,
so the notebook cell is one call.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from vla_kit.profile.host import HostInfo
from vla_kit.profile.peaks import HostPeaks
from vla_kit.profile.platforms import PRECISIONS, get_platform, load_catalogue, roofline
from vla_kit.profile.probes import ProbeResult

__all__ = [
    "host_table",
    "backends_table",
    "peaks_table",
    "busy_warning",
    "gemm_scaling_figure",
    "platform_bars_figure",
    "roofline_figure",
    "target_summary",
]

_STATUS_MARK = {"ok": "✓ ok", "failed": "✗ failed", "unavailable": "– unavailable", "skipped": "· skipped"}


def host_table(info: HostInfo):
    """Two-column table of the host's properties."""
    import pandas as pd

    return pd.DataFrame(info.summary_rows(), columns=["property", "value"]).set_index("property")


def backends_table(results: Sequence[ProbeResult]):
    """One row per backend: status, version, device, error vs reference, latency, detail."""
    import pandas as pd

    rows = [
        {
            "backend": r.name,
            "status": _STATUS_MARK.get(r.status, r.status),
            "version": r.version or "",
            "device": r.device,
            "max |err|": None if r.max_abs_err is None else float(f"{r.max_abs_err:.2g}"),
            "latency ms (tiny MLP)": None if r.latency_ms is None else round(r.latency_ms, 4),
            "detail": r.detail,
        }
        for r in results
    ]
    return pd.DataFrame(rows).set_index("backend")


def peaks_table(peaks: HostPeaks):
    """Per device: the peak per precision and bandwidth, with the kernel that achieved it."""
    import pandas as pd

    rows = []
    for device, values in peaks.peaks.items():
        kernels = peaks.best_kernel.get(device, {})
        for precision, (attr, label) in PRECISIONS.items():
            if attr in values:
                rows.append({"device": device, "quantity": label, "peak": values[attr], "best kernel": kernels.get(precision, "not measured / failed")})
        rows.append({"device": device, "quantity": "memory GB/s", "peak": values.get("mem_bw_gbs"), "best kernel": kernels.get("memory", "")})
    return pd.DataFrame(rows)


def busy_warning(peaks: HostPeaks) -> str:
    """A Markdown line: whether the host was idle while measuring (peaks need an idle host)."""
    if peaks.load_before is None:
        return "Host load was not available on this platform."
    if peaks.host_was_busy:
        return (
            f"⚠️ **The host was busy** (1-minute load {peaks.load_before:.2f} on {peaks.cores} cores) when measuring "
            "started: the peaks below understate this hardware. Re-run the survey on an idle host."
        )
    return f"Host load when measuring started: {peaks.load_before:.2f} on {peaks.cores} cores (idle enough to trust the peaks)."


def gemm_scaling_figure(peaks: HostPeaks):
    """GFLOP/s (best and median) against GEMM size, one line per kernel and device."""
    import plotly.graph_objects as go

    fig = go.Figure()
    keys = sorted({(s.device, s.kernel) for s in peaks.gemm if s.gflops_best is not None})
    for device, kernel in keys:
        pts = sorted((s for s in peaks.gemm if s.device == device and s.kernel == kernel and s.gflops_best), key=lambda s: s.n)
        fig.add_trace(
            go.Scatter(
                x=[s.n for s in pts], y=[s.gflops_best for s in pts], mode="lines+markers", name=f"{kernel} [{device}]",
                error_y=dict(type="data", symmetric=False, array=[0] * len(pts), arrayminus=[s.gflops_best - s.gflops_median for s in pts], visible=True),
                hovertemplate="n=%{x}<br>%{y:.1f} G(FL)OP/s<extra>" + kernel + "</extra>",
            )
        )
    fig.update_layout(
        title=f"GEMM throughput vs size ({peaks.threads} threads; marker = best sample, whisker down to median)",
        xaxis=dict(title="matrix size n (n×n · n×n)", type="log"), yaxis=dict(title="GFLOP/s (GOP/s for int8)"),
        height=420, legend=dict(orientation="h", y=-0.25),
    )
    return fig


def platform_bars_figure(comparison, *, target: str | None = None):
    """Grouped bars (log scale) of fp32 / bf16 / fp16 / int8 peaks and memory bandwidth per platform."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.68, 0.32], subplot_titles=("compute peak (log scale)", "memory bandwidth GB/s (log)"))
    # Short tick labels (catalogue keys), full names on hover; the host and the target in bold.
    ticks = []
    for i, (name, key) in enumerate(zip(comparison["platform"], comparison["key"])):
        label = name.split(",")[1].split("(")[0].strip() if key == "host" and "," in name else key
        label = f"host {label}" if key == "host" else label
        ticks.append(f"<b>{label}</b>" if key in ("host", target) else label)
    full = list(comparison["platform"])
    for _, (attr, label) in PRECISIONS.items():
        fig.add_trace(go.Bar(name=label, x=ticks, y=comparison[label], customdata=full, hovertemplate="%{customdata}<br>%{y:,.1f}<extra>" + label + "</extra>"), row=1, col=1)
    fig.add_trace(go.Bar(name="memory GB/s", x=ticks, y=comparison["memory GB/s"], customdata=full, marker_color="#7f7f7f", hovertemplate="%{customdata}<br>%{y:,.1f} GB/s<extra></extra>"), row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(barmode="group", height=520, title="This host (measured) against the platform catalogue (published peaks)", legend=dict(orientation="h", y=-0.3), margin=dict(t=90))
    fig.update_xaxes(tickangle=-30)
    return fig


def roofline_figure(host: Mapping[str, float | None], *, target: str, others: Iterable[str] = (), precision: str = "fp32"):
    """Roofline (attainable GFLOP/s vs arithmetic intensity, log-log) of this host and the target.

    A kernel with intensity left of a platform's ridge point is memory-bound there; right of it,
    compute-bound. Small-batch VLA inference sits far left, which is why bandwidth matters.
    """
    import plotly.graph_objects as go

    attr = PRECISIONS[precision][0]
    ai = np.logspace(-2, 3, 200)
    fig = go.Figure()
    series: list[tuple[str, float | None, float | None, dict]] = [
        (f"this host ({precision}, measured)", host.get(attr), host.get("mem_bw_gbs"), dict(width=4, color="#d62728"))
    ]
    tp = get_platform(target)
    series.append((f"target: {tp.name}", tp.peak(precision), tp.mem_bw_gbs, dict(width=3, color="#1f77b4", dash="dash")))
    for key in others:
        if key == target:
            continue
        p = get_platform(key)
        series.append((p.name, p.peak(precision), p.mem_bw_gbs, dict(width=1)))
    for name, peak, bw, line in series:
        if not peak or not bw:
            continue
        fig.add_trace(go.Scatter(x=ai, y=roofline(peak, bw, ai), mode="lines", name=name, line=line, hovertemplate="AI %{x:.2f} FLOP/B<br>%{y:,.1f} GFLOP/s<extra>" + name + "</extra>"))
        ridge = peak / bw
        fig.add_trace(go.Scatter(x=[ridge], y=[peak], mode="markers", marker=dict(size=8, color=line.get("color")), showlegend=False, hovertemplate=f"ridge point {ridge:.1f} FLOP/B<extra>{name}</extra>"))
    fig.update_layout(
        title=f"Roofline ({precision}): attainable throughput vs arithmetic intensity",
        xaxis=dict(title="arithmetic intensity (FLOP per byte of memory traffic)", type="log"),
        yaxis=dict(title="attainable GFLOP/s", type="log"), height=480, legend=dict(orientation="h", y=-0.2),
    )
    return fig


def target_summary(host: Mapping[str, float | None], target: str) -> dict:
    """How the target compares with this host, per precision and for bandwidth.

    Returns:
        ``{"target": key, "target_name": ..., "ratios": {quantity: host / target}, "text": one paragraph}``;
        a ratio above 1 means this host is faster, so timings measured here are optimistic for the target.
    """
    p = get_platform(target)
    ratios: dict[str, float | None] = {}
    for precision, (attr, label) in PRECISIONS.items():
        h, t = host.get(attr), getattr(p, attr)
        ratios[precision] = round(h / t, 3) if h and t else None
    bw = host.get("mem_bw_gbs")
    ratios["memory"] = round(bw / p.mem_bw_gbs, 3) if bw else None
    parts = []
    for q in ("fp32", "int8", "memory"):
        r = ratios.get(q)
        if r is None:
            continue
        if r >= 1:
            parts.append(f"{q}: this host is {r:.2f}× the target")
        else:
            parts.append(f"{q}: the target is {1 / r:.2f}× this host")
    text = (
        f"Target **{p.name}** ({p.compute}). " + "; ".join(parts) + ". "
        "Latency measured here scales by roughly the compute ratio for compute-bound (large-batch) "
        "work and by the memory ratio for memory-bound, batch-1 inference; the profile stage uses these ratios "
        "to estimate target latency before you have the hardware."
    )
    return {"target": p.key, "target_name": p.name, "ratios": ratios, "text": text}


def catalogue_keys() -> list[str]:
    """Every catalogue key (for listing in notebooks and docs)."""
    return [p.key for p in load_catalogue()]
