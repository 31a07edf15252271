"""Figures of the ``optimize`` stage: the Pareto chart, latency distributions, action-error histogram."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["pareto", "latency_distributions", "error_histogram", "candidate_table", "chain_table"]

_STATUS_COLOURS = {"ok": "#2a7ab9", "failed-parity": "#d1495b", "selected": "#2e9e44"}


def pareto(rows: Sequence[Mapping[str, Any]], selected: str | None, *, max_success_drop_pp: float | None = None):
    """Latency (x, log) against closed-loop success (y); marker area grows with size on disk.

    Candidates on the Pareto front (nothing both faster and at least as successful) are joined by
    a line; the selected one is green, parity failures red.
    """
    import plotly.graph_objects as go

    pts = [r for r in rows if r.get("latency_p50_ms") is not None and math.isfinite(r["latency_p50_ms"]) and r.get("success_rate") is not None and math.isfinite(r["success_rate"])]
    fig = go.Figure()
    if not pts:
        fig.update_layout(title="No candidate was measured")
        return fig
    biggest = max(r["size_bytes"] for r in pts) or 1
    for r in pts:
        kind = "selected" if r["name"] == selected else ("failed-parity" if r["status"] == "failed-parity" else "ok")
        fig.add_trace(go.Scatter(
            x=[r["latency_p50_ms"]], y=[100 * r["success_rate"]], mode="markers+text", text=[r["name"]], textposition="top center",
            marker=dict(size=12 + 30 * math.sqrt(r["size_bytes"] / biggest), color=_STATUS_COLOURS[kind], opacity=0.8, line=dict(width=1, color="#333")),
            name=r["name"], showlegend=False,
            hovertemplate=f"{r['name']}<br>{r['chain']}<br>p50 %{{x:.2f}} ms<br>success %{{y:.0f}} %<br>{r['size_bytes'] / 2**20:.2f} MiB<extra></extra>",
        ))
    front = sorted(pts, key=lambda r: (r["latency_p50_ms"], -r["success_rate"]))
    best, line = -1.0, []
    for r in front:
        if r["success_rate"] > best:
            line.append(r)
            best = r["success_rate"]
    fig.add_trace(go.Scatter(x=[r["latency_p50_ms"] for r in line], y=[100 * r["success_rate"] for r in line], mode="lines",
                             line=dict(dash="dot", color="#888"), name="Pareto front", hoverinfo="skip"))
    base = pts[0] if pts[0]["name"] == rows[0]["name"] else None
    if base is not None and max_success_drop_pp is not None:
        fig.add_hline(y=100 * base["success_rate"] - max_success_drop_pp, line_dash="dash", line_color="#d1495b",
                      annotation_text=f"success budget (baseline − {max_success_drop_pp:g} pp)", annotation_position="bottom right")
    fig.update_xaxes(type="log", title="batch-1 latency p50, ms (log)")
    fig.update_yaxes(title="closed-loop success, %", range=[-5, 110])
    fig.update_layout(title="Latency vs success (marker area: size on disk; green: selected; red: failed parity)", height=480,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig


def latency_distributions(samples: Mapping[str, Sequence[float]], order: Sequence[str] | None = None):
    """One box per candidate over its batch-1 latency samples (whiskers to p1/p99 extremes)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name in order or list(samples):
        if name in samples and len(samples[name]):
            fig.add_trace(go.Box(x=np.asarray(samples[name]), name=name, boxpoints="outliers", orientation="h"))
    fig.update_xaxes(title="batch-1 latency, ms", type="log")
    fig.update_layout(title="Latency distribution per candidate (same observations, same threads)", showlegend=False,
                      height=120 + 40 * max(1, len(fig.data)), margin=dict(l=140, r=20, t=60, b=50))
    return fig


def error_histogram(errors: Mapping[str, np.ndarray], bins: int = 60):
    """Histogram of |candidate − baseline| over every action element of the parity chunks (log y)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    finite = [v for v in errors.values() if len(v)]
    top = max((float(np.percentile(v, 99.9)) for v in finite), default=1.0) or 1.0
    edges = np.linspace(0, top, bins + 1)
    for name, v in errors.items():
        if len(v):
            counts, _ = np.histogram(np.clip(v, 0, top), bins=edges)
            fig.add_trace(go.Scatter(x=0.5 * (edges[1:] + edges[:-1]), y=np.maximum(counts, 0.5), mode="lines", name=name, line_shape="hvh"))
    fig.update_yaxes(type="log", title="action elements")
    fig.update_xaxes(title="|candidate − baseline|, in action std units")
    fig.update_layout(title="Action error against the fp32 baseline on held-out observations", height=420, margin=dict(l=60, r=20, t=60, b=50))
    return fig


def candidate_table(table):
    """The candidate table, compact enough to read (every field is also in ``metrics.json``).

    Success difference and its 95 % interval are one column; latency is p50 / p99.
    """
    import pandas as pd

    def num(v, fmt):
        return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)

    rows = []
    for r in table.to_dict("records"):
        rows.append({
            "candidate": r["name"], "backend": r["backend"] or "—", "precision": r["precision"] or "—", "status": r["status"],
            "p50 / p99 ms": f"{num(r['latency_p50_ms'], '.2f')} / {num(r['latency_p99_ms'], '.2f')}",
            "speedup": num(r["speedup"], ".2f"),
            "success %": num(None if r["success_rate"] is None else 100 * r["success_rate"], ".0f"),
            "Δ pp [95% CI]": "—" if r["success_diff_pp"] is None or not math.isfinite(r["success_diff_pp"])
            else f"{r['success_diff_pp']:+.0f} [{r['success_diff_ci_low_pp']:+.0f}, {r['success_diff_ci_high_pp']:+.0f}]",
            "action err (mean / max)": f"{num(r['action_error_mean'], '.3g')} / {num(r['action_error_max'], '.3g')}",
            "MiB": num(r["size_mib"], ".2f"), "peak MiB": num(r["peak_memory_mib"], ".0f"),
            "GFLOP/s": num(r["achieved_gflops"], ".1f"), "of peak": num(r["roofline_efficiency"], ".0%"),
        })
    return pd.DataFrame(rows)


def chain_table(table):
    """Candidate -> the chain of steps that built it."""
    return table[["name", "chain"]].rename(columns={"name": "candidate", "chain": "steps"})
