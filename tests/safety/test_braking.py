"""The braking law and its closed form: checked against plain step-by-step simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.safety.braking import brake_accel, braking_extent, braking_reach_bound, landing_accel, ramp_dv


def simulate(q: float, v: float, a: float, h: float, a_max: float, j_max: float, limit: int = 20_000):
    """Run the law one step at a time until rest; return positions, speeds, accelerations, jerks.

    In velocity arithmetic the landing can leave rounding noise (1e-18 rad/s) that the law then
    chases; that counts as rest here. (The layer works on sent positions and settles exactly.)
    """
    qs, vs, accs, jerks = [q], [v], [a], []
    for _ in range(limit):
        if abs(v) <= 1e-15 * (1.0 + abs(vs[0])) and abs(a) <= 1e-12 * a_max:
            break
        alpha = float(brake_accel(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max)))
        jerks.append((alpha - a) / h)
        a, v = alpha, v + h * alpha
        q = q + h * v
        qs.append(q), vs.append(v), accs.append(a)
    else:
        raise AssertionError(f"no rest after {limit} steps from v={vs[0]!r}, a={accs[0]!r}")
    return np.array(qs), np.array(vs), np.array(accs), np.array(jerks)


# Realistic ranges: 100 Hz .. 2 kHz, jerk 50 .. 20000 rad/s^3, acceleration 1 .. 30 rad/s^2.
# Subnormal speeds are left out: there h * (v / h) != v, so no law lands exactly in velocity space.
# (The layer itself is immune: its velocities are differences of sent positions, and a landing
# step that rounds to the same position *is* rest.)
states = st.tuples(
    st.sampled_from([0.0005, 0.001, 0.002, 0.008, 0.01]),
    st.floats(1.0, 30.0),
    st.floats(50.0, 20000.0),
    st.floats(-3.0, 3.0, allow_subnormal=False),
    st.floats(-1.0, 1.0, allow_subnormal=False),  # acceleration as a fraction of a_max
)


@settings(max_examples=300, deadline=None)
@given(states)
def test_closed_form_matches_step_by_step_braking(state):
    h, a_max, j_max, v, a_frac = state
    a = a_frac * a_max
    qs, vs, accs, jerks = simulate(0.0, v, a, h, a_max, j_max)
    ext = braking_extent(np.array(0.0), np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    assert bool(ext.exact)
    scale = 1e-9 * (1.0 + np.abs(qs).max())
    assert float(ext.q_stop) == pytest.approx(qs[-1], abs=scale)
    assert float(ext.q_high) >= qs.max() - scale and float(ext.q_low) <= qs.min() + scale
    assert float(ext.v_peak) == pytest.approx(np.abs(vs).max(), abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(states)
def test_braking_law_keeps_acc_and_jerk_limits_and_lands_at_rest(state):
    h, a_max, j_max, v, a_frac = state
    qs, vs, accs, jerks = simulate(0.0, v, a_frac * a_max, h, a_max, j_max)  # raises if it never rests
    assert np.all(np.abs(accs) <= a_max * (1 + 1e-12))
    assert np.all(np.abs(jerks) <= j_max * (1 + 1e-9))


@settings(max_examples=300, deadline=None)
@given(states)
def test_cheap_reach_bound_is_never_below_the_exact_travel(state):
    h, a_max, j_max, v, a_frac = state
    a = a_frac * a_max
    ext = braking_extent(np.array(0.0), np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    travel, peak = braking_reach_bound(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    assert float(travel) >= max(float(ext.q_high), -float(ext.q_low)) - 1e-12
    assert float(peak) == pytest.approx(float(ext.v_peak), rel=1e-12, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(states)
def test_one_braking_step_keeps_the_same_stopping_point(state):
    # The law is a state feedback: from its own next state it finishes the same stop.
    h, a_max, j_max, v, a_frac = state
    a = a_frac * a_max
    ext0 = braking_extent(np.array(0.0), np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    alpha = brake_accel(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    v1 = v + h * alpha
    ext1 = braking_extent(np.array(h * v1), v1, alpha, h, np.array(a_max), np.array(j_max))
    assert float(ext1.q_stop) == pytest.approx(float(ext0.q_stop), abs=1e-9 * (1 + abs(float(ext0.q_stop))))


def test_from_rest_the_law_stays_exactly_at_rest():
    alpha = brake_accel(np.zeros(7), np.zeros(7), 0.001, np.full(7, 10.0), np.full(7, 5000.0))
    assert np.array_equal(alpha, np.zeros(7))
    ext = braking_extent(np.full(7, 0.3), np.zeros(7), np.zeros(7), 0.001, np.full(7, 10.0), np.full(7, 5000.0))
    assert np.array_equal(ext.q_stop, np.full(7, 0.3)) and np.array_equal(ext.q_high, np.full(7, 0.3))


def test_a_joint_still_decelerating_hard_at_low_speed_is_already_going_backwards():
    # v = +0.001 rad/s but a = -A: ramping a back to zero takes velocity through zero, so the
    # joint's stop lies behind it. The law must not try to stop it going forwards.
    h, a_max, j_max = 0.001, 10.0, 1000.0
    qs, vs, _, _ = simulate(0.0, 0.001, -a_max, h, a_max, j_max)
    ext = braking_extent(np.array(0.0), np.array(0.001), np.array(-a_max), h, np.array(a_max), np.array(j_max))
    assert qs[-1] < 0.0 and float(ext.q_stop) == pytest.approx(qs[-1], abs=1e-12)
    assert float(ext.q_high) >= qs.max()


def test_ramp_dv_is_the_velocity_gained_while_ramping_acceleration_to_zero():
    h, delta = 0.01, 1.0
    # From -2.5 the ramp goes -1.5, -0.5, then 0: gains h * (-1.5 - 0.5) = -0.02.
    assert float(ramp_dv(np.array(-2.5), h, np.array(delta))) == pytest.approx(-0.02)
    assert float(ramp_dv(np.array(2.5), h, np.array(delta))) == pytest.approx(0.02)
    assert float(ramp_dv(np.array(0.7), h, np.array(delta))) == 0.0


def test_landing_acceleration_brings_speed_and_acceleration_to_zero_together():
    h, delta = 0.001, 5.0
    for v in (0.0, 1e-9, 1e-5, 3e-5, 0.01):
        alpha = float(landing_accel(np.array(v), h, np.array(delta)))
        vel = v + h * alpha
        while alpha < 0.0:
            alpha = min(alpha + delta, 0.0)
            vel += h * alpha
        assert vel == pytest.approx(0.0, abs=1e-15)
