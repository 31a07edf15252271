"""The compiled Cartesian checks agree with the numpy geometry and checks they are written from.

:mod:`vla_kit.safety.geometry` (vectorised numpy, exact for the capsule model) and
:func:`vla_kit.safety.checks.stop_feasible` are the reference; the kernels evaluate the same
formulas one scalar at a time. Sums of three products may round differently, so distances are
compared to 1e-12 m and verdicts away from that sliver of the boundary.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.safety.braking import ramp_dv
from vla_kit.safety.cartesian_kernels import SLOTS, human_clearance
from vla_kit.safety.checks import backward_differences, plan_limits, stop_feasible, tcp_speed, tool_cone_angle
from vla_kit.safety.geometry import capsule_segments, human_distance, obstacle_clearance
from vla_kit.safety.records import Check
from vla_kit.safety.search import furthest_cartesian
from vla_kit.safety.state import Memory

from vla_kit.robots import get_robot_model

from tests.safety.streams import PANDA_HOME, make_layer

PANDA = get_robot_model("panda")

EVERY = {"cartesian": {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]},
                       "elbow_box": {"min": [-0.3, -0.25, 0.3], "max": [0.25, 0.25, 1.1]},
                       "planes": [{"normal": [0.1, 0.2, 1.0], "offset": 0.2}], "tcp_speed_max": 0.8, "tool_cone_deg": 70.0},
         "obstacles": {"min_distance": 0.02, "spheres": [{"centre": [0.5, 0.4, 0.4], "radius": 0.1}],
                       "boxes": [{"min": [0.45, -0.7, 0.0], "max": [0.75, -0.5, 0.25]}, {"min": [-0.5, 0.3, 0.5], "max": [-0.3, 0.5, 0.9]}]}}
SPHERES = (np.array([[0.5, 0.4, 0.4]]), np.array([0.1]))
BOXES = (np.array([[0.45, -0.7, 0.0], [-0.5, 0.3, 0.5]]), np.array([[0.75, -0.5, 0.25], [-0.3, 0.5, 0.9]]))
TOL = 1e-12
unit = st.floats(-1.0, 1.0)
vec = st.lists(unit, min_size=7, max_size=7).map(np.array)


def _reference_pose_excess(q: np.ndarray, env) -> dict[Check, np.ndarray]:
    """Every pose check of configurations ``(K, 7)``, in numpy, straight from the envelope."""
    kin = PANDA.forward(q)
    cart = env.cartesian
    tcp, elbow = kin.tcp_position, kin.elbow_position

    def box_excess(p, box):
        return np.maximum(np.maximum(np.asarray(box.min) - p, p - np.asarray(box.max)), 0.0).max(axis=-1)

    plane = cart.planes[0]
    n = np.asarray(plane.normal) / np.linalg.norm(plane.normal)
    off = plane.offset / np.linalg.norm(plane.normal)
    starts, ends = capsule_segments(kin)
    return {
        Check.TCP_BOX: box_excess(tcp, cart.tcp_box),
        Check.ELBOW_BOX: box_excess(elbow, cart.elbow_box),
        Check.PLANE: np.maximum(-np.minimum(tcp @ n - off, elbow @ n - off), 0.0),
        Check.OBSTACLE: np.maximum(-(obstacle_clearance(starts, ends, env.link_radii, SPHERES, BOXES) - 0.02), 0.0),
        Check.TOOL_CONE: np.maximum(tool_cone_angle(kin.tool_z) - np.deg2rad(70.0), 0.0),
    }


def test_pose_excess_of_random_configurations_is_the_numpy_geometry():
    layer, env = make_layer(EVERY)
    lim = env.limits
    q = np.random.default_rng(3).uniform(lim.q_min, lim.q_max, (4000, 7))
    got = layer.cartesian.excess_of(PANDA.forward(q))
    ref = _reference_pose_excess(q, env)
    assert set(got) == set(ref)
    for check, x in ref.items():
        np.testing.assert_allclose(got[check], x, rtol=0, atol=TOL, err_msg=check.value)
        assert (x > 0).sum() > 100, check  # the sample reaches past every limit
    assert layer.cartesian.pose_excess(q[7]) == {c: float(x[7]) for c, x in got.items()}


def test_human_clearance_is_the_numpy_distance():
    rng = np.random.default_rng(4)
    layer, env = make_layer(EVERY)
    for q in rng.uniform(env.limits.q_min, env.limits.q_max, (300, 7)):
        frames = PANDA.forward(q).frames
        people = rng.uniform(-1.5, 1.5, (rng.integers(0, 4), 3))
        starts, ends = frames[:-1, :3, 3], frames[1:, :3, 3]
        ref = human_distance(people, starts, ends, env.link_radii)
        got = human_clearance(people, frames, env.link_radii)
        assert got == ref if math.isinf(ref) else abs(got - ref) <= TOL
        if len(people):  # one bad coordinate anywhere: NaN, never a distance
            people[rng.integers(len(people)), rng.integers(3)] = rng.choice([np.nan, np.inf, -np.inf])
            assert math.isnan(human_clearance(people, frames, env.link_radii))


def _reference_judge(layer, env, cand, mem, plan, h, limit):
    """Pass/fail of candidates ``(K, 7)`` with numpy: stop feasibility, every pose check at the candidate
    and cleared along its braking path by the lever bound, the TCP speed now and once ramped out."""
    v, a, _ = backward_differences(cand, mem.q, mem.v, mem.a, h)
    stop_ok, travel, _ = stop_feasible(cand, v, a, plan, h)
    kin = PANDA.forward(cand)
    excess = _reference_pose_excess(cand, env)
    ok = stop_ok.all(axis=1)
    for x in excess.values():
        ok &= x <= 1e-12
    # Smallest linear/obstacle margin, and the cone margin: the braking path must stay inside both.
    tcp, elbow = kin.tcp_position, kin.elbow_position
    cart = env.cartesian
    lin = [tcp - cart.tcp_box.min, cart.tcp_box.max - tcp, elbow - cart.elbow_box.min, cart.elbow_box.max - elbow]
    n = np.asarray(cart.planes[0].normal) / np.linalg.norm(cart.planes[0].normal)
    off = cart.planes[0].offset / np.linalg.norm(cart.planes[0].normal)
    starts, ends = capsule_segments(kin)
    margin = np.minimum.reduce([m.min(axis=-1) for m in lin] + [tcp @ n - off, elbow @ n - off,
                               obstacle_clearance(starts, ends, env.link_radii, SPHERES, BOXES) - 0.02])
    reach = travel @ PANDA.lever_arms()
    cone = np.deg2rad(70.0) - tool_cone_angle(kin.tool_z)
    ok &= (reach < margin) & (travel.sum(axis=-1) < cone)
    ahead = PANDA.forward(cand + h * (v + ramp_dv(a, h, h * plan.j))).tcp_position
    speed = np.maximum(tcp_speed(tcp, mem.tcp, h), tcp_speed(ahead, tcp, h))
    ok &= speed <= limit
    return ok, reach - margin, speed - limit


@settings(max_examples=200, deadline=None)
@given(pos=vec, vel=vec, acc=vec, dq=st.lists(vec, min_size=8, max_size=8), scale=st.sampled_from([1e-5, 1e-4, 5e-4]),
       reduced=st.booleans())
def test_judging_candidates_is_the_numpy_verdict(pos, vel, acc, dq, scale, reduced):
    layer, env = make_layer(EVERY)
    lim, h = env.limits, env.period
    q = PANDA_HOME + 0.3 * pos
    mem = Memory(q=q, v=0.3 * vel * lim.v_max, a=0.05 * acc * lim.a_max, q_lo=lim.q_min, q_hi=lim.q_max, tcp=PANDA.forward(q).tcp_position)
    plan = plan_limits(lim, h, env.period)
    cand = mem.q + h * mem.v + scale * np.array(dq)
    good, excess, path, frames = layer.cartesian.judge(cand, mem, plan, h, reduced=reduced)
    limit = layer.cartesian.speed_limit(reduced)
    ref, path_gap, speed_gap = _reference_judge(layer, env, cand, mem, plan, h, limit)
    clear = (np.abs(path_gap) > 1e-9) & (np.abs(speed_gap) > 1e-9)  # away from the rounding sliver
    np.testing.assert_array_equal(good[clear], ref[clear])
    np.testing.assert_array_equal(frames, PANDA.forward(cand[0]).frames)
    np.testing.assert_allclose(excess[:, SLOTS.index(Check.TCP_SPEED)], np.maximum(speed_gap, 0.0), rtol=0, atol=1e-9)
    # The braking-path shortfall: one slot at most, only for a refused candidate whose pose is inside.
    pose = np.delete(excess, SLOTS.index(Check.TCP_SPEED), axis=1)
    crossed = path.max(axis=1) > 0.0
    assert ((path > 0.0).sum(axis=1) <= 1).all() and not good[crossed].any() and (pose[crossed] <= 1e-12).all()
    linear = crossed & (path.argmax(axis=1) != SLOTS.index(Check.TOOL_CONE))
    np.testing.assert_allclose(path.max(axis=1)[linear], path_gap[linear], rtol=0, atol=1e-9)
    inside = clear & (pose.max(axis=1) <= 0.0) & (path_gap > 0.0)
    assert crossed[inside].all()


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, speed=st.floats(0.97, 1.03), dq=vec, hint=st.one_of(st.none(), st.floats(0.0, 1.0)))
def test_the_search_keeps_a_point_that_passes_on_the_segment(pos, vel, speed, dq, hint):
    """Whatever it returns passes the judge (or is the braking step), lies on the segment at its
    fraction, and the target itself failed unless the fraction is 1. The arm moves at about the
    TCP speed limit, so the boundary often lies inside the segment."""
    layer, env = make_layer({**EVERY, "cartesian": {**EVERY["cartesian"], "tcp_speed_max": 0.25}})
    lim, h = env.limits, env.period
    q = PANDA_HOME + 0.3 * pos
    tcp = PANDA.forward(q).tcp_position
    v = 0.1 * vel * lim.v_max
    v *= speed * layer.cartesian.speed_limit(False) / max(np.linalg.norm(PANDA.forward(q + h * v).tcp_position - tcp) / h, 1e-6)
    mem = Memory(q=q, v=v, a=np.zeros(7), q_lo=lim.q_min, q_hi=lim.q_max, tcp=tcp)
    plan = plan_limits(lim, h, env.period)
    enf = layer._enforcer
    enf.prepare(plan, plan.step, h)
    q_fb = enf.brake(mem, plan, h)
    lo4, hi4, lo, hi = enf.intervals(mem, plan, h)
    q_j = np.clip(q + 0.02 * dq + h * mem.v, lo, hi)  # a target inside every direct interval
    out = furthest_cartesian(layer.cartesian, q_fb, q_j, mem, plan, h, reduced=False, hint=hint)
    judge = lambda x: bool(layer.cartesian.judge(x[None, :], mem, plan, h, reduced=False)[0][0])  # noqa: E731
    assert 0.0 <= out.fraction <= 1.0
    np.testing.assert_array_equal(out.frames, PANDA.forward(out.q).frames)  # the kinematics of what is kept, for the commit
    if out.fraction == 1.0:
        assert out.q is q_j and judge(q_j) and not out.failing
        return
    assert not judge(q_j) and out.failing
    if out.fraction == 0.0:
        assert np.array_equal(out.q, q_fb)
    else:
        assert judge(out.q)
        np.testing.assert_array_equal(out.q, q_fb + out.fraction * (q_j - q_fb))
    assert set(out.excess_target) == set(layer.cartesian.checks)


def test_a_non_finite_frame_never_clears_an_obstacle():
    """A capsule with a NaN end must not be skipped by the bounding-box shortcut: the clearance is
    NaN (refused), as the exact distance gives, never the gap of the other capsules."""
    from vla_kit.safety.cartesian_kernels import _clearance

    frames = np.zeros((3, 4, 4))
    frames[:, :3, 3] = [[0.5, 1.5, 1.5], [0.9, 1.5, 1.5], [0.5, np.nan, 1.5]]
    box = np.array([[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]])
    got = _clearance(frames, np.array([0.05, 0.01]), np.zeros((0, 4)), box, np.empty(8))
    assert math.isnan(got)
    frames[2, 1, 3] = 1.5  # finite again: the real gap, 0.1 m from the box less the first capsule's radius
    assert abs(_clearance(frames, np.array([0.05, 0.01]), np.zeros((0, 4)), box, np.empty(8)) - 0.05) < 1e-12


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, dq=vec, mask=st.lists(st.booleans(), min_size=7, max_size=7).map(np.array), which=st.booleans(),
       scale=st.sampled_from([1e-4, 1e-2, 0.3]), reject=st.booleans(), hint=st.one_of(st.none(), st.floats(0.0, 1.0)),
       cartesian=st.booleans())
def test_the_one_call_clamp_is_the_clamp_then_the_search_then_the_blame_bit_for_bit(pos, vel, dq, mask, which, scale, reject, hint,
                                                                                       cartesian):
    """``clamp_cycle`` runs in one call what the layer ran in four — clamp, Cartesian search from
    the braking step, blame, measure of what is sent — and each piece is held to its reference
    elsewhere: here the whole must give the same bits as the pieces run one after another."""
    from vla_kit.safety.cartesian_kernels import clamp_cycle
    from vla_kit.safety.kernels import CLAMP_REJECTED, blame_rows, clamp_joints

    layer, env = make_layer({**EVERY, "cartesian": {**EVERY["cartesian"], "tcp_speed_max": 0.25}})
    lim, h = env.limits, env.period
    q = PANDA_HOME + 0.3 * pos
    mem = Memory(q=q, v=0.2 * vel * lim.v_max, a=np.zeros(7), q_lo=lim.q_min, q_hi=lim.q_max, tcp=PANDA.forward(q).tcp_position)
    plan = plan_limits(lim, h, env.period)
    enf, cart = layer._enforcer, layer.cartesian
    enf.prepare(plan, plan.step, h)
    q_cmd = mem.q + h * mem.v + scale * dq
    enf.measure(q_cmd, mem, h)  # the command's measure rows, which the blame reads
    measures = enf._buf.copy()
    every = np.ones(7, dtype=bool)
    direct_ok, stop_ok = (mask, every) if which else (every, mask)
    n = 7
    # The pieces, one after another.
    q_fb, q_c, v, a, ok = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    lo4, hi4, rows = np.empty((4, n)), np.empty((4, n)), np.empty((6, n))
    code = clamp_joints(q_cmd, direct_ok & stop_ok, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._widths, enf._plan_rows, plan.pos_tol,
                        enf._bound, enf._delta, enf._two_a, enf._hi_tol, enf._lo_tol, reject, lo4, hi4, rows, ok, q_fb, q_c, v, a)
    ref_q, ref_fraction = q_c, 1.0
    if cartesian and code != CLAMP_REJECTED:
        ref = furthest_cartesian(cart, q_fb, q_c, mem, plan, h, reduced=False, hint=hint)
        ref_q, ref_fraction = ref.q, ref.fraction
    idx, val = np.empty((3, n), dtype=np.int64), np.empty((4, n))
    ref_m = blame_rows(q_cmd, ref_q, measures, enf._bound, lo4, hi4, plan.q_lo, plan.q_hi, mem.q_lo, mem.q_hi, direct_ok, stop_ok, idx, val)
    ref_exact, ref_v, ref_a = enf.measure(ref_q, mem, h)
    # The one call.
    q_out, v_out, a_out = np.empty(n), np.empty(n), np.empty(n)
    frames, excess = np.empty(cart.frame_shape), np.empty((3, len(SLOTS)))
    got_idx, got_val = np.empty((3, n), dtype=np.int64), np.empty((4, n))
    got = clamp_cycle(q_cmd, direct_ok, stop_ok, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._jc, plan.pos_tol, reject,
                      math.nan if hint is None else hint, cartesian, *(cart.cycle_args(mem, False) if cartesian else cart.off_args),
                      measures, q_out, v_out, a_out, frames, excess, got_idx, got_val)
    assert got == (code, ref_fraction, ref_m, ref_exact)
    assert np.array_equal(q_out, ref_q) and np.array_equal(v_out, ref_v) and np.array_equal(a_out, ref_a)
    assert np.array_equal(got_idx[:, :ref_m], idx[:, :ref_m])
    np.testing.assert_array_equal(got_val[:, :ref_m], val[:, :ref_m])  # NaN where a joint was held back: equal as NaN
    if cartesian and code != CLAMP_REJECTED:
        np.testing.assert_array_equal(frames, ref.frames)
        if ref_fraction != 1.0:
            assert cart.pick(excess) == [ref.target, ref.sent, ref.path]


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, dq=vec, scale=st.sampled_from([0.0, 1e-5, 1e-3, 0.05]), reject=st.booleans(), cartesian=st.booleans(),
       reduced=st.booleans(), edge=st.booleans())
def test_the_one_call_cycle_passes_exactly_the_commands_the_checks_pass(pos, vel, dq, scale, reject, cartesian, reduced, edge):
    """``enforce_cycle`` first judges the command as the layer's checks do — exact measure, stop
    feasibility (cheap bound, then the closed form), the Cartesian judge, the caution shares —
    and clamps it (``clamp_cycle``, held to its pieces above) only when one of them refuses it.
    ``edge``: every joint close to its upper limit and heading there, where stops are in doubt."""
    from vla_kit.safety.cartesian_kernels import (COMMAND_BROKEN, COMMAND_PASSES, COMMAND_PASSES_NEAR, COMMAND_REFUSED,
                                                  COMMAND_STOP_REFUSED, clamp_cycle, enforce_cycle)

    layer, env = make_layer({**EVERY, "cartesian": {**EVERY["cartesian"], "tcp_speed_max": 0.25, "tcp_speed_max_reduced": 0.1}})
    lim, h = env.limits, env.period
    q = PANDA_HOME + 0.3 * pos
    v0 = 0.2 * vel * lim.v_max
    if edge:
        q, v0 = lim.q_max - 0.02 * np.abs(pos) - 1e-4, (0.1 + 0.5 * np.abs(vel)) * lim.v_max
    mem = Memory(q=q, v=v0, a=np.zeros(7), q_lo=lim.q_min, q_hi=lim.q_max, tcp=PANDA.forward(q).tcp_position)
    plan = plan_limits(lim, h, env.period)
    enf, cart = layer._enforcer, layer.cartesian
    enf.prepare(plan, plan.step, h)
    q_cmd = mem.q + h * mem.v + scale * dq
    n = 7
    # The reference, check by check.
    direct, v_ref, a_ref = enf.measure(q_cmd, mem, h)
    rows_ref, joint_ok_ref = enf._buf.copy(), enf.joints_ok()
    stop_ref = stop_feasible(q_cmd, v_ref, a_ref, plan, h)[0]
    args = cart.cycle_args(mem, reduced) if cartesian else cart.off_args
    good, excess_ref, path_ref, frames_ref = cart.judge(q_cmd[None, :], mem, plan, h, reduced=reduced)
    if not direct:
        expected = COMMAND_BROKEN
    elif not stop_ref.all():
        expected = COMMAND_STOP_REFUSED
    elif cartesian and not good[0]:
        expected = COMMAND_REFUSED
    else:
        near = bool(np.count_nonzero(rows_ref[3:5] >= enf._caution))
        limit = cart.speed_limit(reduced)
        if cartesian and not near and limit is not None:
            x, y, z = (frames_ref[-1, :3, 3] - mem.tcp).tolist()
            near = math.sqrt(x * x + y * y + z * z) / h >= enf.caution_fraction * limit
        expected = COMMAND_PASSES_NEAR if near else COMMAND_PASSES
    # The one call.
    q_out, v, a, joint_ok, stop_ok = np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    frames, excess, rows = np.empty(cart.frame_shape), np.empty((3, len(SLOTS))), np.empty((6, n))
    idx, val = np.empty((3, n), dtype=np.int64), np.empty((4, n))
    verdict, code, fraction, m, exact = enforce_cycle(q_cmd, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._jc, plan.pos_tol, reject,
                                                      math.nan, cartesian, enf.caution_fraction, *args, rows, q_out, v, a, joint_ok,
                                                      stop_ok, frames, excess, idx, val)
    assert verdict == expected
    np.testing.assert_array_equal(rows, rows_ref)
    assert np.array_equal(joint_ok, joint_ok_ref)
    if direct:  # the per-joint stop verdict: the cheap bound, the closed form where it refused
        assert np.array_equal(stop_ok, stop_ref)
    if verdict >= COMMAND_PASSES:
        assert (code, fraction, m, exact) == (-1, 1.0, 0, True)
        assert np.array_equal(v, v_ref) and np.array_equal(a, a_ref)
        if cartesian:
            np.testing.assert_array_equal(frames, frames_ref)
        return
    if verdict == COMMAND_REFUSED and reject:  # what the reject-mode records are made from
        assert np.array_equal(excess[0], excess_ref[0]) and np.array_equal(excess[1], path_ref[0])
    every = np.ones(n, dtype=bool)
    masks = (joint_ok_ref, every) if verdict == COMMAND_BROKEN else (every, stop_ref)
    ref_out, ref_v, ref_a, ref_idx, ref_val = np.empty(n), np.empty(n), np.empty(n), np.empty((3, n), dtype=np.int64), np.empty((4, n))
    ref = clamp_cycle(q_cmd, *masks, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._jc, plan.pos_tol, reject, math.nan, cartesian,
                      *args, rows_ref, ref_out, ref_v, ref_a, np.empty(cart.frame_shape), np.empty((3, len(SLOTS))), ref_idx, ref_val)
    assert (code, fraction, m, exact) == ref
    assert np.array_equal(q_out, ref_out) and np.array_equal(v, ref_v) and np.array_equal(a, ref_a)
    assert np.array_equal(idx[:, :m], ref_idx[:, :m])
    np.testing.assert_array_equal(val[:, :m], ref_val[:, :m])


def test_the_one_call_cycle_settles_a_stop_the_cheap_bound_refuses_with_the_closed_form():
    """Between the distance the cheap braking bound needs and the one the braking law really
    takes, the cheap bound refuses a joint's stop and the closed form accepts it: the command
    passes there, exactly where the numpy reference says it may. A joint heads for its upper
    limit at constant speed from 0.3 rad to 1 mrad away."""
    from vla_kit.safety.cartesian_kernels import COMMAND_BROKEN, COMMAND_PASSES, COMMAND_STOP_REFUSED, enforce_cycle

    layer, env = make_layer()
    lim, h = env.limits, env.period
    plan = plan_limits(lim, h, env.period)
    enf, cart = layer._enforcer, layer.cartesian
    enf.prepare(plan, plan.step, h)
    n, seen = 7, {"cheap refused, closed form accepted": 0, "refused": 0}
    for gap in np.linspace(0.3, 1e-3, 600):
        q, v0 = PANDA_HOME.copy(), np.zeros(n)
        q[3], v0[3] = lim.q_max[3] - gap, 0.6 * lim.v_max[3]
        mem = Memory(q=q, v=v0, a=np.zeros(n), q_lo=lim.q_min, q_hi=lim.q_max)
        q_cmd = q + h * v0  # keep going
        direct, v_ref, a_ref = enf.measure(q_cmd, mem, h)
        cheap = stop_feasible(q_cmd, v_ref, a_ref, plan, h, cheap_only=True)[0]
        exact = stop_feasible(q_cmd, v_ref, a_ref, plan, h)[0]
        stop_ok = np.empty(n, dtype=bool)
        verdict = enforce_cycle(q_cmd, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._jc, plan.pos_tol, False, math.nan, False,
                                enf.caution_fraction, *cart.off_args, np.empty((6, n)), np.empty(n), np.empty(n), np.empty(n),
                                np.empty(n, dtype=bool), stop_ok, np.empty(cart.frame_shape), np.empty((3, len(SLOTS))),
                                np.empty((3, n), dtype=np.int64), np.empty((4, n)))[0]
        if not direct:  # past the limit already (the last few gaps)
            assert verdict == COMMAND_BROKEN
            continue
        assert np.array_equal(stop_ok, exact)
        assert (verdict == COMMAND_STOP_REFUSED) == (not exact.all())
        if not exact.all():
            seen["refused"] += 1
        elif not cheap.all():
            assert verdict >= COMMAND_PASSES
            seen["cheap refused, closed form accepted"] += 1
    assert all(seen.values()), seen
