"""An independent monitor of a stream of sent joint positions against an envelope's joint limits.

It knows nothing of the layer: it differentiates what was sent (backward differences at each
cycle's ``dt``, starting from rest at a given position) and counts every sample beyond a limit,
with no tolerance. Tests use it on the layer's output; the safety-validate stage can use it on
anything that commands a robot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from vla_kit.safety.envelope import Envelope
from vla_kit.safety.records import Check

__all__ = ["StreamMonitor", "MonitorReport"]


@dataclass
class MonitorReport:
    """What a :class:`StreamMonitor` saw.

    Attributes:
        samples: positions observed.
        violations: per check, how many samples (counting each joint) broke it.
        worst: per check, the worst value seen: value/limit for rates and steps, radians beyond
            the limit for position.
        first: per check, the first sample index (0-based) that broke it.
    """

    samples: int = 0
    violations: Counter = field(default_factory=Counter)
    worst: dict[Check, float] = field(default_factory=dict)
    first: dict[Check, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All violations together (0 for a safe stream)."""
        return sum(self.violations.values())


class StreamMonitor:
    """Counts limit violations in a stream of joint positions.

    Args:
        envelope: the limits to hold the stream to.
        q_start: the measured position the stream starts from, at rest (rad).
    """

    def __init__(self, envelope: Envelope, q_start: np.ndarray) -> None:
        self.limits = envelope.limits
        self.period = envelope.period
        self.q = np.array(q_start, dtype=np.float64)
        self.v = np.zeros_like(self.q)
        self.a = np.zeros_like(self.q)
        self.report = MonitorReport()

    def observe(self, q_sent: np.ndarray, dt: float) -> list[Check]:
        """Record one sent position; returns the checks it broke (empty for a clean sample)."""
        lim = self.limits
        q = np.asarray(q_sent, dtype=np.float64)
        v = (q - self.q) / dt
        a = (v - self.v) / dt
        j = (a - self.a) / dt
        step = lim.max_step * (dt / self.period)
        measures = {
            Check.POSITION: (np.maximum(lim.q_min - q, q - lim.q_max), 0.0),
            Check.MAX_STEP: (np.abs(q - self.q), step),
            Check.VELOCITY: (np.abs(v), lim.v_max),
            Check.ACCELERATION: (np.abs(a), lim.a_max),
            Check.JERK: (np.abs(j), lim.j_max),
        }
        broken = []
        for check, (value, limit) in measures.items():
            bad = int(np.count_nonzero(~(value <= limit)))  # NaN counts as broken
            if bad:
                broken.append(check)
                self.report.violations[check] += bad
                self.report.first.setdefault(check, self.report.samples)
                ratio = float(np.nanmax(value - limit if check is Check.POSITION else value / limit))
                self.report.worst[check] = max(self.report.worst.get(check, -np.inf), ratio)
        self.q, self.v, self.a = q, v, a
        self.report.samples += 1
        return broken
