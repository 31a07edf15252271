"""The built-in robot models (Franka Panda, UR5) and the registry that names them.

Numbers and where they come from:

* **Panda** — joint origins and axes from ``pybullet_data/franka_panda/panda.urdf`` (the same
  file the simulator loads; a test re-reads it with :func:`vla_kit.robots.urdf.read_chain`).
  Position, velocity, acceleration and jerk limits from Franka's published joint-space limits
  (the values in libfranka's ``rate_limiting.h``); the URDF's ``<safety_controller>`` soft limits
  equal the published position limits, its hard ``<limit>`` values are a little wider.
  The TCP is the URDF's ``panda_grasptarget`` (flange + 0.107 m, hand rotated -45°, + 0.105 m).
* **UR5 (CB3)** — standard DH parameters published by Universal Robots, ±2π position limits and
  180°/s on every joint (datasheet). UR publishes **no** joint acceleration or jerk limit (the
  controller limits torque); 5 rad/s² is the conservative value ``ur_moveit_config`` uses, and
  100 rad/s³ is our own conservative choice (full acceleration in 50 ms). Override both in the
  safety envelope if your application is measured. Frames follow the DH base frame, which is
  ``base_link`` of ``ur_description`` rotated by π about z.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vla_kit.registry import Registry
from vla_kit.robots.kinematics import RobotModel, dh_transform, rpy_matrix, translation

__all__ = [
    "ROBOT_MODELS",
    "get_robot_model",
    "panda_model",
    "ur5_model",
    "PANDA_URDF_CHAIN",
    "PANDA_TOOL_CHAIN",
    "UR5_DH",
]

# (joint name, origin xyz (m), origin rpy (rad)), exactly as written in panda.urdf; every axis is +z.
PANDA_URDF_CHAIN: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("panda_joint1", (0.0, 0.0, 0.333), (0.0, 0.0, 0.0)),
    ("panda_joint2", (0.0, 0.0, 0.0), (-1.57079632679, 0.0, 0.0)),
    ("panda_joint3", (0.0, -0.316, 0.0), (1.57079632679, 0.0, 0.0)),
    ("panda_joint4", (0.0825, 0.0, 0.0), (1.57079632679, 0.0, 0.0)),
    ("panda_joint5", (-0.0825, 0.384, 0.0), (-1.57079632679, 0.0, 0.0)),
    ("panda_joint6", (0.0, 0.0, 0.0), (1.57079632679, 0.0, 0.0)),
    ("panda_joint7", (0.088, 0.0, 0.0), (1.57079632679, 0.0, 0.0)),
)
# Fixed joints from panda_link7 to panda_grasptarget (the TCP).
PANDA_TOOL_CHAIN: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("panda_joint8", (0.0, 0.0, 0.107), (0.0, 0.0, 0.0)),
    ("panda_hand_joint", (0.0, 0.0, 0.0), (0.0, 0.0, -0.785398163397)),
    ("panda_grasptarget_hand", (0.0, 0.0, 0.105), (0.0, 0.0, 0.0)),
)

# Standard DH (d (m), a (m), alpha (rad)) per joint, Universal Robots' published UR5 values.
UR5_DH: tuple[tuple[float, float, float], ...] = (
    (0.089159, 0.0, np.pi / 2),
    (0.0, -0.425, 0.0),
    (0.0, -0.39225, 0.0),
    (0.10915, 0.0, np.pi / 2),
    (0.09465, 0.0, -np.pi / 2),
    (0.0823, 0.0, 0.0),
)


def panda_model() -> RobotModel:
    """The Franka Emika Panda (7 joints, 1 kHz controller); see the module docstring for sources."""
    pre = np.stack([rpy_matrix(xyz, rpy) for _, xyz, rpy in PANDA_URDF_CHAIN])
    tool = np.eye(4)
    for _, xyz, rpy in PANDA_TOOL_CHAIN:
        tool = tool @ rpy_matrix(xyz, rpy)
    return RobotModel(
        name="panda",
        joint_names=tuple(name for name, _, _ in PANDA_URDF_CHAIN),
        q_min=[-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973],
        q_max=[2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973],
        v_max=[2.1750, 2.1750, 2.1750, 2.1750, 2.6100, 2.6100, 2.6100],
        a_max=[15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0],
        j_max=[7500.0, 3750.0, 5000.0, 6250.0, 7500.0, 10000.0, 10000.0],
        control_period=0.001,
        pre=pre,
        post=np.broadcast_to(np.eye(4), (7, 4, 4)),
        tool=tool,
        elbow_index=4,
        limits_source="Franka Emika Panda datasheet joint limits (libfranka rate_limiting.h)",
    )


def ur5_model() -> RobotModel:
    """The Universal Robots UR5 CB3 (6 joints, 125 Hz ``servoj``); see the module docstring for sources."""
    post = np.stack([dh_transform(d, a, alpha) for d, a, alpha in UR5_DH])
    return RobotModel(
        name="ur5",
        joint_names=(
            "shoulder_pan_joint",
            "shoulder_lift_joint",
            "elbow_joint",
            "wrist_1_joint",
            "wrist_2_joint",
            "wrist_3_joint",
        ),
        q_min=[-2 * np.pi] * 6,
        q_max=[2 * np.pi] * 6,
        v_max=[np.pi] * 6,
        a_max=[5.0] * 6,
        j_max=[100.0] * 6,
        control_period=0.008,
        pre=np.broadcast_to(np.eye(4), (6, 4, 4)),
        post=post,
        tool=translation(0.0, 0.0, 0.0),
        elbow_index=2,
        limits_source=(
            "UR5 datasheet: ±2π, 180°/s; acceleration 5 rad/s² (ur_moveit_config, not published by UR); "
            "jerk 100 rad/s³ (vla_kit choice, not published by UR)"
        ),
    )


# Robot name -> factory building an immutable RobotModel.
ROBOT_MODELS: Registry[Callable[[], RobotModel]] = Registry("robot model")
ROBOT_MODELS.register("panda", panda_model)
ROBOT_MODELS.register("ur5", ur5_model)


def get_robot_model(name: str) -> RobotModel:
    """A fresh :class:`RobotModel` from the factory registered as ``name``.

    Raises:
        RegistryError: no model of that name; the message lists the known ones.
    """
    return ROBOT_MODELS.get(name)()
