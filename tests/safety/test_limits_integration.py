"""ros2_control-style integration: integrate an adversarial command stream against each limit.

Each stream asks for more than one limit allows, closed loop, for long enough to saturate it.
The output must reach the limit (the layer is not needlessly timid) and never pass it.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.safety.braking import braking_extent

from tests.safety.streams import brake_out, drive, home, make_layer




def _diffs(q_start: np.ndarray, sent: list[np.ndarray], dt: float):
    q = np.vstack([q_start, q_start, q_start, np.array(sent)])  # three samples of rest before the stream
    v = np.diff(q, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    j = np.diff(a, axis=0) / dt
    return q[3:], v[2:], a[1:], j


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_velocity_saturates_at_its_limit(robot):
    layer, env = make_layer({"robot": robot})
    lim, dt, q0 = env.limits, env.period, home(robot)
    sign = np.where(np.arange(q0.shape[0]) % 2, 1.0, -1.0)
    run = drive(layer, env, [lambda last: last + 3 * lim.max_step * sign] * 400, q0)
    _, v, _, _ = _diffs(q0, run.sent, dt)
    speed = np.abs(v).max(axis=0)
    assert run.monitor.report.total == 0
    assert np.all(speed <= lim.v_max) and np.all(speed >= 0.999 * np.minimum(lim.v_max, lim.max_step / dt))


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_acceleration_saturates_at_its_limit(robot):
    layer, env = make_layer({"robot": robot})
    lim, dt, q0 = env.limits, env.period, home(robot)
    mem = {}

    def demand_2a(last):  # keep asking for twice the acceleration limit
        prev = mem.get("prev", last)
        mem["prev"] = last
        return last + (last - prev) + dt * dt * 2 * lim.a_max

    run = drive(layer, env, [demand_2a] * 60, q0)
    _, _, a, _ = _diffs(q0, run.sent, dt)
    assert run.monitor.report.total == 0
    assert np.all(np.abs(a).max(axis=0) <= lim.a_max) and np.all(a.max(axis=0) >= 0.999 * lim.a_max)


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_jerk_saturates_at_its_limit_even_when_flipped_every_cycle(robot):
    layer, env = make_layer({"robot": robot})
    lim, dt, q0 = env.limits, env.period, home(robot)
    flips = [lambda last, s=(-1) ** k: last + s * 5 * lim.max_step for k in range(300)]
    run = drive(layer, env, flips, q0)
    _, _, _, j = _diffs(q0, run.sent, dt)
    assert run.monitor.report.total == 0 and run.not_stoppable == 0
    assert np.all(np.abs(j).max(axis=0) <= lim.j_max) and np.all(np.abs(j).max(axis=0) >= 0.999 * lim.j_max)


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_position_limits_are_reached_and_never_passed_from_full_speed(robot):
    layer, env = make_layer({"robot": robot})
    lim, dt, q0 = env.limits, env.period, home(robot)
    dof = q0.shape[0]
    up = np.arange(dof) % 2 == 0
    target = np.where(up, lim.q_max + 1.0, lim.q_min - 1.0)
    # Long enough to cross the farthest distance at full speed, plus a margin to accelerate and park.
    n = int(1.3 * np.max(np.abs(target - q0) / np.minimum(lim.v_max, lim.max_step / dt)) / dt) + 300
    run = drive(layer, env, [lambda last: last + np.clip(target - last, -5 * lim.max_step, 5 * lim.max_step)] * n, q0, check_stop=False)
    q, _, _, _ = _diffs(q0, run.sent, dt)
    assert run.monitor.report.total == 0
    assert np.all(q.max(axis=0) <= lim.q_max) and np.all(q.min(axis=0) >= lim.q_min)
    final = q[-1]
    assert np.all(np.where(up, lim.q_max - final, final - lim.q_min) < 1e-3)  # parked right at the limit
    assert layer.memory.at_rest


def test_a_configured_max_step_below_the_velocity_limit_caps_each_step():
    layer, env = make_layer({"joints": {"max_step": 0.001}})
    q0 = home("panda")
    run = drive(layer, env, [lambda last: last + 0.005] * 200, q0)
    steps = np.abs(np.diff(np.vstack([q0, run.sent]), axis=0)).max(axis=0)
    assert np.all(steps <= 0.001) and np.all(steps >= 0.999 * 0.001)


@pytest.mark.parametrize("robot", ["panda", "ur5"])
def test_the_emergency_ramp_from_full_speed_keeps_acc_and_jerk_and_ends_where_predicted(robot):
    layer, env = make_layer({"robot": robot})
    lim, dt, q0 = env.limits, env.period, home(robot)
    sign = np.where(np.arange(q0.shape[0]) % 2, 1.0, -1.0)
    run = drive(layer, env, [lambda last: last + 3 * lim.max_step * sign] * 300, q0)
    m = run.monitor
    predicted = braking_extent(m.q, m.v, m.a, dt, lim.a_max, lim.j_max).q_stop
    cycles = brake_out(layer, env, run)
    assert run.monitor.report.total == 0 and layer.memory.at_rest
    np.testing.assert_allclose(run.sent[-1], predicted, atol=1e-5)  # the layer plans a hair inside the limits
    longest = np.max(lim.v_max / lim.a_max + 2 * lim.a_max / lim.j_max) / dt
    assert cycles <= longest + 10  # a time-optimal-shaped stop, not a timid one
