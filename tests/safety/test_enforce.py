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
    lo4, hi4, lo, hi = layer._enforcer._intervals(mem, plan, h)
    ref = joint_intervals(mem.q, mem.v, mem.a, plan, h)
    rows = [ref[c] for c in (Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)]
    assert np.array_equal(lo4, np.array([r.lo for r in rows])) and np.array_equal(hi4, np.array([r.hi for r in rows]))
    assert np.array_equal(lo, np.maximum.reduce([r.lo for r in rows] + [plan.q_lo]))
    assert np.array_equal(hi, np.minimum.reduce([r.hi for r in rows] + [plan.q_hi]))
