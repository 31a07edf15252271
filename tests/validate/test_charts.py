"""The stage report's tables and figures, on hand-made traces (no simulator)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.safety.envelope import Envelope
from vla_kit.safety.records import Level
from vla_kit.safety.scenarios import BATTERY
from vla_kit.validate import charts
from vla_kit.validate.battery import EpisodeVerdict, GateFailure, ScenarioResult
from vla_kit.validate.episode import EpisodeTrace, sim_envelope

ENV = sim_envelope(Envelope.from_dict({}))
SCENARIOS = {s.name: s for s in BATTERY}
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])


def make_trace(cycles: int = 120, *, human: bool = False, nan_at: int | None = None, fault: str | None = None) -> EpisodeTrace:
    dt = ENV.period
    t = (np.arange(cycles) + 1) * dt
    q = HOME + 0.05 * np.sin(2 * np.pi * t)[:, None] * np.linspace(0.5, 1.5, 7)[None, :]
    q_cmd = q + 0.001
    level = np.zeros(cycles, dtype=np.int8)
    level[cycles // 3: cycles // 3 + 10] = int(Level.WARNING)
    level[cycles // 2: cycles // 2 + 5] = int(Level.DANGER)
    level[-3:] = int(Level.EMERGENCY)
    injected = {k: np.zeros(cycles, dtype=bool) for k in ("non_finite", "stale", "late", "state_lost")}
    if nan_at is not None:
        q_cmd[nan_at] = np.nan
        injected["non_finite"][nan_at] = True
    if fault is not None:
        injected[fault][cycles // 4: cycles // 4 + 6] = True
    dist = prot = np.full(cycles, np.nan)
    if human:
        dist = np.linspace(2.0, 0.4, cycles)
        prot = np.full(cycles, 0.6)
    return EpisodeTrace(
        seed=0, colour="red", instruction="touch the red cube", dt=dt, q0=q[0].copy(), envelope=ENV, cycles=cycles,
        t=t, q_cmd=q_cmd, q_sent=q.copy(), q_meas=q - 0.0005, level=level, intervened=level >= int(Level.WARNING),
        estop=level == int(Level.EMERGENCY), checks=[()] * cycles, human_distance=dist, protective=prot, injected=injected,
    )


def make_verdict(seed: int, *, success: bool, injected: dict[str, int] | None = None, detected: dict[str, int] | None = None,
                 latency: dict[str, int | None] | None = None, violations: int = 0, margin: float | None = None) -> EpisodeVerdict:
    return EpisodeVerdict(
        seed=seed, success=success, cycles=100, interventions=5, estop=bool(injected), violations=violations,
        violation_examples=(), robot_faults=0, injected=injected or {}, detected=detected or {}, detection_latency=latency or {},
        min_human_distance=None if margin is None else margin + 0.5, min_separation_margin=margin, separation_breaches=0,
        policy_errors=0,
    )


@pytest.fixture
def results() -> list[ScenarioResult]:
    return [
        ScenarioResult(SCENARIOS["nominal"], [make_verdict(0, success=True), make_verdict(1, success=True), make_verdict(2, success=False)],
                       make_trace()),
        ScenarioResult(SCENARIOS["nan-burst"], [make_verdict(0, success=False, injected={"non_finite": 72}, detected={"non_finite": 71},
                                                             latency={"non_finite": 3})], make_trace(200, nan_at=40)),
        ScenarioResult(SCENARIOS["stale-command"], [make_verdict(0, success=True, injected={"stale": 10}, detected={"stale": 10},
                                                                 latency={"stale": 0})], make_trace(80, fault="stale")),
        ScenarioResult(SCENARIOS["human"], [make_verdict(0, success=True, margin=0.123)], make_trace(150, human=True)),
        ScenarioResult(SCENARIOS["dark"], [make_verdict(0, success=True)], None),
    ]


def test_matrix_one_row_per_scenario_and_failed_checks(results):
    failures = [GateFailure("nan-burst", "e-stop latency (cycles)", 3, 1), GateFailure("nan-burst", "fault detection rate", 71 / 72, 1.0)]
    df = charts.scenario_matrix([r.row() for r in results], failures)
    assert list(df["scenario"]) == [r.scenario.name for r in results]
    by = df.set_index("scenario")
    assert by.loc["nominal", "success"] == "2/3 (67 %)"
    assert by.loc["nominal", "verdict"] == "✓ pass"
    assert by.loc["nominal", "detection"] == "—"
    assert "e-stop latency" in by.loc["nan-burst", "verdict"] and "fault detection rate" in by.loc["nan-burst", "verdict"]
    assert by.loc["nan-burst", "verdict"].startswith("✗")
    assert by.loc["nan-burst", "detection"] == "99 % (71/72)"
    assert by.loc["nan-burst", "e-stop latency (cycles)"] == "3"
    assert by.loc["stale-command", "detection"] == "100 % (10/10)"
    assert by.loc["human", "min separation margin (mm)"] == "+123.0"
    html = charts.highlight_failures(df).to_html()
    assert html.count("#f8d7da") >= 1


def test_pct_never_rounds_a_miss_to_100():
    assert charts.scenario_matrix([{"scenario": "x", "episodes": 1, "success_rate": 1.0, "injected": {"stale": 1000}, "detected": {"stale": 999},
                                    "estop_latency_cycles": -1}], [])["detection"][0] == "99.9 % (999/1000)"


def test_timeline_one_strip_per_scenario(results):
    fig = charts.intervention_timelines(results)
    heat = fig.data[0]
    assert list(heat.y) == [r.scenario.name for r in results]
    z = np.asarray(heat.z, dtype=float)
    assert z.shape[0] == len(results)
    assert np.isnan(z[-1]).all()  # no trace kept
    assert np.nanmax(z) == int(Level.EMERGENCY)
    ticks = fig.data[1]
    assert set(ticks.y) == {"nan-burst", "stale-command"}


def test_timeline_thins_long_traces_keeping_the_worst_level():
    trace = make_trace(5000)
    trace.level[:] = 0
    trace.level[1234] = int(Level.EMERGENCY)  # a single cycle must survive thinning
    fig = charts.intervention_timelines([ScenarioResult(SCENARIOS["nominal"], [make_verdict(0, success=True)], trace)])
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape[1] <= charts.MAX_POINTS
    assert np.nanmax(z) == int(Level.EMERGENCY)


def test_joint_trajectories_seven_panels_with_nan_command():
    trace = make_trace(nan_at=10)
    trace.q_sent[11] = np.nan  # a non-finite command that reached the arm
    fig = charts.joint_trajectories(trace, "nan-burst")
    assert sum(1 for k in fig.layout.to_plotly_json() if k.startswith("yaxis")) == 7
    assert len(fig.data) == 3 * 7
    titles = [a.text for a in fig.layout.annotations]
    assert titles[1].startswith("panda_joint2") and "rad" in titles[1]  # limits far from this motion: named in the title
    fig.to_json()


def test_joint_trajectories_draws_a_nearby_limit():
    trace = make_trace()
    trace.q_sent[:, 0] = ENV.limits.q_max[0] - 0.1
    fig = charts.joint_trajectories(trace, "near")
    hlines = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert any(math.isclose(s.y0, ENV.limits.q_max[0]) for s in hlines)
    assert not any(math.isclose(s.y0, ENV.limits.q_min[0]) for s in hlines)  # far below the motion: not drawn ...
    assert fig.layout.annotations[0].text.startswith("panda_joint1  [-2.85, 2.85]")  # ... but named


def test_joint_velocities_fraction_of_limit():
    trace = make_trace(nan_at=10)
    trace.q_sent[11] = np.nan
    fig = charts.joint_velocities(trace, "nan-burst")
    assert len(fig.data) == 7
    y = np.asarray(fig.data[0].y, dtype=float)
    assert np.isfinite(y).all() and (y >= 0).all()
    assert any(s.y0 == 1.0 for s in fig.layout.shapes)


def test_separation_plot():
    assert charts.separation_plot(make_trace()) is None
    fig = charts.separation_plot(make_trace(human=True))
    assert fig is not None and len(fig.data) == 2
    assert any(s.type == "rect" for s in fig.layout.shapes)  # the protective stop is shaded
