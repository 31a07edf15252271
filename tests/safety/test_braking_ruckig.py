"""The braking law and the stopping bounds against an independent oracle: Ruckig's time-optimal,
jerk-limited stop in continuous time (``ruckig``, velocity interface to ``v = a = 0``).

The layer brakes in backward differences at the control period; the arm moves in continuous time.
``stopping_bound`` (the robot's ``S_s`` and ``T_s`` in the separation distance) must cover both,
and the law should not stop much later than the best any jerk-limited stop can do.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings

from tests.safety.streams import make_layer
from tests.safety.test_braking import simulate, states
from vla_kit.safety.braking import braking_reach_bound, continuous_states, stopping_bound

ruckig = pytest.importorskip("ruckig", reason="ruckig is a test extra: pip install -e '.[test]'")

# h = 0.01, v = 0.00074, a = 24.8 with A = 26.4, J = 3023: h J > A, so the law may drop the
# acceleration in one step; a continuous stop first gains a^2 / 2J = 0.1 rad/s and travels 1.2 mrad.
SHORT_PERIOD_CASE = (0.01, 26.391982785472237, 3022.7586444576, 7.4358975635746560e-04, 24.770861912485302 / 26.391982785472237)


def optimal_stop(v: float, a: float, a_max: float, j_max: float) -> tuple[float, float, float]:
    """Ruckig's time-optimal stop from ``(0, v, a)``: ``(duration, furthest excursion, stop position)``."""
    inp = ruckig.InputParameter(1)
    inp.control_interface = ruckig.ControlInterface.Velocity
    inp.current_position, inp.current_velocity, inp.current_acceleration = [0.0], [v], [a]
    inp.target_velocity, inp.target_acceleration = [0.0], [0.0]
    inp.max_velocity, inp.max_acceleration, inp.max_jerk = [1e3], [a_max], [j_max]
    traj = ruckig.Trajectory(1)
    assert ruckig.Ruckig(1).calculate(inp, traj) == ruckig.Result.Working
    ext = traj.position_extrema[0]
    return traj.duration, max(abs(ext.min), abs(ext.max)), traj.at_time(traj.duration)[0][0]


@settings(max_examples=300, deadline=None)
@given(states)
@example(SHORT_PERIOD_CASE)
def test_the_stopping_bound_covers_the_time_optimal_stop_and_the_braking_law(state):
    h, a_max, j_max, v, a_frac = state
    a = a_frac * a_max
    qs, vs, _, _ = simulate(0.0, v, a, h, a_max, j_max)
    travel, time, peak = (float(x) for x in stopping_bound(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max)))
    assert travel >= np.abs(qs).max() - 1e-12, f"S_s {travel} below the law's {np.abs(qs).max()}"
    assert time >= h * (len(qs) - 1) - 1e-12 and peak >= np.abs(vs).max() - 1e-12
    for vc, ac in continuous_states(v, a, h, a_max, j_max):
        duration, furthest, _ = optimal_stop(vc, ac, a_max, j_max)
        assert travel >= furthest - 1e-12 * (1.0 + furthest), f"S_s {travel} below the continuous stop's {furthest} from {vc, ac}"
        assert time >= duration - 1e-12
        # the continuous stop's top speed: now, or once its acceleration has ramped to zero
        assert peak >= max(abs(vc), abs(vc + ac * abs(ac) / (2.0 * j_max))) * (1.0 - 1e-12), (vc, ac)


@settings(max_examples=300, deadline=None)
@given(states)
@example((0.0005, 30.0, 160.00000000012759, 3.0, -1.0))  # exactly 3 cycles (plus rounding): the worst case found
def test_the_braking_law_stops_within_three_cycles_of_the_time_optimal_stop(state):
    h, a_max, j_max, v, a_frac = state
    a = a_frac * a_max
    duration, _, _ = optimal_stop(v + 0.5 * h * a, a, a_max, j_max)  # from the parabola through the last three positions
    steps = len(simulate(0.0, v, a, h, a_max, j_max)[0]) - 1
    assert steps <= duration / h + 3.0 + 1e-6, f"{steps} cycles against the optimum's {duration / h:.2f}"


def test_where_the_law_may_shed_its_acceleration_in_one_step_the_separation_still_covers_the_physical_stop():
    h, a_max, j_max, v, a_frac = SHORT_PERIOD_CASE
    a = a_frac * a_max
    _, furthest, _ = optimal_stop(v, a, a_max, j_max)
    discrete, _ = braking_reach_bound(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
    assert float(discrete) < 0.1 * furthest  # the discrete law's own bound: a few micrometres
    layer, env = make_layer({"cartesian": {"tcp_speed_max": 1.0, "tcp_speed_max_reduced": 0.25}, "separation": {"enabled": True}})
    mon = layer.separation
    joint = int(np.argmax(mon.levers))
    vj, aj = np.zeros(7), np.zeros(7)
    vj[joint], aj[joint] = v, a
    lim_a, lim_j = np.full(7, a_max), np.full(7, j_max)
    terms = mon.robot_terms(vj, aj, h, lim_a, lim_j)
    assert terms.stopping_distance >= mon.levers[joint] * furthest
