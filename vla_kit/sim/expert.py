"""A scripted expert that solves every built-in task through the env's own action interface.

The expert reads the simulator state (where the target cube and the gripper are) and emits
``EE_DELTA`` actions that go through :meth:`TabletopEnv.step` like any policy's, so its
demonstrations are learnable: every action is a proportional move towards a waypoint, within the
per-step limits, with the gripper command held constant inside a phase.

Phases per family:

- ``reach``: hover above the cube, then descend until just above its top face.
- ``pick``: hover, descend with the gripper open, close, lift. Re-approaches if the cube drops.
- ``push``: hover beside the cube on the side opposite the push, descend with the gripper closed
  (the two fingers make a paddle), then sweep the cube sideways, tracking its ``x`` so the paddle
  stays centred on it.
"""

from __future__ import annotations

import math

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.env import TabletopEnv
from vla_kit.sim.geometry import DOWN_QUATERNION, clip_norm, quat_conjugate, quat_multiply, rotvec_from_quat
from vla_kit.sim.layout import CUBE_HALF_EXTENT, PUSH_TRAVEL
from vla_kit.sim.state import SimState, cube_in_grasp, cube_lift
from vla_kit.sim.tasks import PUSH_DIRECTIONS
from vla_kit.types import ActionChunk, ActionSpace, Observation

__all__ = ["ScriptedExpert"]

_OPEN, _CLOSED = 0.0, 1.0
_HOVER = 0.08  # m above the cube centre before descending: clears every cube top with the fingers
_REACH_ABOVE_TOP = 0.012  # m between the grasp point and the cube's top face when reaching
_GRASP_DEPTH = 0.0  # m, grasp point height relative to the cube centre when closing
_LIFT_Z = 0.18  # m, grasp point height to carry the cube to
_CLOSE_TIME = 0.4  # s to let the fingers close (0.2 m/s each) and the grip settle
_DROP_GRACE = 0.4  # s of lifting before "cube not in the grip" counts as a drop
# Paddle (closed fingers) centre to cube centre along the push axis when descending, m: half the
# cube, the paddle's 3 cm half-width and 1.5 cm of air.
_PUSH_STANDOFF = CUBE_HALF_EXTENT + 0.03 + 0.015
_PUSH_CONTACT = CUBE_HALF_EXTENT + 0.03  # the same distance while touching, m
_PUSH_Z = 0.022  # m, grasp point height while pushing: fingertips 1 cm above the table
_PUSH_SPEED = 0.015  # m per step while in contact: slow enough that the cube slides, not tumbles
_XY_TOLERANCE = 0.006  # m: close enough above the target to start descending
_Z_TOLERANCE = 0.006  # m: close enough to the descent waypoint to act
# A phase that has not converged after this many steps moves on anyway, so a millimetre of
# tracking error can never stall an episode.
_PHASE_TIMEOUT = 25
_ROTATION_GAIN = 0.5  # fraction of the orientation error corrected per step
# Move at just under the env's per-step limit, so float32 rounding never trips the clipper and the
# recorded demonstrations are exactly what was executed.
_SPEED_MARGIN = 0.99


