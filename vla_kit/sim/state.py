"""A snapshot of the simulator state, and the geometric questions tasks ask of it.

Success predicates and the scripted expert read a :class:`SimState`, never the physics client, so
each predicate is a pure function that tests can feed a hand-built state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.geometry import point_box_distance
from vla_kit.sim.layout import CUBE_HALF_EXTENT

__all__ = ["SimState", "distance_to_cube", "closest_colour", "cube_lift", "cube_in_grasp"]

_CUBE_HALF_EXTENTS = np.full(3, CUBE_HALF_EXTENT)
# A cube counts as held when its centre is this close (m) to the grasp point...
_GRASP_RADIUS = 0.03
# ...and the fingers are closed to at most this (m): a cube cannot sit in a wide-open gripper.
_GRASP_MAX_OPENING = 2 * CUBE_HALF_EXTENT + 0.01


@dataclass(frozen=True)
class SimState:
    """What the simulator knows at one instant. All positions in metres, base frame.

    Attributes:
        ee_position: the grasp point midway between the fingertips, ``(3,)``.
        ee_orientation: gripper orientation, quaternion ``(x, y, z, w)``.
        finger_opening: distance between the fingers, m (0 closed .. 0.08 open).
        joint_positions: arm joints, rad, ``(7,)``.
        joint_velocities: arm joints, rad/s, ``(7,)``.
        cube_positions: colour -> cube centre ``(3,)``.
        cube_orientations: colour -> cube orientation quaternion ``(x, y, z, w)``.
        initial_cube_positions: colour -> cube centre at the start of the episode ``(3,)``.
    """

    ee_position: np.ndarray
    ee_orientation: np.ndarray
    finger_opening: float
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    cube_positions: Mapping[str, np.ndarray]
    cube_orientations: Mapping[str, np.ndarray]
    initial_cube_positions: Mapping[str, np.ndarray]

    def _require(self, colour: str) -> None:
        if colour not in self.cube_positions:
            raise InputError("colour", f"no {colour!r} cube in this scene; present: {', '.join(self.cube_positions)}")


def distance_to_cube(state: SimState, colour: str) -> float:
    """Distance (m) from the grasp point to the surface of the ``colour`` cube; 0 when inside it.

    Raises:
        InputError: if the scene has no cube of that colour.
    """
    state._require(colour)
    return point_box_distance(
        state.ee_position, state.cube_positions[colour], state.cube_orientations[colour], _CUBE_HALF_EXTENTS
    )


def closest_colour(state: SimState) -> str:
    """The colour of the cube whose surface is nearest the grasp point (ties: first in scene order)."""
    if not state.cube_positions:
        raise InputError("state.cube_positions", "the scene has no cubes")
    return min(state.cube_positions, key=lambda colour: distance_to_cube(state, colour))


def cube_lift(state: SimState, colour: str) -> float:
    """How far (m) the ``colour`` cube's centre is above where it started the episode."""
    state._require(colour)
    return float(state.cube_positions[colour][2] - state.initial_cube_positions[colour][2])


def cube_in_grasp(state: SimState, colour: str) -> bool:
    """Whether the ``colour`` cube sits between nearly closed fingers.

    Geometric rather than contact-based, so the predicate is a function of the snapshot alone:
    the cube centre is within 3 cm of the grasp point and the fingers are closed to at most the
    cube's width plus 1 cm.
    """
    state._require(colour)
    near = float(np.linalg.norm(state.cube_positions[colour] - state.ee_position)) <= _GRASP_RADIUS
    return near and state.finger_opening <= _GRASP_MAX_OPENING
