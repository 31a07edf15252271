"""The `safety:` params section: the safety envelope, validated at load with key paths and file lines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import ROOT
from vla_kit.errors import ParamsError
from vla_kit.params import SafetyParams, load_params
from vla_kit.robots import get_robot_model
from vla_kit.safety import Envelope, OnViolation, SafetyLayer


@pytest.mark.parametrize("name", ["demo.yaml", "ci.yaml"])
def test_the_shipped_files_carry_a_demo_envelope_for_the_panda(name):
    safety = load_params(ROOT / "params" / name).safety
    assert isinstance(safety, SafetyParams) and isinstance(safety, Envelope)
    assert safety.robot == "panda" and safety.enabled and safety.on_violation is OnViolation.CLAMP and safety.period == 0.001
    assert safety.cartesian.tcp_speed_max_reduced is not None and safety.separation.enabled
    SafetyLayer(safety, get_robot_model("panda"))  # usable as it is


def test_without_a_safety_section_the_panda_defaults_apply(write_params):
    p = load_params(write_params({"deployment": "d"}))
    assert p.safety == SafetyParams()
    np.testing.assert_array_equal(p.safety.limits.v_max, get_robot_model("panda").v_max)
    resolved = p.resolved()["safety"]
    assert resolved["robot"] == "panda" and resolved["separation"]["human_speed"] == 1.6


def test_the_section_maps_onto_the_envelope(write_params):
    p = load_params(write_params({"deployment": "d", "safety": {
        "robot": "ur5", "on_violation": "reject", "dt": 0.008, "joints": {"position_margin": 0.1, "v_max": 2.0},
        "cartesian": {"tcp_speed_max": 0.5, "tcp_speed_max_reduced": 0.1, "link_radius": 0.05},
        "separation": {"enabled": True, "human_speed": 2.0}, "watchdog": {"command_timeout": 0.05}}}))
    env = p.safety
    assert env.on_violation is OnViolation.REJECT and env.period == 0.008
    np.testing.assert_allclose(env.limits.q_max, 2 * np.pi - 0.1)
    np.testing.assert_array_equal(env.limits.v_max, np.full(6, 2.0))
    np.testing.assert_array_equal(env.link_radii, np.full(7, 0.05))
    assert env.separation.human_speed == 2.0 and env.watchdog.command_timeout == 0.05


BAD = [
    ("    v_max: [1, 1, 1, .nan, 1, 1, 1]\n", "safety.joints.v_max[3]", 4, "a finite number > 0"),
    ("    a_max: [1, 1, 1, 1, 1, .inf, 1]\n", "safety.joints.a_max[5]", 4, "a finite number > 0"),
    ("    j_max: 0\n", "safety.joints.j_max", 4, "a finite number > 0"),
    ("    max_step: -0.1\n", "safety.joints.max_step", 4, "a finite number > 0"),
    ("    v_max: [1, 1, fast, 1, 1, 1, 1]\n", "safety.joints.v_max[2]", 4, "a valid number"),
    ("    q_min: [0.5, 0, 0, -2, 0, 0.1, 0]\n    q_max: [0.4, 1, 1, -0.1, 1, 2, 1]\n", "safety.joints.q_min[0]", 4,
     "below the upper limit"),
    ("    v_maxx: 1\n", "safety.joints.v_maxx", 4, "no such key"),
]


@pytest.mark.parametrize("joints,key_path,line,expected", BAD, ids=[b[1] for b in BAD])
def test_a_bad_joint_limit_names_the_key_path_and_the_line(write_params, joints, key_path, line, expected):
    path = write_params("deployment: d\nsafety:\n  joints:\n" + joints)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    err = info.value
    assert (err.source, err.key_path, err.line) == (str(path), key_path, line)
    assert expected in err.expected and str(err).startswith(f"{path}:{line}: {key_path}: got ")


@pytest.mark.parametrize("text,key_path,line,expected", [
    ("  cartesian:\n    tcp_box:\n      min: [0, 0, 1]\n      max: [1, 1, 0.5]\n", "safety.cartesian.tcp_box.min[2]", 5, "below"),
    ("  cartesian:\n    tcp_speed_max: 0.5\n    tcp_speed_max_reduced: 1.0\n", "safety.cartesian.tcp_speed_max_reduced", 5, "at most"),
    ("  dt: 0\n", "safety.dt", 3, "0 < dt <= 1"),
    ("  robot: kuka\n", "safety.robot", 3, "one of: panda, ur5"),
    ("  on_violation: explode\n", "safety.on_violation", 3, "'clamp' or 'reject'"),
    ("  obstacles:\n    spheres:\n      - {centre: [0, 0, 1], radius: -0.1}\n", "safety.obstacles.spheres[0].radius", 5, "> 0"),
    ("  separation:\n    human_speed: .nan\n", "safety.separation.human_speed", 4, "a finite speed"),
    ("  separation:\n    enabled: true\n", "safety.cartesian.tcp_speed_max_reduced", 2, "a reduced TCP speed"),
    ("  bogus: 1\n", "safety.bogus", 3, "no such key"),
])
def test_other_bad_values_name_the_key_path_and_the_line(write_params, text, key_path, line, expected):
    path = write_params("deployment: d\nsafety:\n" + text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert (info.value.key_path, info.value.line) == (key_path, line)
    assert expected in info.value.expected


def test_an_override_is_blamed_on_its_set_argument(write_params):
    with pytest.raises(ParamsError) as info:
        load_params(write_params({"deployment": "d"}), ["safety.joints.v_max=-1"])
    assert info.value.source == "--set safety.joints.v_max=-1" and info.value.key_path == "safety.joints.v_max"
    assert math.isclose(info.value.value, -1.0)
