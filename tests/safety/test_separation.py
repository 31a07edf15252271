"""Speed-and-separation monitoring: the ISO/TS 15066 distance, its zones, and what the layer does in each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.errors import ParamsError
from vla_kit.robots import get_robot_model
from vla_kit.safety import Check, Envelope, Level, RobotState
from vla_kit.safety.separation import RobotTerms, protective_separation_distance

from tests.safety.streams import PANDA_HOME, make_layer

DT = 0.001
PANDA = get_robot_model("panda")
SSM = {"cartesian": {"tcp_speed_max": 1.0, "tcp_speed_max_reduced": 0.25}, "separation": {"enabled": True}}
NOBODY = np.zeros((0, 3))


def person_at(layer, q: np.ndarray, distance: float, origin=None, direction=(1.0, 0.0, 0.0)) -> np.ndarray:
    """A person on the ray ``origin + r * direction`` (default: from the TCP, straight ahead in +x),
    ``distance`` m from the nearest link capsule of configuration ``q``."""
    origin = PANDA.forward(q).tcp_position if origin is None else np.asarray(origin, dtype=float)
    direction = np.asarray(direction, dtype=float)
    lo, hi = 0.0, 5.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        d, _ = layer.separation.measure(origin + mid * direction, q)
        lo, hi = (mid, hi) if d < distance else (lo, mid)
    return (origin + hi * direction)[None, :]


def _moving(layer, n=300, speed=0.5):
    """Drive joint 0 up to ``speed`` rad/s with nobody around; return the last sent position."""
    q = PANDA_HOME.copy()
    step = np.eye(7)[0] * speed * DT
    for _ in range(n):
        q = layer.filter(q + step, RobotState(q=q, humans=NOBODY), DT).command_sent
    return q, step


def test_the_protective_distance_is_the_iso_ts_15066_sum():
    got = protective_separation_distance(human_speed=1.6, reaction_time=0.1, stopping_time=0.3, robot_speed=0.5,
                                         stopping_distance=0.12, intrusion_distance=0.2, human_uncertainty=0.1,
                                         robot_uncertainty=0.01)
    # S_h = 1.6 (0.1 + 0.3) = 0.64, S_r = 0.5 * 0.1 = 0.05, S_s = 0.12, C + Z_d + Z_r = 0.31
    assert got == pytest.approx(0.64 + 0.05 + 0.12 + 0.31)


def test_at_rest_the_robot_terms_vanish():
    layer, env = make_layer(SSM)
    terms = layer.separation.robot_terms(np.zeros(7), np.zeros(7), DT)
    assert terms == RobotTerms(0.0, 0.0, 0.0)
    assert layer.separation.distance_bound(terms) == pytest.approx(1.6 * 0.1 + 0.2 + 0.1 + 0.01)


def test_a_moving_arm_needs_more_room_and_its_stop_comes_from_the_braking_law():
    layer, env = make_layer(SSM)
    mon = layer.separation
    slow = mon.robot_terms(np.eye(7)[0] * 0.2, np.zeros(7), DT)
    fast = mon.robot_terms(np.eye(7)[0] * 1.0, np.zeros(7), DT)
    assert 0 < slow.speed < fast.speed and slow.stopping_distance < fast.stopping_distance
    assert slow.stopping_time < fast.stopping_time
    # Braking at up to 15 rad/s^2 from 1 rad/s takes at least 1/15 s and travels at least 1/30 rad.
    assert fast.stopping_time >= 1.0 / 15.0
    assert fast.stopping_distance >= mon.levers[0] / 30.0
    assert mon.distance_bound(fast) > mon.distance_bound(slow)


def test_separation_needs_a_reduced_tcp_speed():
    with pytest.raises(ParamsError, match="cartesian.tcp_speed_max_reduced"):
        Envelope.from_dict({"separation": {"enabled": True}})


def test_nobody_around_is_safe_and_the_distance_is_reported():
    layer, _ = make_layer(SSM)
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=NOBODY), DT)
    assert d.level is Level.SAFE and d.human_distance == math.inf and not d.reduced
    far = person_at(layer, PANDA_HOME, 3.0)
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=far), DT)
    assert d.level is Level.SAFE and d.human_distance == pytest.approx(3.0, abs=1e-6)


def test_without_person_data_the_separation_is_not_monitored():
    layer, _ = make_layer(SSM)
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    assert d.human_distance is None and d.level is Level.SAFE


def test_a_person_approaching_raises_caution_then_reduced_speed():
    layer, _ = make_layer(SSM)
    mon = layer.separation
    normal, _ = mon.mode_terms(DT)
    zone = mon.distance_bound(normal)
    caution = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=person_at(layer, PANDA_HOME, zone + 0.2)), DT)
    assert caution.level is Level.CAUTION and not caution.reduced
    near = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=person_at(layer, PANDA_HOME, zone - 0.05)), DT)
    assert near.level is Level.WARNING and near.reduced and not near.estop_latched
    assert [r.check for r in near.violations] == [Check.SEPARATION] and "reduced speed" in near.violations[0].reason


def test_in_the_reduced_zone_the_tcp_slows_to_the_reduced_speed():
    layer, env = make_layer({**SSM, "cartesian": {"tcp_speed_max": 2.0, "tcp_speed_max_reduced": 0.25}})
    mon = layer.separation
    q, step = _moving(layer, speed=0.8)
    tcp_prev = PANDA.forward(q).tcp_position
    assert np.linalg.norm(tcp_prev - PANDA.forward(q - step).tcp_position) / DT > 0.3
    now = mon.distance_bound(mon.robot_terms(layer.memory.v, layer.memory.a, DT))
    zone = mon.distance_bound(mon.mode_terms(DT)[0])
    assert now < zone
    # Above the base, on joint 1's axis: the distance stays the same while joint 1 turns.
    humans = person_at(layer, q, 0.5 * (now + zone), origin=(0.0, 0.0, 1.0), direction=(0.0, 0.0, 1.0))
    speeds = []
    for _ in range(400):
        d = layer.filter(q + step, RobotState(q=q, humans=humans), DT)
        q = d.command_sent
        tcp = PANDA.forward(q).tcp_position
        speeds.append(np.linalg.norm(tcp - tcp_prev) / DT)
        tcp_prev = tcp
        assert d.reduced and d.level is Level.WARNING
    assert speeds[0] > 0.3 and max(speeds[-300:]) <= 0.25 + 1e-12


def test_a_person_inside_the_protective_distance_stops_the_arm_without_latching():
    layer, env = make_layer(SSM)
    q, step = _moving(layer)
    mon = layer.separation
    now = mon.distance_bound(mon.robot_terms(layer.memory.v, layer.memory.a, DT))
    humans = person_at(layer, q, now * 0.8)
    levels = []
    for k in range(400):
        d = layer.filter(q + step, RobotState(q=q, humans=humans), DT)
        levels.append(d.level)
        q = d.command_sent
        assert not d.estop_latched and d.intervened
    assert all(level is Level.DANGER for level in levels)
    assert layer.memory.at_rest  # braked to a standstill and holds it
    assert sum(r.check is Check.SEPARATION for r in layer.log) == 1  # one record for entering the zone


def test_the_protective_stop_is_held_until_the_person_leaves_the_release_distance():
    layer, env = make_layer(SSM)
    q = PANDA_HOME.copy()
    mon = layer.separation
    rest = mon.distance_bound(RobotTerms(0.0, 0.0, 0.0))
    _, reduced = mon.mode_terms(DT)
    release = mon.distance_bound(reduced)
    d = layer.filter(q, RobotState(q=q, humans=person_at(layer, q, rest * 0.5)), DT)
    assert d.level is Level.DANGER
    between = person_at(layer, q, 0.5 * (rest + release))  # outside S_p at rest, inside the release distance
    d = layer.filter(q + 1e-5, RobotState(q=q, humans=between), DT)
    assert d.level is Level.DANGER and np.array_equal(d.command_sent, q)  # still held
    gone = person_at(layer, q, release + 0.01)
    d = layer.filter(q + 1e-6, RobotState(q=q, humans=gone), DT)
    assert d.level < Level.DANGER and d.reduced  # released, at reduced speed while the person is in the zone


@pytest.mark.parametrize("bad", [np.array([[0.5, math.nan, 0.5]]), np.array([[2.0, 2.0, 2.0], [0.5, 0.5, -math.inf]]),
                                 np.array([[0.5, math.inf, 0.5]], dtype=np.float32), [[0.5, math.nan, 0.5]],
                                 np.array([[0.5, 0.5]]), np.array([["a", "b", "c"]])])
def test_untrustworthy_person_data_is_a_protective_stop(bad):
    layer, _ = make_layer(SSM)
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=bad), DT)
    assert d.level is Level.DANGER and not d.estop_latched and d.violations[-1].check is Check.SEPARATION


def test_stale_person_data_stops_the_arm():
    layer, env = make_layer(SSM)
    far = person_at(layer, PANDA_HOME, 3.0)
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=far), DT)
    levels = [layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT).level for _ in range(250)]  # no new data for 0.25 s
    assert levels[150] is Level.SAFE and levels[-1] is Level.DANGER
    assert "old" in layer.log[-1].reason
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=far), DT)  # fresh data again
    assert d.level is Level.SAFE


def test_separation_off_ignores_people():
    layer, _ = make_layer({"cartesian": {"tcp_speed_max_reduced": 0.25}})
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME, humans=np.array([[0.5, 0.0, 0.5]])), DT)
    assert d.level is Level.SAFE and d.human_distance is None and layer.separation is None


def test_the_compiled_robot_terms_are_the_stopping_bounds_of_the_numpy_law():
    """v_r = sum lever |v|, S_s = sum lever * travel bound, T_s = the longest joint's stop bound
    (braking.stopping_bound), joints at rest excluded; random states, some joints at rest."""
    from vla_kit.safety.braking import stopping_bound

    layer, env = make_layer(SSM)
    mon, lim = layer.separation, env.limits
    rng = np.random.default_rng(7)
    for _ in range(500):
        rest = rng.random(7) < 0.3
        v = np.where(rest, 0.0, rng.uniform(-1, 1, 7) * lim.v_max)
        a = np.where(rest, 0.0, rng.uniform(-1, 1, 7) * lim.a_max)
        h = float(rng.choice([0.001, 1 / 240, 0.004, 0.01]))
        terms = mon.robot_terms(v, a, h)
        travel, steps, _ = stopping_bound(v, a, h, lim.a_max, lim.j_max)
        ref = (mon.levers @ np.abs(v), mon.levers @ travel, float(np.max(steps)))
        np.testing.assert_allclose([terms.speed, terms.stopping_distance, terms.stopping_time], ref, rtol=1e-12, atol=0)


def test_one_call_separation_is_the_distance_and_the_iso_formula_bit_for_bit():
    """The compiled per-cycle call returns what the reference pieces give, to the bit: the person
    distance of ``measure`` and ``S_p`` = protective_separation_distance of the robot terms; people
    anywhere (inside a capsule too), none, or with a non-finite coordinate."""
    from vla_kit.safety.cartesian_kernels import separation_now

    layer, env = make_layer({**SSM, "separation": {"enabled": True, "reaction_time": 0.13, "intrusion_distance": 0.21,
                                                    "human_uncertainty": 0.07, "robot_uncertainty": 0.03}})
    mon, lim = layer.separation, env.limits
    rng = np.random.default_rng(11)
    for _ in range(300):
        q = rng.uniform(lim.q_min, lim.q_max)
        v = np.where(rng.random(7) < 0.3, 0.0, rng.uniform(-1, 1, 7) * lim.v_max)
        a = rng.uniform(-1, 1, 7) * lim.a_max
        h = float(rng.choice([0.001, 1 / 240]))
        people = rng.uniform(-1.2, 1.2, (int(rng.integers(0, 4)), 3))
        if len(people) and rng.random() < 0.2:
            people[0, int(rng.integers(3))] = np.nan
        frames = PANDA.forward(q).frames
        d, s_p = separation_now(people, frames, env.link_radii, v, a, h, lim.a_max, lim.j_max, mon.levers, mon._person)
        d_ref, fault = mon.measure(people, q)
        assert (math.isnan(d) and fault is not None) or (d == d_ref and fault is None)
        assert s_p == mon.distance_bound(mon.robot_terms(v, a, h))
