"""The PyBullet world on its own: building, cameras, independent clients."""

from __future__ import annotations

import numpy as np

from vla_kit.sim.layout import CUBE_HALF_EXTENT
from vla_kit.sim.scene import HOME_JOINTS, TabletopScene

LAYOUT = {"red": np.array([0.45, -0.1]), "green": np.array([0.55, 0.1])}


def test_cubes_rest_on_the_table_where_they_were_placed() -> None:
    scene = TabletopScene(32)
    try:
        scene.build(LAYOUT)
        scene.advance(120)  # half a second: a cube dropped or sunk in would have moved by now
        for colour, (pos, _) in scene.cube_poses().items():
            np.testing.assert_allclose(pos[:2], LAYOUT[colour], atol=1e-3)
            assert abs(pos[2] - CUBE_HALF_EXTENT) < 1e-3
    finally:
        scene.close()


def test_arm_starts_at_home_pointing_down_with_fingers_open() -> None:
    scene = TabletopScene(32)
    try:
        scene.build(LAYOUT)
        pos, orn = scene.ee_pose()
        np.testing.assert_allclose(pos, [0.45, 0.0, 0.30], atol=2e-3)
        assert abs(abs(orn[0]) - 1.0) < 1e-3  # a half turn about x
        np.testing.assert_allclose(scene.joint_positions(), HOME_JOINTS)
        assert np.isclose(scene.finger_opening(), 0.08)
    finally:
        scene.close()


def test_two_scenes_in_one_process_do_not_disturb_each_other() -> None:
    a, b = TabletopScene(32), TabletopScene(32)
    try:
        a.build(LAYOUT)
        b.build(LAYOUT)
        b.set_cube_pose("red", np.array([0.3, 0.3, 0.2]))
        b.advance(48)
        np.testing.assert_allclose(a.cube_poses()["red"][0][:2], LAYOUT["red"], atol=1e-6)
        assert not np.allclose(b.cube_poses()["red"][0][:2], LAYOUT["red"], atol=1e-2)
    finally:
        a.close()
        b.close()


def test_ik_solution_puts_the_grasp_point_where_asked() -> None:
    scene = TabletopScene(32)
    try:
        scene.build(LAYOUT)
        goal = np.array([0.55, 0.12, 0.10])
        q = scene.solve_ik(goal, np.array([1.0, 0.0, 0.0, 0.0]))
        scene.set_arm(q, opening=0.08)
        np.testing.assert_allclose(scene.ee_pose()[0], goal, atol=5e-3)
    finally:
        scene.close()


def test_front_and_wrist_images_differ_and_are_rgb_uint8() -> None:
    scene = TabletopScene(40)
    try:
        scene.build(LAYOUT)
        front, wrist = scene.render_front(), scene.render_wrist()
        for img in (front, wrist):
            assert img.shape == (40, 40, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
            assert img.std() > 5  # not a blank frame
        assert not np.array_equal(front, wrist)
    finally:
        scene.close()
