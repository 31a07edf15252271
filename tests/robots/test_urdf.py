"""The URDF chain reader, and the hard-coded Panda constants checked against the URDF they came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_kit.errors import ArtifactError
from vla_kit.robots.models import PANDA_TOOL_CHAIN, PANDA_URDF_CHAIN, panda_model
from vla_kit.robots.urdf import read_chain

pybullet_data = pytest.importorskip("pybullet_data")
PANDA_URDF = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"


def test_panda_constants_are_the_ones_in_pybullets_urdf():
    chain = read_chain(PANDA_URDF, "panda_grasptarget")
    revolute = [j for j in chain if j.kind == "revolute"]
    fixed = [j for j in chain if j.kind == "fixed"]
    assert [(j.name, j.xyz, j.rpy) for j in revolute] == list(PANDA_URDF_CHAIN)
    assert [(j.name, j.xyz, j.rpy) for j in fixed] == list(PANDA_TOOL_CHAIN)
    assert all(j.axis == (0.0, 0.0, 1.0) for j in revolute)


def test_panda_position_limits_are_the_urdfs_soft_limits_inside_its_hard_ones():
    chain = [j for j in read_chain(PANDA_URDF, "panda_grasptarget") if j.kind == "revolute"]
    model = panda_model()
    np.testing.assert_array_equal(model.q_min, [j.soft_lower for j in chain])
    np.testing.assert_array_equal(model.q_max, [j.soft_upper for j in chain])
    assert np.all(model.q_min > [j.lower for j in chain]) and np.all(model.q_max < [j.upper for j in chain])
    np.testing.assert_array_equal(model.v_max, [j.velocity for j in chain])


def test_reading_a_missing_tip_link_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="no joint leads to link 'nowhere'"):
        read_chain(PANDA_URDF, "nowhere")


def test_reading_a_broken_file_is_an_artifact_error(tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><joint name='j' type='revolute'>")
    with pytest.raises(ArtifactError, match="cannot read URDF"):
        read_chain(bad, "x")


def test_a_malformed_origin_names_the_joint(tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot><joint name='j1' type='revolute'><parent link='a'/><child link='b'/>"
                   "<origin xyz='0 0' rpy='0 0 0'/></joint></robot>")
    with pytest.raises(ArtifactError, match="j1.origin.xyz"):
        read_chain(bad, "b")
