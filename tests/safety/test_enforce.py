"""The hot path's shortcuts give exactly the answers of the reference checks they replace."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.safety.braking import ramp_dv
from vla_kit.safety.checks import exceeded, joint_intervals, plan_limits, step_limit, stop_feasible
from vla_kit.safety.records import Check
from vla_kit.safety.state import Memory

from tests.safety.streams import PANDA_HOME, make_layer

CART = {"cartesian": {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}, "planes": [{"normal": [0, 0, 1], "offset": 0.2}],
                      "tcp_speed_max": 0.8, "tool_cone_deg": 70.0},
        "obstacles": {"spheres": [{"centre": [0.5, 0.4, 0.4], "radius": 0.1}]}}
unit = st.floats(-1.0, 1.0)
vec = st.lists(unit, min_size=7, max_size=7).map(np.array)


def _state(layer, env, pos, vel, acc, near_limit):
    lim = env.limits
    q = PANDA_HOME + 0.3 * pos
    if near_limit:
        q = np.where(pos > 0, lim.q_max - 1e-3 * np.abs(pos), lim.q_min + 1e-3 * np.abs(pos))
    mem = Memory(q=q, v=vel * lim.v_max, a=acc * lim.a_max, q_lo=lim.q_min, q_hi=lim.q_max,
                 tcp=layer.cartesian.tcp_position(q) if layer.cartesian.enabled else None)
    h = env.period
    plan = plan_limits(lim, h, env.period)
    layer._enforcer.prepare(plan, step_limit(lim, h, env.period), h)
    return mem, plan, h


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, acc=vec, dq=vec, scale=st.sampled_from([1e-6, 1e-4, 1e-3, 3e-3]), near=st.booleans())
def test_the_stacked_limit_test_is_the_exact_one(pos, vel, acc, dq, scale, near):
    layer, env = make_layer()
    mem, plan, h = _state(layer, env, pos, vel, acc, near)
    q = mem.q + h * mem.v + scale * dq
    ok, _, _ = layer._enforcer.measure(q, mem, h)
    broke = exceeded(q, mem.q, mem.v, mem.a, h, env.limits, env.period)
    assert ok == (not any(m.any() for m in broke.values()))
    np.testing.assert_array_equal(layer._enforcer.joints_ok(), ~np.any(list(broke.values()), axis=0))


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, acc=vec, dq=vec, scale=st.sampled_from([0.0, 1e-7, 1e-5, 1e-4]), near=st.booleans())
def test_the_cheap_stop_test_is_the_cheap_bound_of_stop_feasible(pos, vel, acc, dq, scale, near):
    layer, env = make_layer()
    mem, plan, h = _state(layer, env, pos, vel * 0.5, acc * 0.02, near)
    enf = layer._enforcer
    q = mem.q + h * (mem.v + h * mem.a) + scale * dq
    ok, v, a = enf.measure(q, mem, h)
    if not ok:
        return
    easy, per_joint = enf.cheap_stop(q, v, a, plan, h)
    cheap = stop_feasible(q, v, a, plan, h, cheap_only=True)[0]
    assert easy == bool(cheap.all())
    np.testing.assert_array_equal(np.ones(7, bool) if per_joint is None else per_joint, cheap)
    if easy:
        assert stop_feasible(q, v, a, plan, h, exact=True)[0].all()  # the bound is sound




@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, acc=vec, near=st.booleans())
def test_the_compiled_intervals_are_the_reference_intervals_bit_for_bit(pos, vel, acc, near):
    layer, env = make_layer()
    mem, plan, h = _state(layer, env, pos, vel, acc, near)
    lo4, hi4, lo, hi = layer._enforcer.intervals(mem, plan, h)
    ref = joint_intervals(mem.q, mem.v, mem.a, plan, h)
    rows = [ref[c] for c in (Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)]
    assert np.array_equal(lo4, np.array([r.lo for r in rows])) and np.array_equal(hi4, np.array([r.hi for r in rows]))
    assert np.array_equal(lo, np.maximum.reduce([r.lo for r in rows] + [plan.q_lo]))
    assert np.array_equal(hi, np.minimum.reduce([r.hi for r in rows] + [plan.q_hi]))


def _reference_clamp(enf, q_cmd, keep, mem, plan, h):
    """The joint clamp written with the reference functions: clip into the overlap of
    ``checks.joint_intervals`` and the position limits, keep the flagged joints, then the
    per-joint stop search of ``search.furthest_stoppable`` where the cheap bound refuses."""
    from vla_kit.safety.checks import backward_differences
    from vla_kit.safety.search import furthest_stoppable

    ints = joint_intervals(mem.q, mem.v, mem.a, plan, h)
    lo = np.maximum.reduce([ints[c].lo for c in (Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)] + [plan.q_lo])
    hi = np.minimum.reduce([ints[c].hi for c in (Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)] + [plan.q_hi])
    q_c = np.where(keep, q_cmd, np.maximum(np.minimum(q_cmd, hi), lo))
    q_fb = enf.brake(mem, plan, h)
    v, a, _ = backward_differences(q_c, mem.q, mem.v, mem.a, h)
    cheap = stop_feasible(q_c, v, a, plan, h, cheap_only=True)[0]
    return q_fb, q_c, furthest_stoppable(q_fb, q_c, mem, plan, h, cheap_ok=cheap) if not cheap.all() else q_c


@settings(max_examples=300, deadline=None)
@given(pos=vec, vel=vec, acc=vec, dq=vec, keep=st.lists(st.booleans(), min_size=7, max_size=7).map(np.array),
       scale=st.sampled_from([1e-4, 1e-2, 0.3]), near=st.booleans(), reject=st.booleans())
def test_the_compiled_clamp_is_the_reference_clamp_bit_for_bit(pos, vel, acc, dq, keep, scale, near, reject):
    from vla_kit.safety.kernels import CLAMP_EXACT, CLAMP_REJECTED, CLAMP_SEARCHED, clamp_joints

    layer, env = make_layer()
    mem, plan, h = _state(layer, env, pos, vel, acc, near)
    enf = layer._enforcer
    q_cmd = mem.q + h * mem.v + scale * dq
    n = 7
    q_fb, q_out, v, a, ok = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n, dtype=bool)
    lo4, hi4, rows = np.empty((4, n)), np.empty((4, n)), np.empty((6, n))
    code = clamp_joints(q_cmd, keep, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, enf._widths, enf._plan_rows, plan.pos_tol, enf._bound,
                        enf._delta, enf._two_a, enf._hi_tol, enf._lo_tol, reject, lo4, hi4, rows, ok, q_fb, q_out, v, a)
    ref_fb, ref_clip, ref_out = _reference_clamp(enf, q_cmd, keep, mem, plan, h)
    ref4 = enf.intervals(mem, plan, h)
    assert np.array_equal(lo4, ref4[0]) and np.array_equal(hi4, ref4[1]) and np.array_equal(q_fb, ref_fb)
    if reject:
        assert code == CLAMP_REJECTED and np.array_equal(q_out, ref_fb)
        return
    assert np.array_equal(q_out, ref_out)
    exact, v_ref, a_ref = enf.measure(ref_clip, mem, h)
    if code == CLAMP_EXACT:  # the clip itself, every direct limit exact and a cheap stop everywhere
        assert exact and q_out is not None and np.array_equal(q_out, ref_clip)
        assert np.array_equal(v, v_ref) and np.array_equal(a, a_ref)
        assert enf.cheap_stop(ref_clip, v_ref, a_ref, plan, h)[0]
    else:
        assert code == CLAMP_SEARCHED
        assert not (exact and enf.cheap_stop(ref_clip, v_ref, a_ref, plan, h)[0])
