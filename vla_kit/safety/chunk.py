"""Judge a whole predicted action chunk before any of it executes.

A VLA policy predicts a chunk of joint targets (one per control period) and the controller
executes them in turn. :func:`validate_chunk` answers, before the first one is sent: would the
layer let each step through unchanged, clamp it, or stop the arm? It runs the real layer on a
fork of its state (:meth:`SafetyLayer.fork`), assuming the robot follows what was sent, so the
verdict is exactly what :meth:`SafetyLayer.filter` would do with the same chunk — and the layer
itself is left untouched. A non-finite value anywhere in the chunk rejects the whole chunk
without simulating it: a policy that emits NaN at step 7 is not trusted at step 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from vla_kit.safety.records import Check, Level
from vla_kit.safety.state import RobotState
from vla_kit.safety.watchdog import joint_rows

if TYPE_CHECKING:
    from vla_kit.safety.layer import SafetyLayer

__all__ = ["StepAction", "ChunkVerdict", "StepReport", "ChunkReport", "validate_chunk"]


class StepAction(str, Enum):
    """What the layer would do with one step of the chunk."""

    PASS = "pass"  # sent unchanged
    CLAMP = "clamp"  # changed to meet a limit
    REJECT = "reject"  # replaced by the braking step (``on_violation: reject``)
    STOP = "stop"  # a controlled stop or the e-stop is running
    NOT_RUN = "not_run"  # not simulated: the chunk was rejected up front


class ChunkVerdict(str, Enum):
    """The chunk as a whole: execute it, execute it knowing it will be clamped, or drop it."""

    ACCEPT = "accept"  # every step passes unchanged
    CLAMP = "clamp"  # some steps would be clamped (or rejected step-wise), the arm keeps going
    REJECT = "reject"  # non-finite values, the e-stop or a controlled stop: do not execute it


@dataclass(frozen=True)
class StepReport:
    """One step of the chunk.

    Attributes:
        step: index in the chunk (0 = executed first).
        action: what the layer would do.
        level: the layer's level for that cycle.
        checks: the checks that fired, in order, without repeats.
        command_sent: what would be sent (rad); the target itself for NOT_RUN steps.
        deviation: largest ``|sent - target|`` over the joints (rad).
    """

    step: int
    action: StepAction
    level: Level
    checks: tuple[Check, ...]
    command_sent: np.ndarray
    deviation: float


@dataclass(frozen=True)
class ChunkReport:
    """The verdict on a chunk and the report of each step.

    Attributes:
        verdict: :class:`ChunkVerdict`.
        steps: one :class:`StepReport` per row of the chunk.
        reason: one readable line.
    """

    verdict: ChunkVerdict
    steps: tuple[StepReport, ...]
    reason: str

    @property
    def ok(self) -> bool:
        """True when the chunk may be executed (ACCEPT or CLAMP)."""
        return self.verdict is not ChunkVerdict.REJECT

    @property
    def first_intervention(self) -> int | None:
        """Index of the first step that would not pass unchanged, or ``None``."""
        return next((s.step for s in self.steps if s.action is not StepAction.PASS), None)


def validate_chunk(layer: "SafetyLayer", chunk: np.ndarray, state: RobotState | None, dt: float) -> ChunkReport:
    """Run ``chunk`` through a fork of ``layer`` and judge it.

    Args:
        layer: the live layer; its state is the starting point and is not changed.
        chunk: ``(T, dof)`` joint targets (rad), one per control period ``dt``.
        state: this cycle's measurement, as for :meth:`SafetyLayer.filter` (later steps assume
            the robot reached what was sent before).
        dt: control period (s).

    Returns:
        The :class:`ChunkReport`.

    Raises:
        InputError: ``chunk`` is not a ``(T, dof)`` array of numbers with ``T >= 1``.
    """
    dof = layer.model.dof
    targets = joint_rows(chunk, dof, layer.model.name, "chunk", "joint targets", rows="T")
    finite = np.isfinite(targets)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=1))
        steps = tuple(
            StepReport(k, StepAction.NOT_RUN, Level.EMERGENCY if k in bad else Level.SAFE,
                       (Check.NON_FINITE,) if k in bad else (), targets[k], 0.0)
            for k in range(targets.shape[0])
        )
        where = ", ".join(str(k) for k in bad[:5]) + (" ..." if bad.size > 5 else "")
        return ChunkReport(ChunkVerdict.REJECT, steps, f"non-finite targets at step(s) {where}: the whole chunk is rejected")
    sim = layer.fork()
    reject_mode = layer.envelope.on_violation.value == "reject"
    reports = []
    worst = ChunkVerdict.ACCEPT
    reason = "every step passes unchanged"
    for k, target in enumerate(targets):
        d = sim.filter(target, state, dt)
        checks = tuple(dict.fromkeys(r.check for r in d.violations))
        if d.estop_latched or d.level >= Level.DANGER:
            action = StepAction.STOP
        elif d.intervened and not np.array_equal(d.command_sent, target):
            action = StepAction.REJECT if reject_mode else StepAction.CLAMP
        else:
            action = StepAction.PASS
        deviation = float(np.max(np.abs(d.command_sent - target)))
        reports.append(StepReport(k, action, d.level, checks, d.command_sent, deviation))
        if action is StepAction.STOP and worst is not ChunkVerdict.REJECT:
            worst = ChunkVerdict.REJECT
            reason = f"step {k} would stop the arm ({', '.join(c.value for c in checks) or d.level.name})"
        elif action in (StepAction.CLAMP, StepAction.REJECT) and worst is ChunkVerdict.ACCEPT:
            worst = ChunkVerdict.CLAMP
            reason = f"step {k} would be {'rejected' if reject_mode else 'clamped'} first ({', '.join(c.value for c in checks)})"
        state = RobotState(q=d.command_sent, humans=None if state is None else state.humans)
    return ChunkReport(worst, tuple(reports), reason)
