"""Pure checks: each limit as an interval of next positions, stop feasibility, Cartesian helpers."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.safety import Check, Envelope
from vla_kit.safety.checks import (
    acceleration_interval,
    backward_differences,
    box_depth,
    box_excess,
    exceeded,
    jerk_interval,
    joint_intervals,
    plan_limits,
    plane_margin,
    position_interval,
    step_interval,
    step_limit,
    stop_feasible,
    tcp_speed,
    tool_cone_angle,
    velocity_interval,
)

ENV = Envelope.from_dict({})
LIM = ENV.limits
DT = ENV.period


def _random_state(rng):
    q = rng.uniform(LIM.q_min, LIM.q_max)
    v = rng.uniform(-1, 1, 7) * LIM.v_max
    a = rng.uniform(-1, 1, 7) * LIM.a_max
    return q, v, a


def test_interval_ends_sit_exactly_on_each_limit_by_backward_differences():
    rng = np.random.default_rng(0)
    plan = plan_limits(LIM, DT, DT)
    for _ in range(200):
        q, v, a = _random_state(rng)
        for iv, index, limit in (
            (velocity_interval(q, plan.v, DT), 0, LIM.v_max),
            (acceleration_interval(q, v, plan.a, DT), 1, LIM.a_max),
            (jerk_interval(q, v, a, plan.j, DT), 2, LIM.j_max),
        ):
            for end in (iv.lo, iv.hi):
                value = np.abs(backward_differences(end, q, v, a, DT)[index])
                assert np.all(value <= limit)  # never beyond, after rounding
                assert np.all(value >= limit * (1 - 1e-6))  # and not needlessly inside


def test_position_and_step_intervals_are_what_they_say():
    q_prev = np.full(7, 0.2)
    assert position_interval(LIM.q_min, LIM.q_max).contains(LIM.q_max).all()
    iv = step_interval(q_prev, LIM.max_step)
    np.testing.assert_allclose(iv.hi - q_prev, LIM.max_step, rtol=1e-12)
    assert not iv.contains(q_prev + 2 * LIM.max_step).any()


def test_the_intersection_of_intervals_is_their_overlap():
    ints = joint_intervals(np.zeros(7), np.full(7, 1.0), np.zeros(7), plan_limits(LIM, DT, DT), DT)
    both = ints[Check.VELOCITY] & ints[Check.JERK]
    np.testing.assert_array_equal(both.lo, np.maximum(ints[Check.VELOCITY].lo, ints[Check.JERK].lo))
    np.testing.assert_array_equal(both.clip(np.full(7, 10.0)), both.hi)


def test_max_step_is_per_nominal_period_and_scales_with_the_cycle():
    np.testing.assert_array_equal(step_limit(LIM, DT, DT), LIM.max_step)
    np.testing.assert_allclose(step_limit(LIM, 2 * DT, DT), 2 * LIM.max_step)


def test_planning_limits_sit_just_inside_the_envelope():
    plan = plan_limits(LIM, DT, DT)
    for mine, theirs in ((plan.v, LIM.v_max), (plan.a, LIM.a_max), (plan.j, LIM.j_max)):
        assert np.all(mine < theirs) and np.all(mine > theirs * (1 - 1e-6))


@pytest.mark.parametrize("dt", [1e-9, 1e-7])
def test_planning_refuses_a_dt_too_short_for_float64(dt):
    assert plan_limits(LIM, dt, DT) is None


def test_rest_inside_the_limits_can_always_stop_even_on_the_limit():
    plan = plan_limits(LIM, DT, DT)
    for q in (LIM.q_min, LIM.q_max, (LIM.q_min + LIM.q_max) / 2):
        ok, _, _ = stop_feasible(q, np.zeros(7), np.zeros(7), plan, DT)
        assert ok.all()


def test_full_speed_next_to_a_limit_cannot_stop_but_away_from_it_can():
    plan = plan_limits(LIM, DT, DT)
    q = LIM.q_max - 0.01
    towards, _, _ = stop_feasible(q, LIM.v_max * 0.99, np.zeros(7), plan, DT)
    away, _, _ = stop_feasible(q, -LIM.v_max * 0.99, np.zeros(7), plan, DT)
    assert not towards.any() and away.all()


def test_the_cheap_bound_and_the_closed_form_always_agree():
    rng = np.random.default_rng(1)
    plan = plan_limits(LIM, DT, DT)
    for _ in range(300):
        q, v, a = _random_state(rng)
        cheap, _, _ = stop_feasible(q, v, a, plan, DT)
        exact, _, ext = stop_feasible(q, v, a, plan, DT, exact=True)
        np.testing.assert_array_equal(cheap, exact)
        assert ext is not None


def test_stop_feasibility_works_on_a_batch_of_candidates():
    rng = np.random.default_rng(2)
    plan = plan_limits(LIM, DT, DT)
    batch = [_random_state(rng) for _ in range(8)]
    q, v, a = (np.stack(x) for x in zip(*batch))
    ok, travel, _ = stop_feasible(q, v, a, plan, DT)
    assert ok.shape == travel.shape == (8, 7)
    for k in range(8):
        np.testing.assert_array_equal(ok[k], stop_feasible(q[k], v[k], a[k], plan, DT)[0])


def test_exceeded_flags_each_limit_separately():
    q_prev, v_prev, a_prev = (LIM.q_min + LIM.q_max) / 2, np.zeros(7), np.zeros(7)
    q = q_prev.copy()
    q[0] = 10.0  # position, step, velocity, acceleration and jerk all broken on joint 0
    q[1] += DT**3 * LIM.j_max[1] * 1.01  # only jerk on joint 1
    out = exceeded(q, q_prev, v_prev, a_prev, DT, LIM, DT)
    assert all(out[c][0] for c in (Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK))
    assert out[Check.JERK][1] and not any(out[c][1] for c in (Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION))
    assert not any(out[c][2:].any() for c in out)


def test_box_excess_and_depth():
    lo, hi = np.zeros(3), np.ones(3)
    pts = np.array([[0.5, 0.5, 0.5], [1.2, 0.5, 0.5], [-0.1, 2.0, 0.5]])
    np.testing.assert_allclose(box_excess(pts, lo, hi), [0.0, 0.2, 1.0])
    np.testing.assert_allclose(box_depth(pts, lo, hi), [0.5, -0.2, -1.0])


def test_plane_margin_is_the_signed_distance_to_the_worst_plane():
    normals = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])
    offsets = np.array([0.2, -1.0])  # z >= 0.1 and x >= -1
    pts = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 0.0, 1.0]])
    np.testing.assert_allclose(plane_margin(pts, normals, offsets), [0.4, -0.1, -2.0])
    assert np.isinf(plane_margin(pts, np.zeros((0, 3)), np.zeros(0))).all()


def test_tcp_speed_and_tool_cone_angle():
    assert float(tcp_speed(np.array([0.3, 0.4, 0.0]), np.zeros(3), 0.5)) == pytest.approx(1.0)
    np.testing.assert_allclose(tool_cone_angle(np.array([[0, 0, -1.0], [1.0, 0, 0], [0, 0, 1.0]])), [0.0, np.pi / 2, np.pi])
