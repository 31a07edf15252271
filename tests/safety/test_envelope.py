"""The envelope: defaults derived from the robot, and every bad value named by its key path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.errors import ParamsError
from vla_kit.robots import get_robot_model
from vla_kit.safety import Envelope, OnViolation

SOURCE = "params/demo.yaml"


def test_defaults_come_from_the_panda_with_a_margin_inside_its_position_limits():
    env = Envelope.from_dict({}, SOURCE)
    panda = get_robot_model("panda")
    np.testing.assert_allclose(env.limits.q_min, panda.q_min + 0.05)
    np.testing.assert_allclose(env.limits.q_max, panda.q_max - 0.05)
    np.testing.assert_array_equal(env.limits.v_max, panda.v_max)
    np.testing.assert_array_equal(env.limits.a_max, panda.a_max)
    np.testing.assert_array_equal(env.limits.j_max, panda.j_max)
    np.testing.assert_allclose(env.limits.max_step, panda.v_max * 0.001)
    assert env.period == 0.001 and env.enabled and env.on_violation is OnViolation.CLAMP


def test_ur5_defaults_use_its_own_period_and_limits():
    env = Envelope.from_dict({"robot": "ur5", "joints": {"position_margin": 0.1}}, SOURCE)
    assert env.period == 0.008
    np.testing.assert_allclose(env.limits.q_max, 2 * np.pi - 0.1)
    np.testing.assert_allclose(env.limits.v_max, np.pi)
    assert env.limits.names[0] == "shoulder_pan_joint"


def test_a_scalar_applies_to_every_joint_and_a_list_to_each():
    env = Envelope.from_dict({"joints": {"v_max": 1.0, "a_max": [1, 2, 3, 4, 5, 6, 7]}}, SOURCE)
    np.testing.assert_array_equal(env.limits.v_max, np.ones(7))
    np.testing.assert_array_equal(env.limits.a_max, np.arange(1, 8))


def test_resolved_limits_are_read_only():
    env = Envelope.from_dict(None, SOURCE)
    with pytest.raises(ValueError):
        env.limits.v_max[0] = 100.0


def test_reject_mode_and_explicit_position_limits_are_taken_as_given():
    q_min = [-1, -1, -1, -2, -1, 0.1, -1]
    env = Envelope.from_dict({"on_violation": "reject", "joints": {"q_min": q_min, "q_max": [1, 1, 1, -0.1, 1, 2, 1]}})
    assert env.on_violation is OnViolation.REJECT
    np.testing.assert_array_equal(env.limits.q_min, q_min)


NAN, INF = math.nan, math.inf
BAD = [
    ({"joints": {"v_max": [1, 1, 1, NAN, 1, 1, 1]}}, "safety.joints.v_max[3]", "a finite number > 0"),
    ({"joints": {"a_max": [1, 1, 1, 1, 1, INF, 1]}}, "safety.joints.a_max[5]", "a finite number > 0"),
    ({"joints": {"j_max": 0.0}}, "safety.joints.j_max", "a finite number > 0"),
    ({"joints": {"j_max": -5}}, "safety.joints.j_max", "a finite number > 0"),
    ({"joints": {"max_step": [0.1] * 6}}, "safety.joints.max_step", "one value per joint (7 for this robot)"),
    ({"joints": {"v_max": [1, 1, 1, 5, 1, 1, 1]}}, "safety.joints.v_max[3]", "at most the robot's published limit 2.175"),
    ({"joints": {"position_margin": -0.1}}, "safety.joints.position_margin", "a finite number >= 0"),
    ({"joints": {"position_margin": 2.0}}, "safety.joints.position_margin", "a margin that leaves joint 1 some range"),
    ({"joints": {"q_min": [0.5] * 7, "q_max": [0.4, 1, 1, -0.1, 1, 1, 1]}}, "safety.joints.q_min[0]", "below the upper limit 0.4 rad"),
    ({"joints": {"q_max": [9, 1, 1, -0.1, 1, 1, 1]}}, "safety.joints.q_max[0]", "at most the robot's limit 2.8973"),
    ({"joints": {"q_min": [-1] * 6}}, "safety.joints.q_min", "one value per joint"),
    ({"joints": {"absurd_step_factor": 1.0}}, "safety.joints.absurd_step_factor", "a finite number > 1"),
    ({"joints": {"v_maxx": 1.0}}, "safety.joints.v_maxx", "no such key"),
    ({"joints": {"v_max": [1, 1, "fast", 1, 1, 1, 1]}}, "safety.joints.v_max[2]", "a valid number"),
    ({"robot": "kuka"}, "safety.robot", "one of: panda, ur5"),
    ({"on_violation": "explode"}, "safety.on_violation", "'clamp' or 'reject'"),
    ({"dt": 0.0}, "safety.dt", "0 < dt <= 1"),
    ({"dt": NAN}, "safety.dt", "0 < dt <= 1"),
    ({"dt_tolerance": 1.5}, "safety.dt_tolerance", "a number in [0, 1)"),
    ({"cartesian": {"tcp_box": {"min": [0, 0, 1], "max": [1, 1, 0.5]}}}, "safety.cartesian.tcp_box.min[2]", "below cartesian.tcp_box.max[2]"),
    ({"cartesian": {"elbow_box": {"min": [0, 0], "max": [1, 1, 1]}}}, "safety.cartesian.elbow_box.min", "three numbers"),
    ({"cartesian": {"tcp_box": {"min": [0, NAN, 0], "max": [1, 1, 1]}}}, "safety.cartesian.tcp_box.min[1]", "a finite number"),
    ({"cartesian": {"planes": [{"normal": [0, 0, 0], "offset": 0}]}}, "safety.cartesian.planes[0].normal", "not all zero"),
    ({"cartesian": {"planes": [{"normal": [0, 0, 1], "offset": INF}]}}, "safety.cartesian.planes[0].offset", "a finite distance"),
    ({"cartesian": {"tcp_speed_max": 0}}, "safety.cartesian.tcp_speed_max", "a finite speed > 0"),
    ({"cartesian": {"tcp_speed_max": 0.5, "tcp_speed_max_reduced": 1.0}}, "safety.cartesian.tcp_speed_max_reduced", "at most tcp_speed_max"),
    ({"cartesian": {"tool_cone_deg": 200}}, "safety.cartesian.tool_cone_deg", "an angle in (0, 180]"),
    ({"gripper": {"max_effort": -1}}, "safety.gripper.max_effort", "a finite force > 0"),
    ({"watchdog": {"command_timeout": 0}}, "safety.watchdog.command_timeout", "a finite time > 0"),
    ({"watchdog": {"max_missed_state_reads": 0}}, "safety.watchdog.max_missed_state_reads", "an integer >= 1"),
    ({"watchdog": {"max_tracking_error": NAN}}, "safety.watchdog.max_tracking_error", "a finite angle > 0"),
    ({"log_capacity": 0}, "safety.log_capacity", "an integer >= 1"),
]


@pytest.mark.parametrize("data,key_path,expected", BAD, ids=[b[1] for b in BAD])
def test_a_bad_value_is_a_params_error_naming_file_key_value_and_expectation(data, key_path, expected):
    with pytest.raises(ParamsError) as info:
        Envelope.from_dict(data, SOURCE)
    err = info.value
    assert err.source == SOURCE
    assert err.key_path == key_path
    assert expected in err.expected
    assert str(err).startswith(f"{SOURCE}: {key_path}: got ")


def test_the_offending_value_is_reported_as_given():
    with pytest.raises(ParamsError) as info:
        Envelope.from_dict({"joints": {"v_max": [1, 1, 1, NAN, 1, 1, 1]}}, SOURCE)
    assert math.isnan(info.value.value)


def test_a_section_that_is_not_a_mapping_is_rejected():
    with pytest.raises(ParamsError, match="a mapping of safety settings"):
        Envelope.from_dict([1, 2], SOURCE)  # type: ignore[arg-type]


def test_the_envelope_is_immutable():
    env = Envelope.from_dict({}, SOURCE)
    with pytest.raises(Exception):
        env.enabled = False  # type: ignore[misc]
