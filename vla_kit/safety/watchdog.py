"""What the layer checks before it looks at limits: malformed or non-finite inputs, absurd steps,
stale data (missed state reads, long cycles, old commands, tracking error) and gripper limits.

Pure functions of their arguments; the layer owns the state they read (the missed-read
counter, the e-stop latch) and passes a ``make`` callback that builds its violation records.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from vla_kit.errors import InputError
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.kernels import SCREEN_JUMP, SCREEN_NON_FINITE, screen_command, worst_deviation
from vla_kit.safety.records import Check, Level, Violation
from vla_kit.safety.state import JointCommand, Memory, RobotState

__all__ = ["as_joints", "non_finite_or_absurd", "watchdog_stops", "clamp_gripper"]

_count = np.count_nonzero
MakeViolation = Callable[[Check, Level, "int | None", float, float, str], Violation]


def as_joints(q: object, dof: int) -> np.ndarray | None:
    """``q`` as a float64 array of ``dof`` joint values, or ``None`` when it cannot be one."""
    try:
        arr = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (dof,) else None


def joint_rows(values: object, dof: int, robot: str, key: str, what: str, rows: str = "N") -> np.ndarray:
    """``values`` as a float64 ``(rows, dof)`` array with at least one row (a trajectory, a chunk).

    Raises:
        InputError: not numbers, or another shape; names ``key``, the shape got and the one expected.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(key, f"expected an ({rows}, {dof}) array of {what}, got values that are not numbers") from None
    if arr.ndim != 2 or arr.shape[1] != dof or arr.shape[0] < 1:
        raise InputError(key, f"expected shape ({rows}, {dof}) with {rows} >= 1 for robot {robot!r}, got {arr.shape}")
    return arr


def describe_bad_joints(q: object, dof: int, robot: str) -> str:
    """Why :func:`as_joints` refused ``q``, for the InputError message."""
    try:
        got = f"shape {np.asarray(q, dtype=np.float64).shape}"
    except (TypeError, ValueError):
        got = "values that are not numbers"
    return f"expected {dof} joint values for {robot!r}, got {got}"


def non_finite_or_absurd(cmd: JointCommand | None, q_cmd: np.ndarray, mem: Memory, envelope: Envelope,
                         absurd: np.ndarray, check_absurd: bool, previous: np.ndarray | None = None) -> tuple[Check, str] | None:
    """The e-stop reason of a non-finite command (joints or gripper) or an absurdly large step.

    A step is absurd when the command is far from **both** the last position sent and the
    previous command: a jump in the command stream, not a smooth stream the layer has been
    holding back (clamping a stream that runs ahead is the layer's job, not a fault).

    Args:
        cmd: the full command, or ``None`` for a bare joint array.
        q_cmd: its joint targets. mem: the layer's memory.
        previous: the previous cycle's (finite) command, ``None`` when there is none.
        absurd: a little under ``absurd_step_factor * max_step`` per joint (rad): a cheap
            pre-test; the ratio itself decides, as a ratio.
        check_absurd: look for absurd steps at all (not when disabled or already latched).
    """
    grip = (None, None) if cmd is None else (cmd.gripper, cmd.gripper_effort)
    screen = screen_command(q_cmd, mem.q, q_cmd if previous is None else previous, previous is not None, absurd, check_absurd)
    if screen == SCREEN_NON_FINITE or (cmd is not None and not all(g is None or math.isfinite(g) for g in grip)):
        return Check.NON_FINITE, f"non-finite command {q_cmd.tolist()}, gripper {grip}"
    if screen == SCREEN_JUMP:  # far from the last position and the last command: measure it as a ratio
        step = np.abs(q_cmd - mem.q)
        if previous is not None:
            step = np.minimum(step, np.abs(q_cmd - previous))
        if _count(step > absurd):
            max_step = envelope.limits.max_step
            with np.errstate(over="ignore"):  # a finite 1e308 command is absurd, not an error
                ratio = step / max_step
            i = int(np.argmax(ratio))
            if ratio[i] > envelope.joints.absurd_step_factor:
                return Check.ABSURD_STEP, (f"joint {i} asked for {ratio[i]:.3g}x its max step "
                                           f"(absurd above {envelope.joints.absurd_step_factor:g}x)")
    return None


def watchdog_stops(cmd: JointCommand | None, state: RobotState | None, measured: np.ndarray | None, mem: Memory, h: float,
                   missed_reads: int, envelope: Envelope, recs: list[Violation], make: MakeViolation) -> list[Check]:
    """Faults that brake without latching; returns the checks that demand a stop this cycle."""
    wd = envelope.watchdog
    stops: list[Check] = []
    if missed_reads >= wd.max_missed_state_reads:
        stops.append(Check.STATE_LOST)
        recs.append(make(Check.STATE_LOST, Level.DANGER, None, missed_reads, wd.max_missed_state_reads,
                         f"{missed_reads} consecutive state reads missed: controlled stop"))
    if h > wd.command_timeout:
        stops.append(Check.CYCLE_OVERRUN)
        recs.append(make(Check.CYCLE_OVERRUN, Level.DANGER, None, h, wd.command_timeout,
                         f"a {h:.6g} s cycle is longer than the command timeout: controlled stop"))
    now = None if state is None else state.stamp
    if cmd is not None and cmd.stamp is not None and now is not None:
        age = float(now) - float(cmd.stamp)
        if not math.isfinite(age) or abs(age) > wd.command_timeout:
            stops.append(Check.COMMAND_TIMEOUT)
            recs.append(make(Check.COMMAND_TIMEOUT, Level.DANGER, None, age, wd.command_timeout,
                             f"command is {age:.6g} s old (limit {wd.command_timeout:g} s): controlled stop"))
    if measured is not None and wd.max_tracking_error is not None:
        i = worst_deviation(measured, mem.q, wd.max_tracking_error)
        if i >= 0:
            recs.append(make(Check.TRACKING_ERROR, Level.WARNING, i, measured[i], mem.q[i],
                             f"measured {abs(measured[i] - mem.q[i]):.6g} rad away from the last command"))
    return stops


def clamp_gripper(cmd: JointCommand | None, envelope: Envelope, recs: list[Violation],
                  make: MakeViolation) -> tuple[float | None, float | None]:
    """Gripper target clamped to [0, 1] and grasp force to [0, max_effort], each change logged."""
    if cmd is None:
        return None, None
    g, e = cmd.gripper, cmd.gripper_effort
    if g is not None:
        g_safe = min(max(float(g), 0.0), 1.0)
        if g_safe != g:
            recs.append(make(Check.GRIPPER, Level.WARNING, None, float(g), g_safe, "gripper target outside [0, 1]"))
        g = g_safe
    cap = envelope.gripper.max_effort
    if e is not None:
        e_safe = min(max(float(e), 0.0), math.inf if cap is None else cap)
        if e_safe != e:
            recs.append(make(Check.GRIPPER_EFFORT, Level.WARNING, None, float(e), e_safe, f"grasp force outside [0, {cap}] N"))
        e = e_safe
    return g, e
