"""The data that crosses the safety layer each cycle, and what it keeps in between."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, NamedTuple

import numpy as np

from vla_kit.safety.records import Check

__all__ = ["JointCommand", "RobotState", "Memory"]


@dataclass(frozen=True)
class JointCommand:
    """A joint-position command.

    Attributes:
        q: target joint positions (rad), one per joint.
        gripper: gripper target in [0 = open, 1 = closed], or ``None``.
        gripper_effort: grasp force (N), or ``None``.
        stamp: when the command was produced (s, same clock as :attr:`RobotState.stamp`), or
            ``None`` to skip the command-age watchdog.
    """

    q: np.ndarray
    gripper: float | None = None
    gripper_effort: float | None = None
    stamp: float | None = None


@dataclass(frozen=True)
class RobotState:
    """What was measured this cycle.

    Attributes:
        q: measured joint positions (rad), or ``None`` when the read failed.
        stamp: measurement time (s): the "now" of the command-age watchdog.
        valid: False marks a missed or corrupt read.
        humans: positions (m, base frame) of the people detected near the arm, ``(H, 3)``
            (``(0, 3)``: nobody), for speed-and-separation monitoring. ``None``: no new person data
            this cycle; the last positions are used until they are ``separation.data_timeout``
            old, then the arm makes a protective stop. Before the first person data arrives the
            separation is not monitored.
    """

    q: np.ndarray | None
    stamp: float | None = None
    valid: bool = True
    humans: np.ndarray | None = None


_count = np.count_nonzero
_NO_ALLOWANCE: Mapping[Check, float] = MappingProxyType({})


class Memory(NamedTuple):
    """What the layer keeps between cycles: a read-only snapshot, replaced every cycle (a tuple
    underneath: one is made every cycle).

    Attributes:
        q, v, a: last sent position (rad) and its backward-difference velocity (rad/s) and
            acceleration (rad/s^2).
        q_lo, q_hi: effective position limits (rad): the envelope's, widened to include a start
            outside them and narrowed again as the arm comes back.
        tcp: TCP position (m) of ``q`` when Cartesian checks are on, else ``None``.
        allowance: per Cartesian pose check, the excess tolerated because the arm started there.
        gripper, gripper_effort: last sent gripper target and force (N).
    """

    q: np.ndarray
    v: np.ndarray
    a: np.ndarray
    q_lo: np.ndarray
    q_hi: np.ndarray
    tcp: np.ndarray | None = None
    allowance: Mapping[Check, float] = _NO_ALLOWANCE
    gripper: float | None = None
    gripper_effort: float | None = None

    @property
    def at_rest(self) -> bool:
        """True when the last sent command has zero velocity and acceleration."""
        return not (_count(self.v) or _count(self.a))  # count_nonzero: a fifth of ndarray.any()'s cost on 7 values
