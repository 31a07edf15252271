"""Properties of the layer's output over adversarial command streams (Hypothesis).

Whatever comes in — NaN, inf, huge, tiny, steps towards a limit, sign flips, oscillation at the
jerk limit — what goes out satisfies every joint limit by backward differences at dt, starting
from rest at the measured state, and from every state sent the arm can still brake inside its
position limits. In-limit streams come back bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vla_kit.safety import JointCommand, Level

from tests.safety.streams import brake_out, drive, make_layer

SPECIAL = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1e-308, 5e-324, 0.0, -0.0, 1e-12, -1e-12]
raw_values = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True), st.floats(-10.0, 10.0))


def pattern(kind: str, scale: float, target: np.ndarray, env, dof: int, rng_seed: int):
    """A closed-loop command generator: f(last_sent) -> command."""
    lim = env.limits
    h = env.period
    rng = np.random.default_rng(rng_seed)
    state = {"k": 0, "prev": None, "prev2": None}

    def towards(last):  # full pressure on a position limit (or past it)
        return last + np.clip(target - last, -scale * lim.max_step, scale * lim.max_step)

    def flip(last):  # sign flips every cycle
        state["k"] += 1
        return last + (-1) ** state["k"] * scale * lim.max_step

    def jerk_osc(last):  # bang-bang acceleration at +-scale*A, the worst case for the jerk limit
        state["k"] += 1
        prev = last if state["prev"] is None else state["prev"]
        v = (last - prev) / h
        state["prev"] = last
        return last + h * (v + h * (-1) ** (state["k"] // 3) * scale * lim.a_max)

    def noise(last):
        return last + rng.normal(0.0, scale, dof) * lim.max_step

    def absurd(last):
        return last + rng.choice([-1, 1], dof) * lim.max_step * (10.0 + 100 * scale)

    return {"towards": towards, "flip": flip, "jerk": jerk_osc, "noise": noise, "absurd": absurd}[kind]


segments = st.lists(
    # Garbage latches the e-stop for the rest of the stream, so it is drawn less often.
    st.tuples(st.sampled_from(["towards"] * 3 + ["flip"] * 2 + ["jerk"] * 2 + ["noise"] * 2 + ["absurd", "raw"]), st.integers(1, 40),
              st.floats(0.1, 9.5),
              st.integers(0, 2**31)),
    min_size=1,
    max_size=5,
)


BOX = {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}
CARTESIAN = {"tcp_box": BOX, "tcp_speed_max": 0.8, "tool_cone_deg": 70.0}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    robot=st.sampled_from(["panda", "ur5"]),
    mode=st.sampled_from(["clamp", "reject"]),
    cartesian=st.booleans(),
    start=st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7),
    plan=segments,
    raw=st.lists(st.lists(raw_values, min_size=7, max_size=7), min_size=1, max_size=3),
)
def test_every_output_stream_keeps_every_limit_and_can_always_stop(robot, mode, cartesian, start, plan, raw):
    cartesian = cartesian and robot == "panda"
    layer, env = make_layer({"robot": robot, "on_violation": mode, **({"cartesian": CARTESIAN} if cartesian else {})})
    lim = env.limits
    dof = lim.q_min.shape[0]
    q0 = lim.q_min + np.array(start[:dof]) * (lim.q_max - lim.q_min)
    cmds = []
    for kind, n, scale, seed in plan:
        if kind == "raw":
            cmds += [np.array(r[:dof]) for r in raw] * min(n, 3)
            continue
        target = np.where(np.arange(dof) % 2, lim.q_max + 0.3, lim.q_min - 0.3)
        cmds += [pattern(kind, scale, target, env, dof, seed)] * n
    run = drive(layer, env, cmds, q0)
    latched_at = next((k for k, d in enumerate(run.decisions) if d.estop_latched), None)
    event("e-stop latched" if latched_at is not None else "never latched")
    event(f"clamped cycles: {'none' if not any(d.intervened for d in run.decisions) else 'some'}")
    brake_out(layer, env, run)
    assert run.monitor.report.total == 0, run.monitor.report
    assert run.not_stoppable == 0
    assert all(np.isfinite(q).all() for q in run.sent)
    if latched_at is not None:
        assert all(d.level is Level.EMERGENCY for d in run.decisions[latched_at:])
    if cartesian:
        tcp = layer.model.forward(np.vstack([q0, *run.sent])).tcp_position
        outside = np.maximum(np.maximum(np.array(BOX["min"]) - tcp, tcp - np.array(BOX["max"])), 0.0).max(axis=1)
        # Never further outside than the start (0 when it started inside).
        assert outside.max() <= outside[0] + 1e-12, outside.max()


@settings(max_examples=40, deadline=None)
@given(
    robot=st.sampled_from(["panda", "ur5"]),
    jerks=st.lists(st.lists(st.floats(-0.45, 0.45), min_size=7, max_size=7), min_size=5, max_size=80),
)
def test_an_in_limit_stream_comes_back_bit_identical(robot, jerks):
    # Built from jerks within 45% of the limit, with acceleration and speed kept under 45%, well
    # away from the position limits: every command is in limits and stoppable.
    layer, env = make_layer({"robot": robot})
    lim, h = env.limits, env.period
    dof = lim.q_min.shape[0]
    q = (lim.q_min + lim.q_max) / 2
    v, a = np.zeros(dof), np.zeros(dof)
    cmds = []
    for jj in jerks:
        a_new = np.clip(a + h * np.array(jj[:dof]) * lim.j_max, -0.45 * lim.a_max, 0.45 * lim.a_max)
        v_new = np.clip(v + h * a_new, -0.45 * np.minimum(lim.v_max, lim.max_step / h), 0.45 * np.minimum(lim.v_max, lim.max_step / h))
        a_new = (v_new - v) / h
        q = q + h * v_new
        v, a = v_new, a_new
        cmds.append(q.copy())
    run = drive(layer, env, cmds, (lim.q_min + lim.q_max) / 2, check_stop=False)
    for cmd, d in zip(cmds, run.decisions):
        assert d.command_sent.tobytes() == cmd.tobytes() and not d.intervened


@settings(max_examples=30, deadline=None)
@given(values=st.lists(raw_values, min_size=7, max_size=7), gripper=st.one_of(st.none(), raw_values))
def test_a_single_garbage_command_never_reaches_the_robot(values, gripper):
    layer, env = make_layer()
    q0 = (env.limits.q_min + env.limits.q_max) / 2
    run = drive(layer, env, [q0, JointCommand(q=np.array(values), gripper=gripper)], q0, check_stop=False)
    d = run.decisions[-1]
    assert np.isfinite(d.command_sent).all() and run.monitor.report.total == 0
    if not (np.isfinite(values).all() and (gripper is None or math.isfinite(gripper))):
        assert d.estop_latched
    if d.gripper_sent is not None:
        assert 0.0 <= d.gripper_sent <= 1.0
