"""Figures and tables of the ``safety_validate`` stage: the scenario matrix, intervention timelines,
joint trajectories and velocities against the envelope, separation from a person.

Each function takes the battery's data (:class:`~vla_kit.validate.battery.ScenarioResult`, its
:meth:`~vla_kit.validate.battery.ScenarioResult.row` dicts, an
:class:`~vla_kit.validate.episode.EpisodeTrace`) and returns a pandas DataFrame or a plotly Figure,
so the notebook cell is one call. Long traces are thinned to at most :data:`MAX_POINTS` points per
line (half that for the 21 lines of the joint positions), keeping the worst value of each thinned
stretch where it matters (the highest safety level, the highest velocity, the smallest distance,
the largest ``S_p``), so nothing a reviewer must see is averaged away and the offline HTML report
stays small; plotted values are float32.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from vla_kit.safety.records import Level

if TYPE_CHECKING:
    from vla_kit.validate.battery import GateFailure, ScenarioResult
    from vla_kit.validate.episode import EpisodeTrace

__all__ = [
    "scenario_matrix",
    "highlight_failures",
    "intervention_timelines",
    "joint_trajectories",
    "joint_velocities",
    "separation_plot",
    "LEVEL_COLOURS",
    "MAX_POINTS",
]

MAX_POINTS = 2000  # points per line (cells per timeline strip) before a trace is thinned
LIMIT_COLOUR = "#d1495b"
LEVEL_COLOURS: dict[Level, str] = {
    Level.SAFE: "#2e9e44",
    Level.CAUTION: "#f2c14e",
    Level.WARNING: "#f08a24",
    Level.DANGER: "#d1495b",
    Level.EMERGENCY: "#6b0f1a",
}
_PASS = "✓ pass"
_FAIL = "✗ "
_FAILED_ROW = "background-color: #f8d7da"
_NEAR_LIMIT_RAD = 0.3  # a position limit this close to the plotted range is drawn as a line


# ---------------------------------------------------------------------------------------------- tables


def _pct(num: int, den: int) -> str:
    """``num/den`` as a percentage that never rounds a miss up to 100 %."""
    p = 100.0 * num / den
    s = f"{p:.0f}"
    if num < den and s == "100":
        s = f"{p:.1f}" if f"{p:.1f}" != "100.0" else ">99.9"
    return f"{s} %"


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _failure_text(f: GateFailure) -> str:
    value = "missed" if math.isinf(f.value) else format(f.value, ".3g")
    return f"{f.check} = {value} (limit {f.threshold:g})"


def scenario_matrix(rows: Sequence[Mapping[str, Any]], failures: Sequence[GateFailure] = ()):
    """One row per scenario: success, interventions, violations, detection, e-stop latency,
    separation margin and the gate's verdict ("✓ pass", or "✗ " and every failed check).

    Args:
        rows: :meth:`ScenarioResult.row` dicts, in battery order.
        failures: :func:`~vla_kit.validate.battery.check_gate`'s failures (failures of scenarios not
            in ``rows`` are ignored).

    Missing values are "—": no fault injected, no non-finite command to stop on, no person. An
    e-stop that never came is "missed". Show it with ``reports.table(...)``, or
    :func:`highlight_failures` to colour the failed rows.
    """
    import pandas as pd

    by_scenario: dict[str, list[str]] = {}
    for f in failures:
        by_scenario.setdefault(f.scenario, []).append(_failure_text(f))
    out = []
    for r in rows:
        n = int(r.get("episodes") or 0)
        rate = r.get("success_rate")
        success = f"{round(rate * n)}/{n} ({100 * rate:.0f} %)" if n and _finite(rate) else "—"
        irate = r.get("intervention_rate")
        injected, detected = sum((r.get("injected") or {}).values()), sum((r.get("detected") or {}).values())
        est = r.get("estop_latency_cycles")
        margin = r.get("min_separation_margin_m")
        failed = by_scenario.get(r["scenario"], [])
        out.append({
            "scenario": r["scenario"],
            "category": r.get("category", ""),
            "success": success,
            "interventions": f"{100 * irate:.1f} %" if _finite(irate) else "—",
            "violations": int(r.get("violations") or 0),
            "detection": f"{_pct(detected, injected)} ({detected}/{injected})" if injected else "—",
            "e-stop latency (cycles)": "—" if est is None else ("missed" if est < 0 else str(int(est))),
            "min separation margin (mm)": f"{1000.0 * margin:+.1f}" if _finite(margin) else "—",
            "verdict": _FAIL + "; ".join(failed) if failed else _PASS,
        })
    columns = ["scenario", "category", "success", "interventions", "violations", "detection", "e-stop latency (cycles)",
               "min separation margin (mm)", "verdict"]
    return pd.DataFrame(out, columns=columns)


def highlight_failures(table):
    """Red background on the rows whose verdict is not a pass.

    Args:
        table: :func:`scenario_matrix`'s DataFrame, or the Styler ``reports.table`` made of it
            (``charts.highlight_failures(reports.table(charts.scenario_matrix(rows, failures)))``).

    Returns:
        A pandas Styler (inline CSS, so the colour survives in the offline HTML report).
    """
    styler = table.style if hasattr(table, "style") else table

    def paint(row):
        bad = not str(row.get("verdict", _PASS)).startswith(_PASS)
        return [_FAILED_ROW if bad else "" for _ in row]

    return styler.apply(paint, axis=1)


# ------------------------------------------------------------------------------------------- helpers


def _stride(n: int, max_points: int = MAX_POINTS) -> int:
    return max(1, math.ceil(n / max_points))


def _reduce(a: np.ndarray, stride: int, how: str) -> np.ndarray:
    """Thin ``a`` (first axis) by ``stride``, keeping each stretch's NaN-aware max or min (NaN if all NaN)."""
    a = np.asarray(a, dtype=np.float64)
    if stride <= 1:
        return a
    n = len(a)
    pad = (-n) % stride
    padded = np.concatenate([a, np.full((pad, *a.shape[1:]), np.nan)]) if pad else a
    blocks = padded.reshape(-1, stride, *a.shape[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN stretches stay NaN
        return np.nanmax(blocks, axis=1) if how == "max" else np.nanmin(blocks, axis=1)


def _finite_or_nan(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def _f32(a: np.ndarray) -> np.ndarray:
    """Plotted values as float32: half the bytes in the report, far finer than a pixel."""
    return np.asarray(a, dtype=np.float32)


def _empty(title: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=title, height=200)
    return fig


def _joint_names(trace: EpisodeTrace) -> tuple[str, ...]:
    from vla_kit.robots.models import get_robot_model

    return tuple(get_robot_model(trace.envelope.robot).joint_names)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` index pairs of the True stretches of ``mask``."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


# ------------------------------------------------------------------------------------------- figures


def _level_colourscale() -> list[list]:
    """A stepped colourscale over ``[-0.5, 4.5]``: one flat band per :class:`Level`."""
    n = len(LEVEL_COLOURS)
    scale: list[list] = []
    for i, colour in enumerate(LEVEL_COLOURS.values()):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


def intervention_timelines(results: Sequence[ScenarioResult], max_cells: int = MAX_POINTS):
    """One strip per scenario (its shown episode, :attr:`ScenarioResult.trace`): the safety level of
    every cycle over time, with a black tick where a fault was injected (at the layer, or a frozen
    camera at the loop).

    Strips of shorter episodes end early (blank); a scenario without a kept trace is a blank strip.
    Above ``max_cells`` cycles, every cell shows the worst level of the cycles it covers.
    """
    import plotly.graph_objects as go

    names = [r.scenario.name for r in results]
    traces = [r.trace if r.trace is not None and r.trace.cycles else None for r in results]
    kept = [t for t in traces if t is not None]
    if not kept:
        return _empty("No scenario kept a trace")
    span = max(t.cycles * t.dt for t in kept)
    finest = min(t.dt for t in kept)
    width = _stride(math.ceil(span / finest - 1e-9), max_cells) * finest  # seconds per cell
    ncol = max(1, math.ceil(span / width - 1e-9))
    z = np.full((len(results), ncol), np.nan, dtype=np.float32)
    tick_x: list[float] = []
    tick_y: list[str] = []
    tick_kind: list[str] = []
    centres = (np.arange(ncol) + 0.5) * width
    for row, (name, trace) in enumerate(zip(names, traces)):
        if trace is None:
            continue
        col = np.minimum(((np.arange(trace.cycles) + 0.5) * trace.dt / width).astype(np.int64), ncol - 1)
        worst = np.full(ncol, -1, dtype=np.int64)
        np.maximum.at(worst, col, np.asarray(trace.level, dtype=np.int64))
        z[row] = np.where(worst >= 0, worst, np.nan)
        kinds: dict[int, list[str]] = {}
        for kind, mask in trace.injected.items():
            mask = np.asarray(mask, dtype=bool)[: trace.cycles]
            for c in np.unique(col[: len(mask)][mask]).tolist():
                kinds.setdefault(c, []).append(kind)
        for c in sorted(kinds):
            tick_x.append(float(centres[c]))
            tick_y.append(name)
            tick_kind.append(", ".join(kinds[c]))

    level_names = [lv.name for lv in LEVEL_COLOURS]
    fig = go.Figure(go.Heatmap(
        z=z, x=_f32(centres), y=names, zmin=-0.5, zmax=len(level_names) - 0.5, colorscale=_level_colourscale(),
        colorbar=dict(title="level", tickvals=list(range(len(level_names))), ticktext=level_names, len=min(1.0, 0.2 + 0.05 * len(names))),
        xgap=0, ygap=2, hoverongaps=False, hovertemplate="%{y}<br>t %{x:.3f} s<br>level %{z:.0f}<extra></extra>",
    ))
    if tick_x:
        fig.add_trace(go.Scatter(
            x=tick_x, y=tick_y, mode="markers", name="fault injected", customdata=tick_kind,
            marker=dict(symbol="line-ns-open", size=9, color="black", line=dict(width=1.5, color="black")),
            hovertemplate="%{y}<br>t %{x:.3f} s<br>injected: %{customdata}<extra></extra>",
        ))
    thinned = "" if width <= finest * (1 + 1e-9) else f"; one cell = {width * 1e3:.3g} ms, its worst level"
    fig.update_xaxes(title="time in the episode, s", range=[0.0, ncol * width])
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(
        title=f"Safety level per cycle, one episode per scenario: the first, or the first that failed a check (ticks: injected faults{thinned})",
        height=140 + 26 * len(names), margin=dict(l=140, r=20, t=60, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    return fig


def joint_trajectories(trace: EpisodeTrace, title: str, max_points: int = MAX_POINTS // 2):
    """Seven stacked panels (one per joint, shared time axis): the command the layer received
    (thin grey; gaps where it was non-finite), what it sent (solid) and what the arm measured
    (dotted), with the envelope's position limits as dashed red lines where they are within
    0.3 rad of the plotted range (otherwise the limits are in the panel's title)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not trace.cycles:
        return _empty(f"{title}: no cycles recorded")
    names = _joint_names(trace)
    lim = trace.envelope.limits
    s = _stride(trace.cycles, max_points)
    t = _f32(np.asarray(trace.t)[::s])
    series = {
        "commanded": (_f32(_finite_or_nan(trace.q_cmd)[::s]), dict(color="#999", width=1), 0.9),
        "sent": (_f32(_finite_or_nan(trace.q_sent)[::s]), dict(color="#2a7ab9", width=1.8), 1.0),
        "measured": (_f32(_finite_or_nan(trace.q_meas)[::s]), dict(color="#333", width=1.5, dash="dot"), 1.0),
    }
    titles, draw = [], []
    for j, name in enumerate(names):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanmin([np.nanmin(a[:, j]) for a, _, _ in series.values()])
            hi = np.nanmax([np.nanmax(a[:, j]) for a, _, _ in series.values()])
        near_lo = bool(np.isfinite(lo) and lo - lim.q_min[j] <= _NEAR_LIMIT_RAD)
        near_hi = bool(np.isfinite(hi) and lim.q_max[j] - hi <= _NEAR_LIMIT_RAD)
        draw.append((near_lo, near_hi))
        titles.append(name if near_lo and near_hi else f"{name}  [{lim.q_min[j]:.2f}, {lim.q_max[j]:.2f}] rad")

    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.025, subplot_titles=titles)
    for j in range(len(names)):
        for label, (a, line, opacity) in series.items():
            fig.add_trace(go.Scatter(x=t, y=a[:, j], mode="lines", name=label, legendgroup=label, showlegend=j == 0,
                                     line=line, opacity=opacity, connectgaps=False,
                                     hovertemplate=f"{label} %{{y:.4f}} rad<br>t %{{x:.3f}} s<extra>{names[j]}</extra>"),
                          row=j + 1, col=1)
        for near, value in zip(draw[j], (lim.q_min[j], lim.q_max[j])):
            if near:
                fig.add_hline(y=float(value), line_dash="dash", line_color=LIMIT_COLOUR, line_width=1, row=j + 1, col=1)
        fig.update_yaxes(title_text="rad", title_standoff=2, row=j + 1, col=1)
    fig.update_xaxes(title_text="time, s", row=len(names), col=1)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=f"{title}: joint positions (grey: commanded, blue: sent, dotted: measured; dashed red: envelope limit)",
                      height=90 + 150 * len(names), margin=dict(l=60, r=20, t=80, b=50),
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="right", x=1.0))
    return fig


def joint_velocities(trace: EpisodeTrace, title: str, max_points: int = MAX_POINTS):
    """|velocity| of the sent command (backward differences from rest at ``q0``, as the audit
    computes it) per joint, as a fraction of the envelope's ``v_max``; 1.0 is the limit.

    A non-finite command counts as holding the previous target (what the arm does). Thinned
    traces keep each stretch's peak."""
    import plotly.graph_objects as go

    if not trace.cycles:
        return _empty(f"{title}: no cycles recorded")
    names = _joint_names(trace)
    lim = trace.envelope.limits
    q = trace.received()
    v = np.abs(np.diff(np.vstack([np.asarray(trace.q0, dtype=np.float64)[None, :], q]), axis=0)) / trace.dt
    frac = v / np.asarray(lim.v_max)[None, :]
    s = _stride(trace.cycles, max_points)
    peak = _f32(_reduce(frac, s, "max"))
    t = _f32(np.asarray(trace.t)[::s])
    fig = go.Figure()
    for j, name in enumerate(names):
        fig.add_trace(go.Scatter(x=t, y=peak[:, j], mode="lines", name=f"{name} (v_max {lim.v_max[j]:.3g} rad/s)", line=dict(width=1.3),
                                 hovertemplate=f"{name}<br>t %{{x:.3f}} s<br>%{{y:.1%}} of v_max<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dash", line_color=LIMIT_COLOUR, annotation_text="v_max (envelope)", annotation_position="top left")
    caution = getattr(trace.envelope, "caution_fraction", None)
    if caution is not None and 0.0 < caution < 1.0:
        fig.add_hline(y=float(caution), line_dash="dot", line_color=LEVEL_COLOURS[Level.WARNING], line_width=1,
                      annotation_text="caution", annotation_position="bottom left")
    top = float(np.nanmax(peak)) if np.isfinite(peak).any() else 1.0
    fig.update_yaxes(title="|q̇ sent| / v_max", range=[0.0, max(1.1, 1.05 * top)])
    fig.update_xaxes(title="time, s")
    fig.update_layout(title=f"{title}: joint speed of the sent command, as a fraction of the limit", height=420,
                      margin=dict(l=60, r=20, t=60, b=50))
    return fig


def separation_plot(trace: EpisodeTrace, max_points: int = MAX_POINTS):
    """Distance from the person to the arm and the protective separation distance ``S_p``
    (ISO/TS 15066) over time, shaded where the layer held a protective stop (level >= DANGER).

    Returns ``None`` when no person was in the scene. Thinned traces keep each stretch's smallest
    distance and largest ``S_p``.
    """
    import plotly.graph_objects as go

    d = _finite_or_nan(trace.human_distance)
    if not np.isfinite(d).any():
        return None
    s = _stride(trace.cycles, max_points)
    t = np.asarray(trace.t)
    td = _f32(t[::s])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=td, y=_f32(_reduce(d, s, "min")), mode="lines", name="distance to the person", line=dict(color="#2a7ab9", width=2),
                             hovertemplate="t %{x:.3f} s<br>distance %{y:.3f} m<extra></extra>"))
    fig.add_trace(go.Scatter(x=td, y=_f32(_reduce(_finite_or_nan(trace.protective), s, "max")), mode="lines", name="S_p (protective separation)",
                             line=dict(color=LIMIT_COLOUR, width=1.5, dash="dash"), hovertemplate="t %{x:.3f} s<br>S_p %{y:.3f} m<extra></extra>"))
    stopped = np.asarray(trace.level) >= int(Level.DANGER)
    for k, (a, b) in enumerate(_runs(stopped)):
        fig.add_vrect(x0=float(t[a] - trace.dt), x1=float(t[b - 1]), fillcolor=LEVEL_COLOURS[Level.DANGER], opacity=0.15, line_width=0,
                      layer="below", name="protective stop (level ≥ DANGER)", showlegend=k == 0)
    fig.update_xaxes(title="time, s")
    fig.update_yaxes(title="m", rangemode="tozero")
    fig.update_layout(title="Separation from the person: the arm must be stopping whenever the distance is below S_p (shaded: stopped)",
                      height=400, margin=dict(l=60, r=20, t=60, b=50))
    return fig
