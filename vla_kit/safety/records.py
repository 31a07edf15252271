"""What the safety layer reports: levels, the checks that can fire, violation records, decisions."""

from __future__ import annotations

from enum import Enum, IntEnum
from functools import partial
from operator import itemgetter
from typing import NamedTuple

import numpy as np

__all__ = ["Level", "Check", "Violation", "Decision"]


class Level(IntEnum):
    """How serious this cycle was; ordered, so ``max()`` of levels is the worst.

    SAFE: the command went out unchanged. CAUTION: unchanged, but close to a limit, reduced mode,
    safety disabled, a late cycle or a person approaching. WARNING: the command was changed
    (clamped or rejected), or a person near the arm forces reduced mode.
    DANGER: a controlled stop (watchdog, stale data, a protective stop for a person, a limit
    that could not be met by clamping).
    EMERGENCY: the e-stop is latched until :meth:`SafetyLayer.reset_estop`.
    """

    SAFE = 0
    CAUTION = 1
    WARNING = 2
    DANGER = 3
    EMERGENCY = 4


class Check(str, Enum):
    """Every reason the layer can intervene; the value is what logs and metrics print."""

    POSITION = "position"
    MAX_STEP = "max_step"
    VELOCITY = "velocity"
    ACCELERATION = "acceleration"
    JERK = "jerk"
    STOP_DISTANCE = "stop_distance"  # the joint could no longer brake inside its limits
    TCP_BOX = "tcp_box"
    ELBOW_BOX = "elbow_box"
    PLANE = "plane"
    TCP_SPEED = "tcp_speed"
    TOOL_CONE = "tool_cone"
    OBSTACLE = "obstacle"  # a link capsule closer to an obstacle than obstacles.min_distance
    SEPARATION = "separation"  # a person inside the protective separation distance (reduced mode or stop)
    GRIPPER = "gripper"
    GRIPPER_EFFORT = "gripper_effort"
    NON_FINITE = "non_finite"
    ABSURD_STEP = "absurd_step"
    SOFTWARE_ESTOP = "software_estop"
    INVALID_DT = "invalid_dt"
    CYCLE_OVERRUN = "cycle_overrun"
    COMMAND_TIMEOUT = "command_timeout"
    STATE_LOST = "state_lost"
    TRACKING_ERROR = "tracking_error"
    INFEASIBLE = "infeasible"  # no output met every limit; position was kept, the rest is reported


class Violation(tuple):
    """One intervention (or one fault) in one cycle; a read-only record.

    Attributes:
        cycle: the layer's cycle counter (1 = first call to ``filter``).
        check: which limit or fault.
        level: the level this record raised the cycle to.
        joint: joint index, or ``None`` for whole-arm checks (Cartesian, watchdog, e-stop).
        joint_name: the joint's name, or ``None``.
        original: the commanded value (rad for joints; m/s, m or rad for Cartesian measures).
        safe: the value actually sent, in the same unit.
        reason: one readable line. The layer may hand over a deferred call ``(function, *args)``
            that writes it instead: a clamped cycle makes a record per joint, and most records
            are counted, not read, so the line is formatted when it is asked for.

    A clamped cycle makes one record per joint, inside the control cycle: the record is an
    immutable tuple underneath (built in a third of the time of a slotted class), read through
    the named attributes above; equality, hashing and pickling go by those values.
    """

    __slots__ = ()
    _FIELDS = ("cycle", "check", "level", "joint", "joint_name", "original", "safe", "reason")

    def __new__(cls, cycle: int, check: Check, level: Level, joint: int | None, joint_name: str | None, original: float,
                safe: float, reason: str | tuple) -> "Violation":
        return tuple.__new__(cls, (cycle, check, level, joint, joint_name, original, safe, reason))

    cycle = property(itemgetter(0))
    check = property(itemgetter(1))
    level = property(itemgetter(2))
    joint = property(itemgetter(3))
    joint_name = property(itemgetter(4))
    original = property(itemgetter(5))
    safe = property(itemgetter(6))

    @property
    def reason(self) -> str:
        """One readable line."""
        r = tuple.__getitem__(self, 7)
        return r if isinstance(r, str) else r[0](*r[1:])

    def _values(self) -> tuple:
        return (*tuple.__getitem__(self, slice(0, 7)), self.reason)

    def __getnewargs__(self) -> tuple:
        return self._values()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Violation):
            return NotImplemented
        return self._values() == other._values()

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Violation(" + ", ".join(f"{f}={v!r}" for f, v in zip(self._FIELDS, self._values())) + ")"


violation_from_fields = partial(tuple.__new__, Violation)
"""``Violation`` from its fields as one tuple, in order, without the constructor's Python call:
the layer makes one record per clamped joint per cycle."""
level_of = itemgetter(2)  # a record's level, read straight off the tuple (max over a cycle's records)


class Decision(NamedTuple):
    """The layer's answer for one cycle (immutable; a tuple underneath: one is made every cycle).

    Attributes:
        command_sent: joint position targets to send (rad), float64, read-only. An in-limit
            float64 command (every limit, a feasible stop, every Cartesian check) comes back
            with the same bits.
        level: the worst :class:`Level` of this cycle.
        violations: the records of this cycle (also appended to the layer's log).
        intervened: True when ``command_sent`` differs from the command (or a stop is running).
        gripper_sent: gripper target in [0 = open, 1 = closed], or ``None`` if none was commanded.
        gripper_effort_sent: grasp force (N), or ``None``.
        estop_latched: the e-stop latch after this cycle.
        reduced: whether reduced mode was active (set by the user or forced by a person nearby).
        human_distance: distance (m) from the nearest person to the arm's capsules this cycle;
            ``None`` when separation monitoring is off or the state carried no person data.
    """

    command_sent: np.ndarray
    level: Level
    violations: tuple[Violation, ...]
    intervened: bool
    gripper_sent: float | None = None
    gripper_effort_sent: float | None = None
    estop_latched: bool = False
    reduced: bool = False
    human_distance: float | None = None
