"""Serial-arm kinematics: a robot's published limits plus vectorised forward kinematics.

A :class:`RobotModel` describes a chain of revolute joints. Every joint ``i`` contributes the
transform ``pre_i @ Rz(q_i) @ post_i``: a URDF joint has its ``<origin>`` in ``pre`` and identity
in ``post``; a standard Denavit-Hartenberg joint has identity in ``pre`` and
``Tz(d) Tx(a) Rx(alpha)`` in ``post``. Both conventions therefore run through the same code.

Forward kinematics is batched over any leading shape and cheap enough for several calls every
control cycle: each joint transform is ``cos(q) C + sin(q) S + K`` with the three 4x4 matrices
precomputed, so a 7-DoF pose is seven 4x4 products, run in compiled code
(:func:`vla_kit.robots.fk_kernel.chain_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_kit.errors import InputError
from vla_kit.robots.fk_kernel import chain_frames

__all__ = [
    "RobotModel",
    "Kinematics",
    "rot_x",
    "rot_z",
    "rpy_matrix",
    "translation",
    "dh_transform",
]


def translation(x: float, y: float, z: float) -> np.ndarray:
    """Homogeneous 4x4 translation."""
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


def rot_x(angle: float) -> np.ndarray:
    """Homogeneous 4x4 rotation about x by ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.eye(4)
    r[1:3, 1:3] = ((c, -s), (s, c))
    return r


