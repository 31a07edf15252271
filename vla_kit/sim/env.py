"""The simulated tabletop environment: reset to a seeded episode, step end-effector deltas, observe.

Actions live in :attr:`ActionSpace.EE_DELTA`: ``(dx, dy, dz)`` in metres and a rotation vector in
radians, both in the base frame, then the gripper command in ``[0 open, 1 closed]``. Each step
clips the translation and rotation to per-step maxima (keeping their direction), turns the new
gripper pose into joint targets by PyBullet IK and holds them for one control period.

Deltas accumulate on a commanded pose that the env keeps, so a zero action holds the arm exactly
still; the commanded pose is kept on a short leash around the measured one, so pushing against
the table or a cube cannot wind it up.

Proprio layout (``float32[14]``, see :data:`PROPRIO_LAYOUT`):

=========  ==================  ==========================================================
indices    name                meaning
=========  ==================  ==========================================================
0:3        ``ee_position``     grasp point between the fingertips, m, base frame
3:6        ``ee_rotation``     rotation vector (rad, base frame) from "pointing down" to the
                               gripper's orientation; zero when it points straight down
6          ``finger_opening``  distance between the fingers, m (0 closed .. 0.08 open)
7:14       ``joint_positions`` arm joints 1-7, rad
=========  ==================  ==========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.action import as_ee_delta, clip_ee_delta
from vla_kit.sim.geometry import (
    DOWN_QUATERNION,
    clip_norm,
    quat_conjugate,
    quat_from_rotvec,
    quat_multiply,
    rotvec_from_quat,
)
from vla_kit.sim.layout import COLOURS, check_colour, sample_layout
from vla_kit.sim.scene import FINGER_MAX, PHYSICS_HZ, TabletopScene
from vla_kit.sim.state import SimState, closest_colour
from vla_kit.sim.tasks import Task, TaskSpec, get_task
from vla_kit.types import Observation

__all__ = ["SimConfig", "StepResult", "TabletopEnv", "make_env", "PROPRIO_LAYOUT", "PROPRIO_DIM"]

PROPRIO_LAYOUT: dict[str, slice] = {
    "ee_position": slice(0, 3),
    "ee_rotation": slice(3, 6),
    "finger_opening": slice(6, 7),
    "joint_positions": slice(7, 14),
}
PROPRIO_DIM = 14

# Where the commanded grasp point may go (m, base frame). The floor keeps the fingertips, which
# reach 1.1 cm below the grasp point, just above the table.
_EE_LOW = np.array([0.20, -0.50, 0.015])
_EE_HIGH = np.array([0.80, 0.50, 0.60])
# How far the commanded pose may run ahead of the measured one (m, rad) before it is pulled back.
_POSITION_LEASH = 0.05
_ROTATION_LEASH = 0.3
# Physics steps between IK updates while the target walks along the commanded line (60 Hz).
_SUBSTEPS_PER_IK = 4
# IK solves when teleporting the gripper; five bring a 0.3 m jump to the ~2 mm IK floor.
_PLACE_IK_PASSES = 5
_IMAGE_SIZE_RANGE = (8, 1024)  # px
# Independent random streams per seed: the layout must not depend on the task or colour asked.
_LAYOUT_STREAM = 0
_GOAL_STREAM = 1
_START_STREAM = 2


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """How the simulated tabletop runs. Validated on construction.

    Attributes:
        image_size: side of the square camera images, pixels.
        wrist_camera: also render a camera on the hand, as ``images["wrist"]``.
        control_dt: seconds per :meth:`TabletopEnv.step`; a multiple of the 1/240 s physics step.
        max_translation: most the grasp point may move per step, m (norm of ``dx, dy, dz``).
        max_rotation: most the gripper may turn per step, rad (norm of the rotation vector).
        max_steps: episode length in steps; ``None`` takes the task family's default.
        start_jitter: half-width (m) of the box around the home grasp point the episode starts in
            (x and y; z gets half of it). 0 starts every episode at home. Learned policies need
            varied starts: from a fixed start, the arm's position mid-episode gives away the target
            and a policy can imitate without looking (the "copycat" shortcut).
    """

    image_size: int = 96
    wrist_camera: bool = False
    control_dt: float = 0.1
    max_translation: float = 0.03
    max_rotation: float = 0.2
    max_steps: int | None = None
    start_jitter: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.start_jitter, (int, float)) or not 0.0 <= self.start_jitter <= 0.15:
            raise InputError("start_jitter", f"expected metres in [0, 0.15], got {self.start_jitter!r}")
        lo, hi = _IMAGE_SIZE_RANGE
        if not _is_int(self.image_size) or not lo <= self.image_size <= hi:
            raise InputError("image_size", f"expected an int in [{lo}, {hi}] pixels, got {self.image_size!r}")
        if not isinstance(self.wrist_camera, bool):
            raise InputError("wrist_camera", f"expected a bool, got {self.wrist_camera!r}")
        substeps = round(self.control_dt * PHYSICS_HZ) if _is_positive(self.control_dt) else 0
        if substeps < 1 or not math.isclose(substeps / PHYSICS_HZ, self.control_dt, rel_tol=0.0, abs_tol=1e-9):
            raise InputError("control_dt", f"expected a positive multiple of 1/{PHYSICS_HZ} s, got {self.control_dt!r}")
        for name in ("max_translation", "max_rotation"):
            if not _is_positive(getattr(self, name)):
                raise InputError(name, f"expected a positive finite number, got {getattr(self, name)!r}")
        if self.max_steps is not None and (not _is_int(self.max_steps) or self.max_steps < 1):
            raise InputError("max_steps", f"expected None or an int >= 1, got {self.max_steps!r}")

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return round(self.control_dt * PHYSICS_HZ)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_positive(v: Any) -> bool:
    number = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    return number and math.isfinite(v) and v > 0


@dataclass(frozen=True)
class StepResult:
    """What one :meth:`TabletopEnv.step` did. Call :meth:`TabletopEnv.observe` for the new frame.

    Attributes:
        action: the action actually executed, ``float32 (7,)``, after clipping.
        clipped: the requested action exceeded a per-step limit and was scaled down.
        workspace_limited: the commanded grasp point was held inside the workspace box.
        success: the task's predicate holds after this step.
        done: ``success``, or the episode's step budget is used up.
        step: steps taken in this episode, this one included.
    """

    action: np.ndarray
    clipped: bool
    workspace_limited: bool
    success: bool
    done: bool
    step: int


class TabletopEnv:
    """A Panda at a table with red, green, blue and yellow cubes, one of them the task's target.

    Args:
        task: task family name (see :func:`vla_kit.sim.tasks.task_names`).
        colour: target colour, or ``None`` to draw it from the seed.
        seed: the first episode's seed; the layout, target and wording follow from it.
        config: how the simulation runs; defaults to :class:`SimConfig()`.

    Raises:
        RegistryError: unknown task.
        InputError: unknown colour or a bad seed.
    """

    def __init__(
        self,
        task: str = "reach",
        colour: str | None = None,
        seed: int = 0,
        *,
        config: SimConfig | None = None,
    ) -> None:
        if seed is None:
            raise InputError("seed", "expected a non-negative int for the first episode, got None")
        self.config = config if config is not None else SimConfig()
        self.scene = TabletopScene(self.config.image_size)
        self._task_name = task
        self._colour = colour
        self.episode_index = -1
        self.seed = -1
        try:
            self.reset(seed=seed)
        except Exception:
            self.scene.close()
            raise

    # -- episode -------------------------------------------------------------------------------

    def reset(
        self,
        seed: int | None = None,
        task: str | None = None,
        colour: str | None = None,
        *,
        images: bool = True,
    ) -> Observation:
        """Start a new episode.

        Args:
            seed: the episode seed; ``None`` takes the previous seed + 1. The cube layout depends
                on the seed alone; the target colour (when not given), the instruction wording and
                any variant come from the seed too.
            task: task family; ``None`` keeps the current one.
            colour: target colour; ``None`` keeps the current choice (which may be "from the seed").
            images: render the cameras for the returned observation (see :meth:`observe`).

        Returns:
            The first observation.

        Raises:
            RegistryError: unknown task.
            InputError: unknown colour, or a seed that is not a non-negative int.
        """
        seed = self.seed + 1 if seed is None else seed
        if not _is_int(seed) or seed < 0:
            raise InputError("seed", f"expected a non-negative int, got {seed!r}")
        task_name = self._task_name if task is None else task
        task_obj = get_task(task_name)
        chosen = self._colour if colour is None else colour
        if chosen is not None:
            check_colour(chosen)

        layout = sample_layout(np.random.default_rng([int(seed), _LAYOUT_STREAM]))
        goal_rng = np.random.default_rng([int(seed), _GOAL_STREAM])
        # Always drawn, even when the colour is given, so the wording does not depend on it.
        drawn = COLOURS[int(goal_rng.integers(len(COLOURS)))]
        spec = task_obj.make_spec(chosen if chosen is not None else drawn, goal_rng)

        self.scene.build(layout)
        self.seed = int(seed)
        self._task_name, self._colour = task_name, chosen
        self.task: Task = task_obj
        self.spec: TaskSpec = spec
        self.max_steps = self.config.max_steps or task_obj.max_steps
        self.steps_taken = 0
        self.episode_index += 1
        self._initial_cubes = {c: pos.copy() for c, (pos, _) in self.scene.cube_poses().items()}
        self._target_pos, _ = self.scene.ee_pose()
        self._target_orn = DOWN_QUATERNION.copy()
        if self.config.start_jitter > 0:
            j = self.config.start_jitter
            offset = np.random.default_rng([int(seed), _START_STREAM]).uniform(-1.0, 1.0, 3) * np.array([j, j, j / 2])
            self.place_gripper(np.clip(self._target_pos + offset, _EE_LOW, _EE_HIGH))
        return self.observe(images=images)

    @property
    def done(self) -> bool:
        """The episode succeeded or used its step budget."""
        return self.steps_taken >= self.max_steps or self.success()

    def step(self, action: Any) -> StepResult:
        """Execute one ``EE_DELTA`` action for one control period.

        Args:
            action: 7 numbers ``(dx, dy, dz, rx, ry, rz, gripper)``; see the module docstring.

        Returns:
            A :class:`StepResult` with the executed (clipped) action and the task status.

        Raises:
            InputError: wrong shape, non-numeric, NaN or infinite entries. Nothing moves then.
        """
        executed, clipped = clip_ee_delta(
            as_ee_delta(action), max_translation=self.config.max_translation, max_rotation=self.config.max_rotation
        )

        pos, orn = self.scene.ee_pose()
        base_pos = pos + clip_norm(self._target_pos - pos, _POSITION_LEASH)
        lag = rotvec_from_quat(quat_multiply(self._target_orn, quat_conjugate(orn)))
        base_orn = quat_multiply(quat_from_rotvec(clip_norm(lag, _ROTATION_LEASH)), orn)
        wanted = base_pos + executed[:3]
        self._target_pos = np.clip(wanted, _EE_LOW, _EE_HIGH)
        target_orn = quat_multiply(quat_from_rotvec(executed[3:6]), base_orn)
        self._target_orn = target_orn / np.linalg.norm(target_orn)
        self._drive(base_pos, base_orn, FINGER_MAX * (1.0 - executed[6]))
        self.steps_taken += 1
        success = self.success()
        return StepResult(
            action=executed.astype(np.float32),
            clipped=clipped,
            workspace_limited=not np.array_equal(self._target_pos, wanted),
            success=success,
            done=success or self.steps_taken >= self.max_steps,
            step=self.steps_taken,
        )

    # -- constructing states (tests, scenarios) ------------------------------------------------

    def place_gripper(
        self,
        position: np.ndarray,
        *,
        orientation: np.ndarray = DOWN_QUATERNION,
        opening: float = 2 * FINGER_MAX,
    ) -> None:
        """Teleport the gripper (by IK) and make that the commanded pose, so the next step starts there.

        Args:
            position: grasp point, m, base frame (IK leaves ~2 mm of error).
            orientation: gripper orientation quaternion ``(x, y, z, w)``; default pointing down.
            opening: distance between the fingers, m (0 .. 0.08).
        """
        position = np.asarray(position, dtype=np.float64)
        orientation = np.asarray(orientation, dtype=np.float64)
        orientation = orientation / np.linalg.norm(orientation)
        # PyBullet's IK starts from the current joints; from far away one solve lands centimetres
        # off, and each re-solve from the previous answer closes most of the remaining gap.
        for _ in range(_PLACE_IK_PASSES):
            self.scene.set_arm(self.scene.solve_ik(position, orientation), opening=opening)
        self._target_pos, self._target_orn = position.copy(), orientation

    def place_cube(self, colour: str, position: np.ndarray) -> None:
        """Teleport the ``colour`` cube's centre to ``position`` (m), at rest and axis-aligned.

        Raises:
            InputError: unknown colour.
        """
        check_colour(colour)
        self.scene.set_cube_pose(colour, np.asarray(position, dtype=np.float64))

    def _drive(self, start_pos: np.ndarray, start_orn: np.ndarray, finger: float) -> None:
        # One IK target for the whole period would let each joint converge at its own rate, and
        # the grasp point would swing off the straight line (measured: 2.7 cm below a 3 cm
        # downward step). Walking the target along the line in short legs keeps it within
        # millimetres of the path, which matters a centimetre above the table.
        substeps = self.config.substeps
        legs = max(1, -(-substeps // _SUBSTEPS_PER_IK))
        turn = rotvec_from_quat(quat_multiply(self._target_orn, quat_conjugate(start_orn)))
        done = 0
        for leg in range(1, legs + 1):
            f = leg / legs
            pos = start_pos + f * (self._target_pos - start_pos)
            orn = quat_multiply(quat_from_rotvec(f * turn), start_orn)
            self.scene.command(self.scene.solve_ik(pos, orn), finger)
            n = round(f * substeps) - done
            self.scene.advance(n)
            done += n

    # -- reading -------------------------------------------------------------------------------

    def state(self) -> SimState:
        """A snapshot of the simulator: gripper, joints and cubes."""
        pos, orn = self.scene.ee_pose()
        cubes = self.scene.cube_poses()
        return SimState(
            ee_position=pos,
            ee_orientation=orn,
            finger_opening=self.scene.finger_opening(),
            joint_positions=self.scene.joint_positions(),
            joint_velocities=self.scene.joint_velocities(),
            cube_positions={c: p for c, (p, _) in cubes.items()},
            cube_orientations={c: o for c, (_, o) in cubes.items()},
            initial_cube_positions=self._initial_cubes,
        )

    def success(self) -> bool:
        """Whether the current state satisfies this episode's task."""
        return self.task.success(self.state(), self.spec)

    def reached_colour(self) -> str:
        """The colour of the cube nearest the grasp point now (for language-grounding checks)."""
        return closest_colour(self.state())

    def proprio(self) -> np.ndarray:
        """The proprio vector, ``float32[14]``; layout in :data:`PROPRIO_LAYOUT`."""
        pos, orn = self.scene.ee_pose()
        rot = rotvec_from_quat(quat_multiply(orn, quat_conjugate(DOWN_QUATERNION)))
        parts = [pos, rot, [self.scene.finger_opening()], self.scene.joint_positions()]
        return np.concatenate(parts).astype(np.float32)

    def observe(self, *, images: bool = True) -> Observation:
        """The current observation.

        Args:
            images: render the cameras; ``False`` gives an empty ``images`` mapping, for
                state-based policies such as the scripted expert, at a fraction of the cost.

        Returns:
            ``images`` (``"front"``, plus ``"wrist"`` when enabled), the instruction, the proprio
            and the simulated time in seconds since reset.
        """
        frames: dict[str, np.ndarray] = {}
        if images:
            frames["front"] = self.scene.render_front()
            if self.config.wrist_camera:
                frames["wrist"] = self.scene.render_wrist()
        return Observation(
            images=frames,
            instruction=self.spec.instruction,
            proprio=self.proprio(),
            timestamp=self.steps_taken * self.config.control_dt,
        )

    def close(self) -> None:
        """Release the physics client."""
        self.scene.close()

    def __enter__(self) -> "TabletopEnv":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_env(
    task: str = "reach",
    colour: str | None = None,
    seed: int = 0,
    **config: Any,
) -> TabletopEnv:
    """Create a tabletop environment, reset to its first episode.

    Args:
        task: task family name, e.g. ``"reach"``, ``"pick"``, ``"push"``.
        colour: target colour (``"red"``, ``"green"``, ``"blue"``, ``"yellow"``) or ``None``.
        seed: the first episode's seed.
        **config: :class:`SimConfig` fields, e.g. ``image_size=96, wrist_camera=True``.

    Returns:
        The environment; close it (or use it as a context manager) when done.

    Raises:
        RegistryError: unknown task.
        InputError: unknown colour, an unknown config field, or a bad config value.
    """
    known = {f.name for f in fields(SimConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        expected = ", ".join(sorted(known))
        raise InputError("config", f"unknown field(s) {', '.join(unknown)}; expected some of {expected}")
    return TabletopEnv(task, colour, seed, config=SimConfig(**config))
