"""Rotation and distance helpers: round trips, composition, clipping, box distance."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.sim.geometry import (
    DOWN_QUATERNION,
    clip_norm,
    point_box_distance,
    quat_conjugate,
    quat_from_rotvec,
    quat_multiply,
    quat_rotate,
    rotvec_from_quat,
)

finite = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False, allow_infinity=False)
vec3 = st.tuples(finite, finite, finite).map(np.array)
# Rotation vectors with angle strictly below pi, where the rotation vector is unique.
small_rotvec = vec3.filter(lambda v: np.linalg.norm(v) < np.pi - 1e-3)


@given(small_rotvec)
def test_rotvec_survives_quaternion_round_trip(rv: np.ndarray) -> None:
    np.testing.assert_allclose(rotvec_from_quat(quat_from_rotvec(rv)), rv, atol=1e-9)


@given(small_rotvec)
def test_negated_quaternion_gives_the_same_rotvec(rv: np.ndarray) -> None:
    q = quat_from_rotvec(rv)
    np.testing.assert_allclose(rotvec_from_quat(-q), rotvec_from_quat(q), atol=1e-9)


@given(small_rotvec, vec3)
def test_rotation_composed_with_its_inverse_leaves_vectors_unchanged(rv: np.ndarray, v: np.ndarray) -> None:
    q = quat_from_rotvec(rv)
    np.testing.assert_allclose(quat_rotate(quat_multiply(quat_conjugate(q), q), v), v, atol=1e-9)


def test_quarter_turn_about_z_maps_x_to_y() -> None:
    q = quat_from_rotvec(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(quat_rotate(q, np.array([1.0, 0.0, 0.0])), [0.0, 1.0, 0.0], atol=1e-12)


def test_down_orientation_points_the_gripper_axis_at_the_table() -> None:
    np.testing.assert_allclose(quat_rotate(DOWN_QUATERNION, np.array([0.0, 0.0, 1.0])), [0.0, 0.0, -1.0], atol=1e-12)


@given(vec3, st.floats(min_value=1e-6, max_value=5.0))
def test_clip_norm_bounds_length_and_keeps_direction(v: np.ndarray, limit: float) -> None:
    out = clip_norm(v, limit)
    assert np.linalg.norm(out) <= limit * (1 + 1e-12)
    if np.linalg.norm(v) <= limit:
        assert np.array_equal(out, v)
    else:
        np.testing.assert_allclose(out / np.linalg.norm(out), v / np.linalg.norm(v), atol=1e-9)


def test_point_box_distance_is_zero_inside_and_measures_to_the_nearest_face() -> None:
    centre, identity, half = np.zeros(3), np.array([0.0, 0.0, 0.0, 1.0]), np.full(3, 0.02)
    assert point_box_distance(np.array([0.01, -0.01, 0.0]), centre, identity, half) == 0.0
    assert np.isclose(point_box_distance(np.array([0.0, 0.0, 0.05]), centre, identity, half), 0.03)
    assert np.isclose(point_box_distance(np.array([0.05, 0.06, 0.0]), centre, identity, half), np.hypot(0.03, 0.04))


def test_point_box_distance_follows_the_box_rotation() -> None:
    # A box turned 45 degrees about z reaches further along x: its corner is at 0.02 * sqrt(2).
    turned = quat_from_rotvec(np.array([0.0, 0.0, np.pi / 4]))
    point = np.array([0.025, 0.0, 0.0])
    assert point_box_distance(point, np.zeros(3), np.array([0, 0, 0, 1.0]), np.full(3, 0.02)) > 0.0
    assert point_box_distance(point, np.zeros(3), turned, np.full(3, 0.02)) == 0.0


@settings(max_examples=50)
@given(vec3)
def test_rotated_vectors_keep_their_length(v: np.ndarray) -> None:
    q = quat_from_rotvec(np.array([0.3, -1.2, 0.5]))
    assert np.isclose(np.linalg.norm(quat_rotate(q, v)), np.linalg.norm(v))
