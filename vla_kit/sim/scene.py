"""The PyBullet world: a Franka Panda on a table with coloured cubes, and its cameras.

Each :class:`TabletopScene` owns its own physics client in ``DIRECT`` mode (no display), so several
scenes coexist in one process. The scene knows physics and rendering only; tasks, actions and
episodes live in :mod:`vla_kit.sim.env`.

Determinism: :meth:`TabletopScene.build` wipes the world (``resetSimulation``) and rebuilds it in a
fixed order, so no contact cache or solver warm start leaks from one episode into the next, and
the same layout gives byte-identical frames. Rendering uses ``ER_TINY_RENDERER``, the CPU
rasteriser, which does not depend on a GPU or a display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from vla_kit.sim.quiet import quiet_c_stdout

with quiet_c_stdout():
    import pybullet
    import pybullet_data
    from pybullet_utils.bullet_client import BulletClient

from vla_kit.sim.geometry import quat_rotate
from vla_kit.sim.layout import COLOUR_RGBA, CUBE_HALF_EXTENT, CUBE_MASS

__all__ = [
    "PHYSICS_HZ",
    "ARM_JOINTS",
    "HOME_JOINTS",
    "FINGER_MAX",
    "CameraSpec",
    "FRONT_CAMERA",
    "TabletopScene",
]

PHYSICS_HZ = 240  # physics steps per second

# Panda joint / link indices in franka_panda/panda.urdf from pybullet_data.
ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
_FINGER_JOINTS = (9, 10)
_HAND_LINK = 8
_EE_LINK = 11  # panda_grasptarget: midway between the fingertips, 10.5 cm below the hand
FINGER_MAX = 0.04  # m of travel per finger; the opening between fingers is up to 0.08 m

# Arm joint limits (rad) and torques (N m) from the URDF; fingers appended for the IK null space,
# which wants one entry per movable joint.
_LOWER = (-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671, 0.0, 0.0)
_UPPER = (2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671, FINGER_MAX, FINGER_MAX)
_RANGES = tuple(u - lo for lo, u in zip(_LOWER, _UPPER))
_ARM_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
_FINGER_FORCE = 20.0  # N per finger, the URDF effort limit
# Stiffer than PyBullet's default (0.1) so a 3 cm step is tracked within about a millimetre.
_ARM_POSITION_GAIN = 0.3

# Home: the gripper pointing down at (0.45, 0, 0.30) m. Solved once with PyBullet IK and rounded;
# also the IK rest pose, which keeps the null-space (elbow) configuration stable.
HOME_JOINTS = (0.0, -0.2614, 0.0, -2.4291, 0.0, 2.1676, 0.7854)

# Table: a box whose top is the z = 0 plane the robot stands on.
_TABLE_HALF_EXTENTS = (0.60, 0.70, 0.025)
_TABLE_CENTRE = (0.35, 0.0, -0.025)
_TABLE_RGBA = (0.62, 0.52, 0.42, 1.0)
_CUBE_FRICTION = 1.0  # matches the finger pads, so a closed grip holds a 0.1 kg cube firmly


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera.

    Attributes:
        eye: camera position, metres, base frame (for the wrist camera: in the hand frame).
        target: the point looked at, same frame as ``eye``.
        up: the image's up direction, same frame as ``eye``.
        fov_deg: vertical field of view, degrees.
        near: near clipping plane, metres.
        far: far clipping plane, metres.
    """

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float]
    fov_deg: float
    near: float = 0.01
    far: float = 3.0


# Facing the robot from across the table and above it, so the gripper hides as few cubes as it can
# and pushed cubes stay in view. The camera looks back along -x: the robot's left (+y) appears on
# the image's right.
FRONT_CAMERA = CameraSpec(eye=(1.0, 0.0, 0.8), target=(0.42, 0.0, 0.05), up=(0.0, 0.0, 1.0), fov_deg=42.0)
# On the hand, behind the fingers, looking along the hand's z axis (down when the gripper points down).
_WRIST_CAMERA = CameraSpec(eye=(0.06, 0.0, 0.02), target=(0.06, 0.0, 0.20), up=(1.0, 0.0, 0.0), fov_deg=75.0)