def rot_z(angle: float) -> np.ndarray:
    """Homogeneous 4x4 rotation about z by ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    r = np.eye(4)
    r[0:2, 0:2] = ((c, -s), (s, c))
    return r


def rpy_matrix(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> np.ndarray:
    """The 4x4 transform of a URDF ``<origin xyz rpy>`` (fixed-axis roll, pitch, yaw: ``Rz Ry Rx``)."""
    roll, pitch, yaw = rpy
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    t = np.eye(4)
    t[:3, :3] = (
        (cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr),
        (sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr),
        (-sp, cp * sr, cp * cr),
    )
    t[:3, 3] = xyz
    return t


def dh_transform(d: float, a: float, alpha: float) -> np.ndarray:
    """The fixed part ``Tz(d) Tx(a) Rx(alpha)`` of a standard DH joint (the ``Rz(theta)`` comes first)."""
    return translation(0.0, 0.0, d) @ translation(a, 0.0, 0.0) @ rot_x(alpha)


def _readonly(values: object, n: int, what: str) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    if arr.shape != (n,):
        raise InputError(what, f"expected {n} values, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Kinematics:
    """Forward kinematics of one or a batch of configurations.

    Attributes:
        frames: ``(..., n + 2, 4, 4)``: index 0 is the base, ``i`` (1..n) the frame carried by
            joint ``i``, and the last one the tool centre point (TCP).
        elbow_index: which entry of ``frames`` is the elbow.
    """

    frames: np.ndarray
    elbow_index: int

    @property
    def tcp(self) -> np.ndarray:
        """TCP pose, ``(..., 4, 4)``."""
        return self.frames[..., -1, :, :]

    @property
    def tcp_position(self) -> np.ndarray:
        """TCP position in the base frame (m), ``(..., 3)``."""
        return self.frames[..., -1, :3, 3]

    @property
    def tool_z(self) -> np.ndarray:
        """Unit z axis of the TCP (the approach direction) in the base frame, ``(..., 3)``."""
        return self.frames[..., -1, :3, 2]

    @property
    def elbow_position(self) -> np.ndarray:
        """Elbow position in the base frame (m), ``(..., 3)``."""
        return self.frames[..., self.elbow_index, :3, 3]


@dataclass(frozen=True, eq=False)
class RobotModel:
    """A serial arm: names, published limits and the kinematic chain.

    Args:
        name: short registry name, e.g. ``"panda"``.
        joint_names: one name per revolute joint, base to tip.
        q_min, q_max: position limits (rad).
        v_max: velocity limits (rad/s). a_max: acceleration limits (rad/s^2). j_max: jerk limits (rad/s^3).
        control_period: the robot controller's native period (s).
        pre, post: ``(n, 4, 4)`` fixed transforms before and after each joint's ``Rz(q)``.
        tool: fixed 4x4 transform from the last joint frame to the TCP.
        elbow_index: index into :attr:`Kinematics.frames` of the elbow frame.
        limits_source: where the limit values come from (datasheet, driver, our own choice).
    """

    name: str
    joint_names: tuple[str, ...]
    q_min: np.ndarray
    q_max: np.ndarray
    v_max: np.ndarray
    a_max: np.ndarray
    j_max: np.ndarray
    control_period: float
    pre: np.ndarray
    post: np.ndarray
    tool: np.ndarray
    elbow_index: int
    limits_source: str = ""
    _cos: np.ndarray = field(init=False, repr=False)
    _sin: np.ndarray = field(init=False, repr=False)
    _const: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n < 1:
            raise InputError(f"robot {self.name!r}.joint_names", "a robot needs at least one joint")
        for attr in ("q_min", "q_max", "v_max", "a_max", "j_max"):
            object.__setattr__(self, attr, _readonly(getattr(self, attr), n, f"robot {self.name!r}.{attr}"))
        if np.any(self.q_min >= self.q_max):
            raise InputError(f"robot {self.name!r}.q_min", "every lower position limit must be below the upper one")
        for attr in ("v_max", "a_max", "j_max"):
            if not np.all(np.isfinite(getattr(self, attr))) or np.any(getattr(self, attr) <= 0):
                raise InputError(f"robot {self.name!r}.{attr}", "limits must be finite and > 0")
        pre = np.array(self.pre, dtype=np.float64)
        post = np.array(self.post, dtype=np.float64)
        if pre.shape != (n, 4, 4) or post.shape != (n, 4, 4):
            raise InputError(f"robot {self.name!r}.pre/post", f"expected shape ({n}, 4, 4)")
        if not 0 <= self.elbow_index <= n + 1:
            raise InputError(f"robot {self.name!r}.elbow_index", f"expected 0..{n + 1}")
        # Rz(q) = cos(q) Ec + sin(q) Es + E1, so pre Rz post = cos(q) C + sin(q) S + K.
        e_c = np.diag([1.0, 1.0, 0.0, 0.0])
        e_s = np.zeros((4, 4))
        e_s[0, 1], e_s[1, 0] = -1.0, 1.0
        e_1 = np.diag([0.0, 0.0, 1.0, 1.0])
        for attr, value in (
            ("pre", pre),
            ("post", post),
            ("tool", np.array(self.tool, dtype=np.float64)),
            ("_cos", pre @ e_c @ post),
            ("_sin", pre @ e_s @ post),
            ("_const", pre @ e_1 @ post),
        ):
            value.setflags(write=False)
            object.__setattr__(self, attr, value)

    @property
    def dof(self) -> int:
        """Number of joints."""
        return len(self.joint_names)

    def forward(self, q: np.ndarray) -> Kinematics:
        """Forward kinematics of ``q`` (rad), shape ``(..., dof)``; any leading batch shape.

        Returns:
            :class:`Kinematics` with every link frame, the TCP and the elbow.

        Raises:
            InputError: ``q`` does not end in ``dof`` values.
        """
        q = np.asarray(q, dtype=np.float64)
        if q.ndim < 1 or q.shape[-1] != self.dof:
            raise InputError("q", f"expected shape (..., {self.dof}) for robot {self.name!r}, got {q.shape}")
        n = self.dof
        lead = q.shape[:-1]
        flat = np.ascontiguousarray(q.reshape(-1, n))
        frames = np.empty((flat.shape[0], n + 2, 4, 4))
        chain_frames(flat, self._cos, self._sin, self._const, self.tool, frames)
        return Kinematics(frames=frames.reshape(lead + (n + 2, 4, 4)), elbow_index=self.elbow_index)

    def lever_arms(self) -> np.ndarray:
        """Upper bound (m) on the distance from each joint's axis to the TCP, over all configurations.

        The sum of the translation lengths of every fixed transform after the joint (triangle
        inequality), so ``|Δp_tcp| <= sum_i lever_arms[i] * |Δq_i|`` for any motion.
        """
        lengths_after = np.array([np.linalg.norm(self.post[i, :3, 3]) for i in range(self.dof)])
        lengths_before_next = np.array([np.linalg.norm(self.pre[i, :3, 3]) for i in range(self.dof)])
        tool = float(np.linalg.norm(self.tool[:3, 3]))
        arms = np.empty(self.dof)
        for i in range(self.dof):
            arms[i] = lengths_after[i] + lengths_before_next[i + 1 :].sum() + lengths_after[i + 1 :].sum() + tool
        return arms
