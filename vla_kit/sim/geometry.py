"""Small rotation and distance helpers shared by the simulator, its tasks and the expert.

Quaternions are in PyBullet's order ``(x, y, z, w)``. Rotation vectors are axis * angle (rad), the
representation :class:`vla_kit.types.ActionSpace.EE_DELTA` uses for rotation deltas. Pure numpy so
predicates and tests can use them without a physics client.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DOWN_QUATERNION",
    "quat_multiply",
    "quat_conjugate",
    "quat_rotate",
    "quat_from_rotvec",
    "rotvec_from_quat",
    "clip_norm",
    "point_box_distance",
]

# Gripper pointing straight down with the fingers closing along the base y axis: a half turn about
# x. The simulator's default end-effector orientation, and the zero of the proprio rotation.
DOWN_QUATERNION = np.array([1.0, 0.0, 0.0, 0.0])
DOWN_QUATERNION.setflags(write=False)  # shared default; nobody may change it in place

# Below this angle (rad) the rotation is treated as identity; avoids dividing by ~0 for the axis.
_TINY_ANGLE = 1e-12


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a ⊗ b`` (apply ``b`` first, then ``a``).

    Args:
        a: quaternion ``(x, y, z, w)``.
        b: quaternion ``(x, y, z, w)``.

    Returns:
        The product as a float64 array of shape ``(4,)``.
    """
    ax, ay, az, aw = np.asarray(a, dtype=np.float64)
    bx, by, bz, bw = np.asarray(b, dtype=np.float64)
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of a unit quaternion ``(x, y, z, w)``."""
    x, y, z, w = np.asarray(q, dtype=np.float64)
    return np.array([-x, -y, -z, w])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate the 3-vector ``v`` by the unit quaternion ``q``.

    Args:
        q: quaternion ``(x, y, z, w)``.
        v: vector of shape ``(3,)``.

    Returns:
        The rotated vector, float64 ``(3,)``.
    """
    qv = np.concatenate([np.asarray(v, dtype=np.float64), [0.0]])
    return quat_multiply(quat_multiply(q, qv), quat_conjugate(q))[:3]


def quat_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(x, y, z, w)`` for a rotation vector (axis * angle, rad)."""
    rv = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rv))
    if angle < _TINY_ANGLE:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = rv / angle
    return np.concatenate([axis * np.sin(angle / 2.0), [np.cos(angle / 2.0)]])


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, angle in ``[0, pi]``) of a quaternion ``(x, y, z, w)``.

    ``q`` and ``-q`` are the same rotation; the shorter of the two is returned, so the result is
    continuous around the identity, which is where the proprio and the expert use it.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q)
    if q[3] < 0.0:
        q = -q
    v = q[:3]
    s = float(np.linalg.norm(v))
    if s < _TINY_ANGLE:
        return 2.0 * v
    angle = 2.0 * np.arctan2(s, q[3])
    return v / s * angle


def clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    """Scale ``v`` down so its Euclidean norm is at most ``limit``, keeping its direction.

    An in-limit vector comes back unchanged (same values), so callers can compare to detect
    clipping.
    """
    v = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if n <= limit:
        return v
    return v * (limit / n)


def point_box_distance(
    point: np.ndarray, centre: np.ndarray, orientation: np.ndarray, half_extents: np.ndarray
) -> float:
    """Euclidean distance from a point to the surface of a solid oriented box (0 inside it).

    Args:
        point: the query point, ``(3,)``, metres.
        centre: the box centre, ``(3,)``, metres.
        orientation: the box orientation, quaternion ``(x, y, z, w)``.
        half_extents: half the box size along its own axes, ``(3,)``, metres.

    Returns:
        The distance in metres.
    """
    local = quat_rotate(quat_conjugate(orientation), np.asarray(point, dtype=np.float64) - centre)
    outside = np.maximum(np.abs(local) - np.asarray(half_extents, dtype=np.float64), 0.0)
    return float(np.linalg.norm(outside))