class TabletopScene:
    """One physics world with a Panda, a table and coloured cubes.

    Args:
        image_size: side of the square camera images, pixels.
    """

    def __init__(self, image_size: int) -> None:
        self.image_size = image_size
        with quiet_c_stdout():
            self._client = BulletClient(connection_mode=pybullet.DIRECT)
        self._client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self._robot = -1
        self._cubes: dict[str, int] = {}
        self._front_view = self._client.computeViewMatrix(FRONT_CAMERA.eye, FRONT_CAMERA.target, FRONT_CAMERA.up)
        self._front_proj = self._projection(FRONT_CAMERA)
        self._wrist_proj = self._projection(_WRIST_CAMERA)

    # -- building ------------------------------------------------------------------------------

    def build(self, cube_xy: Mapping[str, np.ndarray]) -> None:
        """Wipe the world and rebuild it: table, Panda at home with the gripper open, cubes at rest.

        Args:
            cube_xy: colour -> cube centre ``(x, y)`` in metres; cubes rest on the table.
        """
        c = self._client
        c.resetSimulation()
        c.setGravity(0.0, 0.0, -9.81)
        c.setTimeStep(1.0 / PHYSICS_HZ)
        # Broadphase pair order otherwise depends on memory layout; fixing it keeps runs repeatable.
        c.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        table_col = c.createCollisionShape(c.GEOM_BOX, halfExtents=_TABLE_HALF_EXTENTS)
        table_vis = c.createVisualShape(c.GEOM_BOX, halfExtents=_TABLE_HALF_EXTENTS, rgbaColor=_TABLE_RGBA)
        c.createMultiBody(0.0, table_col, table_vis, _TABLE_CENTRE)
        self._robot = c.loadURDF(
            "franka_panda/panda.urdf",
            [0.0, 0.0, 0.0],
            useFixedBase=True,
            flags=c.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
        )
        self.set_arm(HOME_JOINTS, opening=2 * FINGER_MAX)
        self._cubes = {}
        half = [CUBE_HALF_EXTENT] * 3
        for colour, xy in cube_xy.items():
            col = c.createCollisionShape(c.GEOM_BOX, halfExtents=half)
            vis = c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=COLOUR_RGBA[colour])
            body = c.createMultiBody(CUBE_MASS, col, vis, [float(xy[0]), float(xy[1]), CUBE_HALF_EXTENT])
            c.changeDynamics(body, -1, lateralFriction=_CUBE_FRICTION)
            self._cubes[colour] = body

    # -- teleporting (resets and constructed test states) --------------------------------------

    def set_arm(self, joints: tuple[float, ...] | np.ndarray, *, opening: float) -> None:
        """Teleport the arm to ``joints`` (7, rad) and the fingers to ``opening`` (m between them).

        Motor targets are set to the same values so the arm stays there when physics runs.
        """
        c = self._client
        finger = float(np.clip(opening / 2.0, 0.0, FINGER_MAX))
        for j, q in zip(ARM_JOINTS, joints):
            c.resetJointState(self._robot, j, float(q), 0.0)
        for j in _FINGER_JOINTS:
            c.resetJointState(self._robot, j, finger, 0.0)
        self.command(np.asarray(joints, dtype=np.float64), finger)

    def set_cube_pose(self, colour: str, position: np.ndarray, orientation: np.ndarray = (0.0, 0.0, 0.0, 1.0)) -> None:
        """Teleport one cube (position in metres, orientation quaternion ``(x, y, z, w)``), at rest."""
        body = self._cubes[colour]
        pos, orn = [float(v) for v in position], [float(v) for v in orientation]
        self._client.resetBasePositionAndOrientation(body, pos, orn)
        self._client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def add_marker(self, position: np.ndarray, radius: float, rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0)) -> int:
        """A visual-only sphere (no collision, no mass): an obstacle the cameras see and the safety
        layer keeps clear of, without the physics pushing the arm away first. Gone at the next build."""
        c = self._client
        vis = c.createVisualShape(c.GEOM_SPHERE, radius=float(radius), rgbaColor=list(rgba))
        return c.createMultiBody(0.0, -1, vis, [float(v) for v in position])

    # -- control -------------------------------------------------------------------------------

    def solve_ik(self, position: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """Arm joint targets (7, rad) that put the grasp point at ``position`` with ``orientation``.

        Null-space IK with the home pose as rest pose, so the redundant elbow degree of freedom
        does not wander between calls.
        """
        q = self._client.calculateInverseKinematics(
            self._robot,
            _EE_LINK,
            [float(v) for v in position],
            [float(v) for v in orientation],
            lowerLimits=_LOWER,
            upperLimits=_UPPER,
            jointRanges=_RANGES,
            restPoses=HOME_JOINTS + (FINGER_MAX, FINGER_MAX),
            # Measured over the cube region: 30 iterations leave ~2 mm of error (100 give 1.7 mm,
            # the null-space bias dominates) at a third of the cost.
            maxNumIterations=30,
            residualThreshold=1e-4,
        )
        return np.clip(np.asarray(q[: len(ARM_JOINTS)]), _LOWER[:7], _UPPER[:7])

    def command(self, arm_targets: np.ndarray, finger_target: float) -> None:
        """Set position-control targets: arm joints (7, rad) and each finger (m, 0 closed .. 0.04)."""
        c = self._client
        c.setJointMotorControlArray(
            self._robot,
            list(ARM_JOINTS),
            c.POSITION_CONTROL,
            targetPositions=[float(q) for q in arm_targets],
            forces=_ARM_FORCES,
            positionGains=[_ARM_POSITION_GAIN] * len(ARM_JOINTS),
        )
        c.setJointMotorControlArray(
            self._robot,
            list(_FINGER_JOINTS),
            c.POSITION_CONTROL,
            targetPositions=[float(finger_target)] * 2,
            forces=[_FINGER_FORCE] * 2,
        )

    def advance(self, substeps: int) -> None:
        """Run ``substeps`` physics steps of ``1 / PHYSICS_HZ`` s with the current motor targets."""
        for _ in range(substeps):
            self._client.stepSimulation()

    # -- state ---------------------------------------------------------------------------------

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Grasp point position (m, base frame) and orientation quaternion ``(x, y, z, w)``."""
        state = self._client.getLinkState(self._robot, _EE_LINK, computeForwardKinematics=True)
        return np.asarray(state[4], dtype=np.float64), np.asarray(state[5], dtype=np.float64)

    def joint_positions(self) -> np.ndarray:
        """Arm joint positions, rad, ``(7,)``."""
        return np.array([s[0] for s in self._client.getJointStates(self._robot, ARM_JOINTS)])

    def joint_velocities(self) -> np.ndarray:
        """Arm joint velocities, rad/s, ``(7,)``."""
        return np.array([s[1] for s in self._client.getJointStates(self._robot, ARM_JOINTS)])

    def finger_opening(self) -> float:
        """Distance between the two fingers, m (0 closed .. 0.08 open)."""
        return float(sum(s[0] for s in self._client.getJointStates(self._robot, _FINGER_JOINTS)))

    def cube_poses(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """colour -> (centre position in m, orientation quaternion ``(x, y, z, w)``)."""
        out = {}
        for colour, body in self._cubes.items():
            pos, orn = self._client.getBasePositionAndOrientation(body)
            out[colour] = (np.asarray(pos, dtype=np.float64), np.asarray(orn, dtype=np.float64))
        return out

    # -- cameras -------------------------------------------------------------------------------

    def _projection(self, cam: CameraSpec) -> list[float]:
        return self._client.computeProjectionMatrixFOV(cam.fov_deg, 1.0, cam.near, cam.far)

    def _render(self, view: list[float], projection: list[float]) -> np.ndarray:
        n = self.image_size
        _, _, rgba, _, _ = self._client.getCameraImage(
            n,
            n,
            viewMatrix=view,
            projectionMatrix=projection,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
        )
        return np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(n, n, 4)[:, :, :3])

    def render_front(self) -> np.ndarray:
        """The fixed front camera: ``uint8 (image_size, image_size, 3)`` RGB."""
        return self._render(self._front_view, self._front_proj)

    def render_wrist(self) -> np.ndarray:
        """The camera on the hand: ``uint8 (image_size, image_size, 3)`` RGB."""
        pos, orn = self._client.getLinkState(self._robot, _HAND_LINK, computeForwardKinematics=True)[4:6]
        pos = np.asarray(pos)

        def to_world(v: tuple[float, float, float]) -> list[float]:
            return (pos + quat_rotate(orn, np.asarray(v))).tolist()

        up = quat_rotate(orn, np.asarray(_WRIST_CAMERA.up)).tolist()
        view = self._client.computeViewMatrix(to_world(_WRIST_CAMERA.eye), to_world(_WRIST_CAMERA.target), up)
        return self._render(view, self._wrist_proj)

    def close(self) -> None:
        """Disconnect the physics client. The scene cannot be used afterwards."""
        if self._client is not None:
            self._client.disconnect()
            self._client = None  # type: ignore[assignment]
