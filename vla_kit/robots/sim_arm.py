"""The simulated Panda as a joint-position robot, for a control loop that runs at the physics rate.

:class:`~vla_kit.sim.env.TabletopEnv` turns an end-effector delta into motion in one call. A safety
layer needs the stream underneath: one joint-position target per control cycle, and the arm
measured in between. :class:`SimArm` exposes exactly that on an env's scene:

* :meth:`SimArm.plan` turns one ``EE_DELTA`` row into the joint targets of the next
  ``control_dt`` (one per physics step, ``1 / 240`` s): the commanded pose moves by the delta,
  IK is solved at the end of each leg (every 4 physics steps, as the env does) and the targets
  are interpolated linearly in joint space between them. Unlike the env it does **not** clip the
  step size or hold the pose inside a workspace box: those guards are the safety layer's job
  here, and a validation must see what the policy really asked for.
* :meth:`SimArm.send` sets the position-control targets; :meth:`SimArm.tick` runs one physics step.
* :meth:`SimArm.measure` reads the joint positions.

A non-finite row plans non-finite targets (IK is not called): the layer must see them.
"""

from __future__ import annotations

import numpy as np

from vla_kit.sim.env import TabletopEnv
from vla_kit.sim.geometry import clip_norm, quat_conjugate, quat_from_rotvec, quat_multiply, rotvec_from_quat
from vla_kit.sim.scene import FINGER_MAX, PHYSICS_HZ

__all__ = ["SimArm"]

# The same leash as the env: how far the commanded pose may run ahead of the measured one.
_POSITION_LEASH = 0.05  # m
_ROTATION_LEASH = 0.3  # rad
_SUBSTEPS_PER_IK = 4


class SimArm:
    """Joint-level access to the Panda of a :class:`TabletopEnv`.

    Args:
        env: the environment; call :meth:`begin_episode` after each ``env.reset``.
    """

    dof = 7
    period = 1.0 / PHYSICS_HZ  # s per control cycle: one physics step

    def __init__(self, env: TabletopEnv) -> None:
        self.env = env
        self.substeps = env.config.substeps  # cycles per control step (policy row)
        self._pos = np.zeros(3)
        self._orn = np.array([0.0, 0.0, 0.0, 1.0])
        self._last = np.zeros(self.dof)

    def begin_episode(self) -> None:
        """Take the current pose as the commanded one and the measured joints as the last target."""
        self._pos, self._orn = self.env.scene.ee_pose()
        self._last = self.measure()

    def measure(self) -> np.ndarray:
        """Measured arm joint positions (rad), ``(7,)``."""
        return self.env.scene.joint_positions()

    def plan(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """Joint targets for one ``EE_DELTA`` row.

        Args:
            action: ``(dx, dy, dz, rx, ry, rz, gripper)``: m and rad in the base frame, gripper
                0 open .. 1 closed.

        Returns:
            ``(targets, gripper)``: ``float64 (substeps, 7)`` joint positions, one per cycle, and
            the gripper command (NaN when the row is not finite).
        """
        row = np.asarray(action, dtype=np.float64).reshape(-1)
        n = self.substeps
        if row.shape != (7,) or not np.isfinite(row).all():
            return np.full((n, self.dof), np.nan), float("nan")
        scene = self.env.scene
        pos, orn = scene.ee_pose()
        base_pos = pos + clip_norm(self._pos - pos, _POSITION_LEASH)
        lag = rotvec_from_quat(quat_multiply(self._orn, quat_conjugate(orn)))
        base_orn = quat_multiply(quat_from_rotvec(clip_norm(lag, _ROTATION_LEASH)), orn)
        self._pos = base_pos + row[:3]
        goal = quat_multiply(quat_from_rotvec(row[3:6]), base_orn)
        self._orn = goal / np.linalg.norm(goal)
        turn = rotvec_from_quat(quat_multiply(self._orn, quat_conjugate(base_orn)))
        legs = max(1, -(-n // _SUBSTEPS_PER_IK))
        out = np.empty((n, self.dof))
        start, done = self._last, 0
        for leg in range(1, legs + 1):
            f = leg / legs
            target = scene.solve_ik(base_pos + f * (self._pos - base_pos), quat_multiply(quat_from_rotvec(f * turn), base_orn))
            k = round(f * n) - done
            out[done:done + k] = start + (target - start) * (np.arange(1, k + 1)[:, None] / k)
            start, done = target, done + k
        self._last = out[-1].copy()
        return out, float(row[6])

    def send(self, q: np.ndarray, gripper: float | None) -> None:
        """Position-control targets: arm joints (rad) and the gripper (0 open .. 1 closed; ``None``: open)."""
        g = 0.0 if gripper is None else min(max(float(gripper), 0.0), 1.0)
        self.env.scene.command(q, FINGER_MAX * (1.0 - g))

    def tick(self) -> None:
        """Advance the physics by one cycle."""
        self.env.scene.advance(1)
