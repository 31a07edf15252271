"""A stream of joint-position commands mixing what a healthy policy sends with what a broken one might.

Segments of 20-400 commands, each one kind: ``smooth`` in-limit wander (twice as likely), pushes
``towards`` a target past the position limits, sign ``flip`` oscillation at up to 9x the max step,
Gaussian ``noise``, and ``garbage`` (one NaN, inf, huge or absurd-jump command, then holding still).
The stress test, the safety benchmark and fault-injection scenarios draw from this one source.
"""

from __future__ import annotations

import numpy as np

from vla_kit.safety.envelope import JointLimits

__all__ = ["AdversarialCommands", "KINDS"]

KINDS = ("smooth", "smooth", "towards", "flip", "noise", "garbage")


class AdversarialCommands:
    """Seeded source of adversarial commands; call :meth:`next` with the last sent position.

    Args:
        limits: the envelope's joint limits (sizes of steps and targets are relative to them).
        dt: control period, s.
        rng: the random generator (the stream is a pure function of its seed and the positions fed back).
    """

    def __init__(self, limits: JointLimits, dt: float, rng: np.random.Generator) -> None:
        self.limits, self.dt, self.rng = limits, dt, rng
        self.dof = int(limits.q_min.shape[0])
        self.kind = "smooth"
        self._left = 0  # commands left in the current segment
        self._k = 0
        self._phase = 0.0

    def next(self, q: np.ndarray) -> tuple[np.ndarray, bool]:
        """The next command given the last sent position ``q``.

        Returns:
            ``(command, new_segment)``; on a new segment, callers may also toggle reduced mode when
            :attr:`toggle_reduced` is set.
        """
        lim, rng = self.limits, self.rng
        new_segment = self._left == 0
        if new_segment:
            self.kind = str(rng.choice(KINDS))
            self._left = int(rng.integers(20, 400))
            self._target = rng.uniform(lim.q_min - 0.3, lim.q_max + 0.3)
            self._scale = float(rng.uniform(0.2, 9.0))
            self._amp = rng.uniform(0.0, 0.6, self.dof) * np.minimum(lim.v_max, lim.max_step / self.dt)
            self._freq = rng.uniform(0.05, 1.0)
            self.toggle_reduced = bool(rng.random() < 0.1)
            self._k = 0
        k = self._k
        self._k += 1
        self._left -= 1
        if self.kind == "smooth":  # bounded-acceleration wander: what a healthy policy sends
            self._phase += 2 * np.pi * self._freq * self.dt
            cmd = q + self.dt * self._amp * np.sin(self._phase) * (1.0 - np.exp(-k / 50.0))
        elif self.kind == "towards":
            cmd = q + np.clip(self._target - q, -self._scale * lim.max_step, self._scale * lim.max_step)
        elif self.kind == "flip":
            cmd = q + (-1) ** k * self._scale * lim.max_step * rng.choice([-1.0, 1.0], self.dof)
        elif self.kind == "noise":
            cmd = q + rng.normal(0.0, self._scale, self.dof) * lim.max_step
        elif k == 0:  # one garbage command (NaN, inf, huge, absurd jump), then the policy holds still
            cmd = q.copy()
            cmd[rng.integers(self.dof)] = rng.choice([np.nan, np.inf, -np.inf, 1e300, q[0] + 50 * lim.max_step[0]])
        else:
            cmd = q
        return cmd, new_segment
