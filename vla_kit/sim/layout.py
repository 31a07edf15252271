"""Where things are on the table: cube size, colours, the workspace, and the random cube layout.

The robot base sits at the origin on the table top (``z = 0``); ``x`` points away from the robot,
``y`` to its left. Cubes are placed axis-aligned inside a box that the Panda reaches comfortably
with the gripper pointing down.

Layouts must leave every cube pushable and graspable whichever one the task names, so the layout
depends on the seed alone (the language-grounding test puts each colour's instruction on the same
scene). Two cubes either sit in different ``x`` lanes (``|dx| >= LANE_GAP``) or far apart along
``y`` (``|dy| >= CORRIDOR_GAP``): an open gripper descending on one cube, or a cube pushed sideways
by ``PUSH_TRAVEL``, then never meets another.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from vla_kit.errors import InputError

__all__ = [
    "COLOURS",
    "COLOUR_RGBA",
    "CUBE_HALF_EXTENT",
    "CUBE_MASS",
    "CUBE_REGION_LOW",
    "CUBE_REGION_HIGH",
    "LANE_GAP",
    "CORRIDOR_GAP",
    "PUSH_TRAVEL",
    "check_colour",
    "sample_layout",
]

# Every episode shows all of them: the named target plus the others as distractors.
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")

COLOUR_RGBA: Mapping[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.10, 0.10, 1.0),
    "green": (0.10, 0.65, 0.15, 1.0),
    "blue": (0.10, 0.25, 0.85, 1.0),
    "yellow": (0.95, 0.80, 0.10, 1.0),
}

CUBE_HALF_EXTENT = 0.02  # m; a 4 cm cube fits the Panda's 8 cm finger opening with margin
CUBE_MASS = 0.1  # kg

# Cube centres are sampled in this (x, y) box, metres, base frame.
CUBE_REGION_LOW = np.array([0.33, -0.22])
CUBE_REGION_HIGH = np.array([0.65, 0.22])

# Cubes in the same x lane must be this far apart in x (m): the open fingers reach 1.5 cm either
# side of the gripper centre in x, so a neighbour's face stays >= 3.5 cm clear.
LANE_GAP = 0.07
# ...or this far apart in y (m): push travel (10 cm) + pusher standoff (up to 9 cm from the target
# centre when descending) would otherwise sweep into a neighbour in the same lane.
CORRIDOR_GAP = 0.20
# How far (m) the push expert carries a cube; the push task succeeds earlier (see tasks.py).
PUSH_TRAVEL = 0.10

# Sequential rejection sampling: per-cube attempts before the whole layout restarts. The
# constraints leave plenty of room for four cubes, so restarts are rare; the cap turns a
# misconfiguration into an error instead of a hang.
_TRIES_PER_CUBE = 200
_MAX_RESTARTS = 50


def check_colour(colour: str) -> str:
    """Return ``colour`` if it is one of :data:`COLOURS`.

    Raises:
        InputError: for any other value.
    """
    if colour not in COLOURS:
        raise InputError("colour", f"unknown colour {colour!r}; expected one of {', '.join(COLOURS)}")
    return colour


def _compatible(a: np.ndarray, b: np.ndarray) -> bool:
    d = np.abs(a - b)
    return bool(d[0] >= LANE_GAP or d[1] >= CORRIDOR_GAP)


def sample_layout(rng: np.random.Generator, colours: tuple[str, ...] = COLOURS) -> dict[str, np.ndarray]:
    """Draw non-overlapping cube centres ``(x, y)`` for ``colours``.

    Colours are placed in a random order so no colour is biased towards the first, easiest slot.

    Args:
        rng: the generator to draw from; the same generator state gives the same layout.
        colours: the cubes to place.

    Returns:
        colour -> ``float64 (2,)`` centre in metres (base frame), in the order of ``colours``.

    Raises:
        InputError: if no layout satisfying the spacing rules was found (too many cubes).
    """
    for _ in range(_MAX_RESTARTS):
        order = [colours[i] for i in rng.permutation(len(colours))]
        placed: dict[str, np.ndarray] = {}
        for colour in order:
            for _ in range(_TRIES_PER_CUBE):
                xy = rng.uniform(CUBE_REGION_LOW, CUBE_REGION_HIGH)
                if all(_compatible(xy, other) for other in placed.values()):
                    placed[colour] = xy
                    break
            else:
                break
        if len(placed) == len(colours):
            return {c: placed[c] for c in colours}
    raise InputError("colours", f"could not place {len(colours)} cubes in the workspace with the spacing rules")