class ScriptedExpert:
    """Solves ``reach``, ``pick`` and ``push`` episodes of a :class:`TabletopEnv`.

    Use it as a policy: ``expert(obs)`` returns a one-step :class:`ActionChunk`. It notices a new
    episode by itself (the env's episode counter), so one expert serves many resets.

    Args:
        env: the environment whose state it reads.

    Raises:
        InputError: (when called) if the env's task family has no script.
    """

    families = ("reach", "pick", "push")

    def __init__(self, env: TabletopEnv) -> None:
        self.env = env
        self._episode = -1
        self.phase = ""
        self._phase_steps = 0
        self._grasp_xy = np.zeros(2)

    def __call__(self, obs: Observation | None = None) -> ActionChunk:
        """Next action as a one-row ``EE_DELTA`` chunk. ``obs`` is accepted for the policy
        signature; the expert reads the simulator state instead."""
        return ActionChunk(self.act()[None, :], ActionSpace.EE_DELTA)

    def act(self) -> np.ndarray:
        """Next action, ``float32 (7,)``: ``(dx, dy, dz, rx, ry, rz, gripper)``.

        Raises:
            InputError: if the env's task family has no script.
        """
        task = self.env.spec.task
        if task not in self.families:
            known = ", ".join(self.families)
            raise InputError("env.spec.task", f"the scripted expert has no script for {task!r}; it knows {known}")
        if self.env.episode_index != self._episode:
            self._episode = self.env.episode_index
            self._enter("approach")
        state = self.env.state()
        script = {"reach": self._reach, "pick": self._pick, "push": self._push}[task]
        action = script(state, state.cube_positions[self.env.spec.colour])
        self._phase_steps += 1
        return action.astype(np.float32)

    # -- scripts -------------------------------------------------------------------------------

    def _reach(self, state: SimState, cube: np.ndarray) -> np.ndarray:
        if self.phase == "approach":
            hover = np.array([cube[0], cube[1], cube[2] + _HOVER])
            if self._above(state, cube) or self._timed_out():
                self._enter("descend")
            else:
                return self._toward(state, hover, _OPEN)
        touch = np.array([cube[0], cube[1], cube[2] + CUBE_HALF_EXTENT + _REACH_ABOVE_TOP])
        return self._toward(state, touch, _OPEN)

    def _pick(self, state: SimState, cube: np.ndarray) -> np.ndarray:
        colour = self.env.spec.colour
        grasp = np.array([cube[0], cube[1], cube[2] + _GRASP_DEPTH])
        if self.phase == "approach":
            if self._above(state, cube) or self._timed_out():
                self._enter("descend")
            else:
                return self._toward(state, np.array([cube[0], cube[1], cube[2] + _HOVER]), _OPEN)
        if self.phase == "descend":
            if abs(state.ee_position[2] - grasp[2]) < _Z_TOLERANCE or self._timed_out():
                self._grasp_xy = grasp[:2].copy()
                self._enter("close")
            else:
                return self._toward(state, grasp, _OPEN)
        if self.phase == "close":
            if self._phase_steps >= self._steps_for(_CLOSE_TIME):
                self._enter("lift")
            else:
                return self._toward(state, grasp, _CLOSED)
        # lift: a cube that slipped out (not held, back on the table) means starting over.
        dropped = not cube_in_grasp(state, colour) and cube_lift(state, colour) < 0.01
        if dropped and self._phase_steps > self._steps_for(_DROP_GRACE):
            self._enter("approach")
            return self._toward(state, state.ee_position + np.array([0.0, 0.0, 0.03]), _OPEN)
        return self._toward(state, np.array([self._grasp_xy[0], self._grasp_xy[1], _LIFT_Z]), _CLOSED)

    def _push(self, state: SimState, cube: np.ndarray) -> np.ndarray:
        direction = PUSH_DIRECTIONS[self.env.spec.variant]
        start = state.initial_cube_positions[self.env.spec.colour]
        beside = cube - direction * _PUSH_STANDOFF
        if self.phase == "approach":
            hover = np.array([beside[0], beside[1], cube[2] + _HOVER])
            if self._above(state, beside) or self._timed_out():
                self._enter("descend")
            else:
                return self._toward(state, hover, _CLOSED)
        if self.phase == "descend":
            low = np.array([beside[0], beside[1], _PUSH_Z])
            if abs(state.ee_position[2] - _PUSH_Z) < _Z_TOLERANCE or self._timed_out():
                self._enter("push")
            else:
                return self._toward(state, low, _CLOSED)
        # push: aim the paddle at where its face meets the cube once it has travelled PUSH_TRAVEL;
        # the lateral coordinate follows the cube so the contact stays centred.
        goal = start + direction * (PUSH_TRAVEL - _PUSH_CONTACT)
        lateral = np.abs(direction[:2]) < 0.5
        goal[:2] = np.where(lateral, cube[:2], goal[:2])
        goal[2] = _PUSH_Z
        return self._toward(state, goal, _CLOSED, speed=_PUSH_SPEED)

    # -- helpers -------------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self._phase_steps = 0

    def _steps_for(self, seconds: float) -> int:
        return max(1, math.ceil(seconds / self.env.config.control_dt - 1e-9))

    def _timed_out(self) -> bool:
        return self._phase_steps >= _PHASE_TIMEOUT

    @staticmethod
    def _above(state: SimState, point: np.ndarray) -> bool:
        centred = float(np.linalg.norm(state.ee_position[:2] - point[:2])) < _XY_TOLERANCE
        return centred and state.ee_position[2] > point[2] + _HOVER - 0.02

    def _toward(
        self, state: SimState, goal: np.ndarray, gripper: float, *, speed: float | None = None
    ) -> np.ndarray:
        limit = _SPEED_MARGIN * self.env.config.max_translation
        move = clip_norm(goal - state.ee_position, limit if speed is None else min(speed, limit))
        # Steer the gripper back to pointing down; the error is small, so a partial correction
        # per step is smooth and never fights the env's own orientation hold.
        error = rotvec_from_quat(quat_multiply(DOWN_QUATERNION, quat_conjugate(state.ee_orientation)))
        turn = clip_norm(_ROTATION_GAIN * error, _SPEED_MARGIN * self.env.config.max_rotation)
        return np.concatenate([move, turn, [gripper]])
