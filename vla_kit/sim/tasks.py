"""Task families for the tabletop, in a registry keyed by short names.

A :class:`Task` turns a target colour and a random generator into a :class:`TaskSpec` (which cube,
which variant, which wording of the instruction) and judges success from a :class:`SimState`.
Built in: ``reach`` ("touch the red cube"), ``pick`` ("pick up the red cube") and ``push`` ("push
the red cube to the left"). Left and right are the robot's: ``+y`` is its left.

Register another family with :func:`register_task`; a name can be registered once, and looking up
an unknown name raises :class:`~vla_kit.errors.RegistryError` listing what exists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vla_kit.errors import InputError, RegistryError
from vla_kit.sim.layout import check_colour
from vla_kit.sim.state import SimState, cube_in_grasp, cube_lift, distance_to_cube

__all__ = [
    "TaskSpec",
    "Task",
    "ReachTask",
    "PickTask",
    "PushTask",
    "register_task",
    "get_task",
    "task_names",
    "REACH_TOLERANCE",
    "LIFT_HEIGHT",
    "PUSH_DISTANCE",
    "PUSH_DIRECTIONS",
]

REACH_TOLERANCE = 0.03  # m from the grasp point to the target cube's surface
LIFT_HEIGHT = 0.05  # m the target cube's centre must rise above its start
PUSH_DISTANCE = 0.06  # m the target cube must travel in the named direction
# A pushed cube must stay on the table: its centre may not rise more than this (m).
_PUSH_MAX_RISE = 0.01
# Push direction -> unit vector in the base frame (+y is the robot's left).
PUSH_DIRECTIONS: dict[str, np.ndarray] = {"left": np.array([0.0, 1.0, 0.0]), "right": np.array([0.0, -1.0, 0.0])}

_FAMILY = "sim task"


@dataclass(frozen=True)
class TaskSpec:
    """One concrete episode goal.

    Attributes:
        task: the task family's registry name, e.g. ``"pick"``.
        colour: the target cube's colour.
        variant: a family-specific choice, e.g. ``"left"`` for push; ``""`` when the family has none.
        instruction: the natural-language instruction shown to the policy.
    """

    task: str
    colour: str
    variant: str
    instruction: str


class Task(ABC):
    """A task family: instruction templates, a default episode length and a success predicate.

    Subclasses set the class attributes and implement :meth:`_success`.

    Attributes:
        name: short registry name.
        max_steps: default episode length in control steps.
        templates: instruction paraphrases; ``{colour}`` and (if the family has variants)
            ``{variant}`` are filled in.
        variants: the family's variant choices, e.g. push directions; empty when none.
    """

    name: ClassVar[str]
    max_steps: ClassVar[int]
    templates: ClassVar[tuple[str, ...]]
    variants: ClassVar[tuple[str, ...]] = ()

    def make_spec(self, colour: str, rng: np.random.Generator) -> TaskSpec:
        """Choose the instruction wording and the variant for a target colour.

        Always draws the same numbers from ``rng`` in the same order, so the wording does not
        depend on the colour: the same seed gives each colour the same sentence shape.

        Args:
            colour: the target cube's colour.
            rng: the generator for the episode's goal.

        Returns:
            The episode's :class:`TaskSpec`.

        Raises:
            InputError: if ``colour`` is not a known colour.
        """
        check_colour(colour)
        template = self.templates[int(rng.integers(len(self.templates)))]
        variant = self.variants[int(rng.integers(len(self.variants)))] if self.variants else ""
        return TaskSpec(self.name, colour, variant, template.format(colour=colour, variant=variant))

    def success(self, state: SimState, spec: TaskSpec) -> bool:
        """Whether ``state`` satisfies the goal in ``spec``.

        Raises:
            InputError: if ``spec`` belongs to another task family or names an absent cube.
        """
        if spec.task != self.name:
            raise InputError("spec.task", f"the {self.name!r} task cannot judge a {spec.task!r} spec")
        if spec.colour not in state.cube_positions:
            raise InputError("spec.colour", f"no {spec.colour!r} cube in this scene")
        return bool(self._success(state, spec))

    @abstractmethod
    def _success(self, state: SimState, spec: TaskSpec) -> bool:
        """The family's predicate; arguments are already validated."""


class ReachTask(Task):
    """Bring the grasp point within :data:`REACH_TOLERANCE` of the target cube's surface."""

    name = "reach"
    max_steps = 40
    templates = (
        "touch the {colour} cube",
        "reach the {colour} block",
        "go to the {colour} cube",
        "move your gripper to the {colour} block",
    )

    def _success(self, state: SimState, spec: TaskSpec) -> bool:
        return distance_to_cube(state, spec.colour) <= REACH_TOLERANCE


class PickTask(Task):
    """Hold the target cube between the fingers with its centre :data:`LIFT_HEIGHT` above its start."""

    name = "pick"
    max_steps = 60
    templates = (
        "pick up the {colour} cube",
        "lift the {colour} block",
        "grasp the {colour} cube and lift it",
        "pick the {colour} block up",
    )

    def _success(self, state: SimState, spec: TaskSpec) -> bool:
        return cube_lift(state, spec.colour) >= LIFT_HEIGHT and cube_in_grasp(state, spec.colour)


class PushTask(Task):
    """Slide the target cube :data:`PUSH_DISTANCE` towards the robot's left or right, on the table."""

    name = "push"
    max_steps = 60
    templates = (
        "push the {colour} cube to the {variant}",
        "slide the {colour} block to the {variant}",
        "nudge the {colour} cube {variant}",
        "shove the {colour} block towards the {variant}",
    )
    variants = tuple(PUSH_DIRECTIONS)

    def _success(self, state: SimState, spec: TaskSpec) -> bool:
        start = state.initial_cube_positions[spec.colour]
        moved = float(np.dot(state.cube_positions[spec.colour] - start, PUSH_DIRECTIONS[spec.variant]))
        on_table = cube_lift(state, spec.colour) <= _PUSH_MAX_RISE
        return moved >= PUSH_DISTANCE and on_table


_REGISTRY: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add a task family to the registry under ``task.name``.

    Args:
        task: the family instance.

    Returns:
        ``task``, so the call can wrap a definition.

    Raises:
        RegistryError: if the name is already registered.
    """
    if task.name in _REGISTRY:
        raise RegistryError(_FAMILY, task.name, list(_REGISTRY), duplicate=True)
    _REGISTRY[task.name] = task
    return task


def get_task(name: str) -> Task:
    """Look up a task family by name.

    Raises:
        RegistryError: for an unknown name; the message lists the registered ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RegistryError(_FAMILY, name, list(_REGISTRY)) from None


def task_names() -> tuple[str, ...]:
    """The registered task family names, in registration order."""
    return tuple(_REGISTRY)


register_task(ReachTask())
register_task(PickTask())
register_task(PushTask())
