"""The vectorised trajectory audit: the same verdicts as the scalar checks, and a clean bill for the layer's output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from vla_kit.errors import InputError
from vla_kit.robots import get_robot_model
from vla_kit.safety import Check, Envelope, StreamMonitor
from vla_kit.safety.audit import AUDIT_CHECKS, audit_trajectory
from vla_kit.safety.checks import backward_differences, exceeded

from tests.safety.streams import PANDA_HOME, drive, make_layer
from tests.safety.test_properties import pattern

ENV = Envelope.from_dict({})
LIM, DT = ENV.limits, ENV.period
PANDA = get_robot_model("panda")
CARTESIAN = {"cartesian": {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}, "tcp_speed_max": 0.8,
                           "tool_cone_deg": 70.0},
             "obstacles": {"spheres": [{"centre": [0.45, 0.45, 0.45], "radius": 0.08}], "boxes": [{"min": [0.3, -0.7, 0.0], "max": [0.6, -0.45, 0.3]}]}}


def scalar_violations(env: Envelope, q: np.ndarray, dts: np.ndarray, q0: np.ndarray | None) -> set[tuple[str, int, int]]:
    """(type, joint, row) of every joint violation, sample by sample, with the pure checks."""
    lim = env.limits
    found = set()
    rows = list(q)
    prev = q0 if q0 is not None else rows[0]
    v, a = np.zeros(7), np.zeros(7)
    start = 0 if q0 is not None else 1
    for i in np.flatnonzero(~((rows[0] >= lim.q_min) & (rows[0] <= lim.q_max))):
        if q0 is None:
            found.add(("position", int(i), 0))
    for k in range(start, len(rows)):
        h = float(dts[k - start])
        broke = exceeded(rows[k], prev, v, a, h, lim, env.period)
        broke[Check.POSITION] = ~((rows[k] >= lim.q_min) & (rows[k] <= lim.q_max))  # NaN counts, as in the monitor
        for c in (Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK):
            vv, aa, jj = backward_differences(rows[k], prev, v, a, h)
            value = {Check.MAX_STEP: np.abs(rows[k] - prev), Check.VELOCITY: np.abs(vv), Check.ACCELERATION: np.abs(aa),
                     Check.JERK: np.abs(jj)}[c]
            broke[c] = broke[c] | np.isnan(value)
        for c, mask in broke.items():
            for i in np.flatnonzero(mask):
                found.add((c.value, int(i), k))
        v, a, _ = backward_differences(rows[k], prev, v, a, h)
        prev = rows[k]
    return found


steps = st.lists(st.lists(st.one_of(st.floats(-3.0, 3.0), st.sampled_from([0.0, math.nan, math.inf, 1e-9])), min_size=7, max_size=7),
                 min_size=1, max_size=40)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf - inf in the scalar reference
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, scale=st.sampled_from([1e-4, 1e-3, 1e-2, 1.0]), dt_kind=st.sampled_from(["nominal", "scalar", "per-interval"]),
       with_q0=st.booleans(), seed=st.integers(0, 2**16))
def test_audit_agrees_with_the_scalar_checks_on_random_trajectories(steps, scale, dt_kind, with_q0, seed):
    rng = np.random.default_rng(seed)
    q0 = PANDA_HOME + rng.uniform(-0.05, 0.05, 7)
    q = q0 + np.cumsum(np.array(steps) * scale * LIM.max_step, axis=0)
    m = q.shape[0] if with_q0 else q.shape[0] - 1
    dt = {"nominal": None, "scalar": 0.0008, "per-interval": rng.uniform(0.0005, 0.002, m)}[dt_kind]
    dts = np.full(m, DT if dt is None else dt) if not isinstance(dt, np.ndarray) else dt
    report = audit_trajectory(ENV, q, dt=dt, q0=q0 if with_q0 else None)
    got = {(r["type"], r["joint"], r["step"]) for r in report.rows()}
    assert got == scalar_violations(ENV, q, dts, q0 if with_q0 else None)
    assert report.clean == (report.total == 0) and sum(report.counts.values()) == report.total


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=60, deadline=None)
@given(steps=steps, scale=st.sampled_from([1e-3, 0.3, 2.0]))
def test_audit_matches_the_stream_monitor_counts(steps, scale):
    q = PANDA_HOME + np.cumsum(np.array(steps) * scale * LIM.max_step, axis=0)
    mon = StreamMonitor(ENV, PANDA_HOME)
    for row in q:
        mon.observe(row, DT)
    counts = audit_trajectory(ENV, q, q0=PANDA_HOME).counts
    assert counts == {c.value: n for c, n in sorted(mon.report.violations.items(), key=lambda kv: AUDIT_CHECKS.index(kv[0]))}


segments = st.lists(st.tuples(st.sampled_from(["towards", "flip", "jerk", "noise"]), st.integers(1, 60), st.floats(0.1, 9.5),
                              st.integers(0, 2**31)), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cartesian=st.booleans(), mode=st.sampled_from(["clamp", "reject"]), plan=segments,
       jitter=st.lists(st.floats(-0.1, 0.1), min_size=7, max_size=7))
# A braking step edging past a TCP speed limit planned to the last digit (0.800023 m/s against 0.8):
# fixed by CartesianGuard's planning headroom.
@example(cartesian=True, mode="clamp", plan=[("towards", 39, 1.0, 0), ("noise", 56, 1.125, 134437), ("towards", 3, 1.0, 0)],
         jitter=[0.0, 0.0, 0.0, 0.0, 0.0, -0.0625, 0.0])
def test_an_audit_of_the_layers_output_is_always_clean(cartesian, mode, plan, jitter):
    layer, env = make_layer({"on_violation": mode, **(CARTESIAN if cartesian else {})})
    q0 = PANDA_HOME + np.array(jitter)
    if cartesian:
        assume(all(x == 0.0 for x in layer.cartesian.pose_excess(q0).values()))  # the guarantees start inside
    target = np.where(np.arange(7) % 2, env.limits.q_max + 0.3, env.limits.q_min - 0.3)
    cmds = []
    for kind, n, scale, seed in plan:
        cmds += [pattern(kind, scale, target, env, 7, seed)] * n
    run = drive(layer, env, cmds, q0, check_stop=False)
    report = audit_trajectory(env, np.array(run.sent), dt=env.period, q0=q0)
    assert report.clean, report.table()


def test_a_nan_sample_breaks_every_check_it_touches():
    q = np.repeat(PANDA_HOME[None, :], 5, axis=0)
    q[2, 3] = math.nan
    report = audit_trajectory(ENV, q)
    rows = {(r["type"], r["step"]) for r in report.rows() if r["joint"] == 3}
    assert ("position", 2) in rows and ("velocity", 2) in rows and ("velocity", 3) in rows and ("jerk", 4) in rows


def test_values_and_limits_are_reported_in_their_units():
    q = np.repeat(PANDA_HOME[None, :], 3, axis=0)
    q[1:, 0] = LIM.q_max[0] + 0.1  # a jump past the upper limit
    report = audit_trajectory(ENV, q, q0=q[0])
    pos = next(r for r in report.rows() if r["type"] == "position")
    assert (pos["step"], pos["joint"], pos["joint_name"]) == (1, 0, "panda_joint1")
    assert pos["value"] == q[1, 0] and pos["limit"] == LIM.q_max[0]
    vel = next(r for r in report.rows() if r["type"] == "velocity")
    assert vel["value"] == pytest.approx((q[1, 0] - q[0, 0]) / DT) and vel["limit"] == LIM.v_max[0]


def test_timestamps_and_per_interval_periods_scale_the_rate_checks():
    q = PANDA_HOME + np.arange(4)[:, None] * 0.003 * np.eye(7)[0]  # 3 rad/s at 1 ms, 1.5 rad/s at 2 ms
    slow = audit_trajectory(ENV, q, t=np.arange(4) * 0.002)
    fast = audit_trajectory(ENV, q, dt=0.001)
    assert {"max_step", "velocity"} <= set(fast.counts) and not {"max_step", "velocity"} & set(slow.counts)
    same = audit_trajectory(ENV, q, dt=np.full(3, 0.002))
    assert same.counts == slow.counts


def test_cartesian_limits_and_obstacles_are_audited():
    env = Envelope.from_dict({"cartesian": {"tcp_box": {"min": [-1, -1, 0.0], "max": [0.45, 1, 2]}, "tcp_speed_max": 0.1},
                              "obstacles": {"spheres": [{"centre": [0.49, 0.0, 0.75], "radius": 0.05}]}})
    q = PANDA_HOME + np.arange(30)[:, None] * 1e-4 * np.eye(7)[0]
    report = audit_trajectory(env, q)
    counts = report.counts
    assert counts["tcp_box"] == 30  # the TCP is at x = 0.486 throughout
    box = next(r for r in report.rows() if r["type"] == "tcp_box")
    assert box["value"] == pytest.approx(PANDA.forward(q[0]).tcp_position[0] - 0.45) and box["joint"] is None
    assert counts.get("obstacle", 0) == 30
    assert "tcp_speed" not in counts  # 0.1 mrad per ms at joint 1 is ~0.05 m/s
    fast = audit_trajectory(env, PANDA_HOME + np.arange(30)[:, None] * 5e-4 * np.eye(7)[0])
    assert fast.counts["tcp_speed"] == 29


def test_the_table_and_the_json_summary():
    q = np.repeat(PANDA_HOME[None, :], 4, axis=0)
    q[2:, 1] += 0.01
    report = audit_trajectory(ENV, q)
    text = report.table(max_rows=2)
    assert "more" in text and "violations in 4 samples" in text and "panda_joint2" in text
    summary = report.as_dict(max_records=1)
    assert summary["clean"] is False and summary["total"] == report.total and summary["omitted"] == report.total - 1
    assert audit_trajectory(ENV, np.repeat(PANDA_HOME[None, :], 4, axis=0)).table().startswith("clean")


@pytest.mark.parametrize("kwargs,what", [
    ({"q": np.zeros((5, 6))}, "q"),
    ({"q": np.zeros(7)}, "q"),
    ({"q": np.zeros((0, 7))}, "q"),
    ({"q": np.zeros((5, 7)), "q0": np.zeros(6)}, "q0"),
    ({"q": np.zeros((5, 7)), "q0": np.full(7, math.nan)}, "q0"),
    ({"q": np.zeros((5, 7)), "dt": np.ones(3)}, "dt"),
    ({"q": np.zeros((5, 7)), "dt": 0.0}, "dt"),
    ({"q": np.zeros((5, 7)), "t": np.arange(4.0)}, "t"),
    ({"q": np.zeros((5, 7)), "t": np.array([0, 1, 1, 2, 3.0])}, "t"),
])
def test_malformed_input_is_an_input_error_naming_the_key(kwargs, what):
    q = kwargs.pop("q")
    with pytest.raises(InputError) as info:
        audit_trajectory(ENV, q, **kwargs)
    assert info.value.what == what
