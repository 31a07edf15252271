"""The layer's hot path: the exact in-limit test, the stop test, the Cartesian judge, the clamp and the blame.

:class:`JointEnforcer` turns one command into what may be sent, given the layer's memory and
planning limits. It precomputes every per-envelope and per-``dt`` constant (limit rows, interval
half-widths, tolerance-shifted position limits); the arithmetic of a command runs in one compiled
call (:func:`~vla_kit.safety.cartesian_kernels.enforce_cycle`: the exact in-limit test, the stop
test, the Cartesian judge and, when something refuses the command, the clamp, the Cartesian
search, the blame and the measure of what is sent), since a numba call costs about 0.05 us per
array argument and the several calls it replaces, with their Python glue, cost 6-9 us more per
cycle. The checks are those of :mod:`vla_kit.safety.checks` and :mod:`vla_kit.safety.search` —
same formulas, same float64 operations, bit for bit (tested) — which stay the reference.
"""

from __future__ import annotations

import copy
import math
from itertools import repeat
from typing import Callable

import numpy as np

from vla_kit.safety.cartesian import CartesianGuard
from vla_kit.safety.cartesian_kernels import COMMAND_PASSES, COMMAND_PASSES_NEAR, COMMAND_REFUSED, JC_ROWS, SLACK, SLOTS, enforce_cycle
from vla_kit.safety.checks import PlanLimits
from vla_kit.safety.envelope import Envelope, OnViolation
from vla_kit.safety.kernels import (BLAME_HELD, BLAME_STOP, CLAMP_EXACT, CLAMP_REJECTED, braking_step, cheap_stop_joints, interval_rows,
                                   measure_rows)
from vla_kit.safety.records import Check, Level, Violation, violation_from_fields
from vla_kit.safety.state import Memory

__all__ = ["JointEnforcer", "Outcome"]

_DIRECT = (Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)
_NAMES = tuple(c.value for c in _DIRECT)
_UNITS = ("rad", "rad", "rad/s", "rad/s^2", "rad/s^3")

# make(check, level, joint, original, safe, reason) -> Violation
MakeViolation = Callable[[Check, Level, "int | None", float, float, "str | tuple"], Violation]


class Outcome:
    """What :meth:`JointEnforcer.enforce` decided (a plain, mutable record: built once per cycle).

    Attributes:
        q: the position to send (rad). level: SAFE/CAUTION for a pass-through, WARNING otherwise.
        v, a: backward differences of ``q`` (``None``: not computed yet). frames: forward
        kinematics of ``q``, ``(dof + 2, 4, 4)`` (``None``: not computed).
    """

    __slots__ = ("q", "level", "v", "a", "frames")

    def __init__(self, q: np.ndarray, level: Level, v: np.ndarray | None, a: np.ndarray | None, frames: np.ndarray | None) -> None:
        self.q, self.level, self.v, self.a, self.frames = q, level, v, a, frames

    @property
    def tcp(self) -> np.ndarray | None:
        """TCP position (m) of ``q`` when its frames are known."""
        return None if self.frames is None else self.frames[-1, :3, 3]


class JointEnforcer:
    """Clamp (or reject) joint commands against an envelope, with its Cartesian guard.

    Args:
        envelope: the validated envelope.
        cartesian: the guard built for the same envelope and robot.
    """

    def __init__(self, envelope: Envelope, cartesian: CartesianGuard) -> None:
        lim = envelope.limits
        n = lim.q_min.shape[0]
        self.n, self.limits, self.cartesian = n, lim, cartesian
        self.joint_names = lim.names
        self.reject = envelope.on_violation is OnViolation.REJECT
        self.caution_fraction = envelope.caution_fraction
        # Row k of _buf holds the measure that row k of _bound limits: q_lo - q, q - q_hi, |dq|, |v|, |a|, |j|.
        self._buf = np.empty((6, n))
        # The per-plan constants, packed for the compiled cycle (JC_ROWS rows; filled by prepare()): the step, velocity,
        # acceleration and jerk interval half-widths, the plan rows (q_lo, q_hi, v, a, j), the measure bounds
        # (rows of _buf), h J, 2 A, the position limits less pos_tol, and the speed and acceleration a joint is near its
        # limit at. The names below are views into it.
        self._jc = np.zeros((JC_ROWS, n))
        self._views()
        self._bound[3], self._bound[4], self._bound[5] = lim.v_max, lim.a_max, lim.j_max
        self._caution[0], self._caution[1] = envelope.caution_fraction * lim.v_max, envelope.caution_fraction * lim.a_max
        self._blame_idx = np.empty((3, n), dtype=np.int64)  # scratch for blame_rows: joint, binding limit, broken bits
        self._blame_val = np.empty((4, n))  # and commanded, sent, measured, limit
        self._stop_ok = np.empty(n, dtype=bool)  # per joint, the last command: it can stop (enforce_cycle; cheap_stop's scratch)
        self._joint_ok = np.empty(n, dtype=bool)  # per joint, the last measure: every direct limit holds
        self._all = np.ones(n, dtype=bool)
        self._all.setflags(write=False)
        self._excess = np.empty((3, len(SLOTS)))  # scratch: excess rows (the command's and its braking path's; the search's three)
        self._no_frames = np.empty(cartesian.frame_shape)  # enforce_cycle's frames argument with the Cartesian checks off (never written)
        self._key: tuple | None = None
        self._fraction: float | None = None  # where the last Cartesian search ended (a hint: it moves little per cycle)

    def fork(self) -> "JointEnforcer":
        """A copy that shares this one's constants but none of what a cycle writes (scratch rows,
        the search hint), so the two can run in turn without touching each other."""
        other = copy.copy(self)
        for name in ("_buf", "_jc", "_blame_idx", "_blame_val", "_stop_ok", "_joint_ok", "_excess", "_no_frames"):
            setattr(other, name, getattr(self, name).copy())
        other._views()
        return other

    def _views(self) -> None:
        jc = self._jc
        self._widths, self._plan_rows, self._bound = jc[0:4], jc[4:9], jc[9:15]
        self._delta, self._two_a, self._hi_tol, self._lo_tol, self._caution = jc[15], jc[16], jc[17], jc[18], jc[19:21]

    # ------------------------------------------------------------------ per-plan constants

    def prepare(self, plan: PlanLimits, step: np.ndarray, h: float) -> None:
        """Precompute what depends on the cycle's ``dt`` and the planning limits (cached)."""
        key = self._key
        if key is not None and key[0] is plan and key[1] == h:  # the plan itself, not its id: a freed one's id is reused
            return
        self._key = (plan, h)
        self._bound[2] = step
        self._delta[:] = h * plan.j
        self._two_a[:] = 2.0 * plan.a
        self._hi_tol[:], self._lo_tol[:] = plan.q_hi - plan.pos_tol, plan.q_lo + plan.pos_tol
        self._plan_rows[:] = np.stack([plan.q_lo, plan.q_hi, plan.v, plan.a, plan.j])
        # Half-widths of the step, velocity, acceleration and jerk intervals (as in checks.py).
        self._widths[:] = np.array([plan.step, h * plan.v, h * h * plan.a, h**3 * plan.j])

    # ------------------------------------------------------------------ exact tests

    def measure(self, q: np.ndarray, mem: Memory, h: float) -> tuple[bool, np.ndarray, np.ndarray]:
        """Fill the measure rows for ``q``: ``(every direct limit holds exactly, v, a)`` (compiled,
        :func:`~vla_kit.safety.kernels.measure_rows`)."""
        v, a = np.empty(self.n), np.empty(self.n)
        return measure_rows(q, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, self._bound, self._buf, v, a, self._joint_ok), v, a

    def joints_ok(self) -> np.ndarray:
        """Per joint, after :meth:`measure`: every direct limit holds."""
        return self._joint_ok.copy()

    # ------------------------------------------------------------------ stop feasibility

    def cheap_stop(self, q: np.ndarray, v: np.ndarray, a: np.ndarray, plan: PlanLimits,
                   h: float) -> tuple[bool, np.ndarray | None]:
        """The cheap braking bound of :func:`~vla_kit.safety.checks.stop_feasible` for a ``q``
        whose direct limits hold, after :meth:`measure`.

        Returns:
            ``(all feasible by the bound, per-joint verdict or None when all are feasible)``.
        """
        ok = self._stop_ok
        if cheap_stop_joints(q, v, a, h, self._delta, self._two_a, plan.v, self._hi_tol, self._lo_tol, ok):
            return True, None
        return False, ok.copy()

    # ------------------------------------------------------------------ the cycle

    def brake(self, mem: Memory, plan: PlanLimits, h: float) -> np.ndarray:
        """One step of the braking law: the controlled stop, and the always-feasible fallback."""
        out = np.empty(self.n)
        braking_step(mem.q, mem.v, mem.a, h, plan.a, plan.j, out)
        return out

    def enforce(self, q_cmd: np.ndarray, mem: Memory, plan: PlanLimits, h: float, *, reduced: bool,
                recs: list[Violation], make: MakeViolation, cycle: int) -> Outcome:
        """Pass an in-limit command through untouched (same object); clamp or reject anything else.

        ``make`` builds the cycle's records; the per-joint ones are built directly, for ``cycle``."""
        cart, cart_checks, refused, on = self.cartesian, [], None, self.cartesian.enabled
        n = self.n
        q_out, v, a = np.empty(n), np.empty(n), np.empty(n)
        frames = np.empty(cart.frame_shape) if on else self._no_frames
        verdict, code, fraction, m, exact = enforce_cycle(
            q_cmd, mem.q, mem.v, mem.a, mem.q_lo, mem.q_hi, h, self._jc, plan.pos_tol, self.reject,
            math.nan if self._fraction is None else self._fraction, on, self.caution_fraction if mem.tcp is not None else math.nan,
            *(cart.cycle_args(mem, reduced) if on else cart.off_args), self._buf, q_out, v, a, self._joint_ok, self._stop_ok, frames,
            self._excess, self._blame_idx, self._blame_val)
        if verdict >= COMMAND_PASSES:
            near = verdict == COMMAND_PASSES_NEAR
            return Outcome(q_cmd, Level.CAUTION if near or reduced else Level.SAFE, v, a, frames if on else None)
        if verdict == COMMAND_REFUSED and self.reject:  # the records name what refused it (clamping searches and names them itself)
            slack = mem.allowance.get
            refused = [(c, x, p) for c, x, p in zip(cart.checks, *cart.pick(self._excess[:2])) if x > slack(c, 0.0) + SLACK or p > 0.0]
            cart_checks = [c for c, _, _ in refused] or [Check.STOP_DISTANCE]
        if not exact:
            v = a = None  # verify() falls back to braking
        if code == CLAMP_REJECTED:
            frames = None
            for c, x, p in refused or ():  # what the whole-arm check saw at the command; braking is what is sent
                recs.append(make(c, Level.WARNING, None, max(x, p), math.nan, (_rejected_reason, c, x, p)))
        elif on:
            if code != CLAMP_EXACT or fraction != 1.0:  # a clip that passes as it is leaves the hint alone
                self._fraction = fraction
            if fraction != 1.0:
                cart_checks = self._report_cartesian(fraction, mem, recs, make)
        else:
            frames = None
        if m:
            self._blame(m, cart_checks, recs, cycle)
        return Outcome(q_out, Level.WARNING, v, a, frames)

    def intervals(self, mem: Memory, plan: PlanLimits, h: float) -> tuple[np.ndarray, ...]:
        """This cycle's step, velocity, acceleration and jerk intervals ``(4, n)`` (lower and upper
        rows) and their overlap with the position limits: where a clamp may put each joint."""
        lo4, hi4, lo, hi = np.empty((4, self.n)), np.empty((4, self.n)), np.empty(self.n), np.empty(self.n)
        interval_rows(mem.q, mem.v, mem.a, h, self._widths, plan.q_lo, plan.q_hi, lo4, hi4, lo, hi)
        return lo4, hi4, lo, hi

    def _report_cartesian(self, fraction: float, mem: Memory, recs: list[Violation], make: MakeViolation) -> list[Check]:
        """One record per Cartesian check the clamped command broke (at it, or along its braking
        path), with what is left of it at what is sent, from the search's excess rows; the checks
        (``STOP_DISTANCE`` alone when only the joints' stop held it back)."""
        target, sent, path = self._excess.tolist()
        allowance, failing = mem.allowance, []
        for c, k in self.cartesian.slots:
            x, p = target[k], path[k]
            if x > 0.0 or p > 0.0:
                left = sent[k]
                stuck = c is not Check.TCP_SPEED and left > allowance.get(c, 0.0)  # even braking cannot fix it
                recs.append(make(c, Level.DANGER if stuck else Level.WARNING, None, max(x, p), left, (_held_reason, c, fraction, p)))
                failing.append(c)
        if not failing:
            recs.append(make(Check.STOP_DISTANCE, Level.WARNING, None, 0.0, 0.0, (_held_reason, Check.STOP_DISTANCE, fraction, 0.0)))
            failing.append(Check.STOP_DISTANCE)
        return failing

    def verify(self, q_out: np.ndarray, mem: Memory, plan: PlanLimits, h: float, recs: list[Violation],
               make: MakeViolation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact re-check of what is about to be sent; fall back to braking; as a last resort keep position.

        Returns:
            ``(q, v, a)``: what to send and its backward differences.
        """
        ok, v, a = self.measure(q_out, mem, h)
        if ok:
            return q_out, v, a
        q_fb = self.brake(mem, plan, h)
        if q_fb is not q_out:
            ok, v, a = self.measure(q_fb, mem, h)
            if ok:
                recs.append(make(Check.INFEASIBLE, Level.WARNING, None, np.nan, np.nan, "numerical fallback to the braking step"))
                return q_fb, v, a
        q_last = np.clip(q_fb, mem.q_lo, mem.q_hi)
        _, v, a = self.measure(q_last, mem, h)
        bad = np.flatnonzero(~self.joints_ok()).tolist()
        recs.append(make(Check.INFEASIBLE, Level.DANGER, None, np.nan, np.nan,
                         f"no command meets every limit at dt={h:.6g} s (did dt change mid-motion?); position kept "
                         f"inside its limits, joints {bad} exceed a rate limit"))
        return q_last, v, a

    def _blame(self, m: int, cart_checks: list[Check], recs: list[Violation], cycle: int) -> None:
        """One record per changed joint (``m`` of them), naming the limit that bound it and every other one it broke.

        A clamped cycle makes one per joint, inside the control cycle: the kernel
        (:func:`~vla_kit.safety.kernels.blame_rows`, run by ``clamp_cycle``) leaves rows of Python
        numbers, and the records are zipped from them at C speed, each reason a deferred call
        formatted when it is read."""
        joints, ks, bits = self._blame_idx[:, :m].tolist()
        original, safe, measure, limit = self._blame_val[:, :m].tolist()
        held = cart_checks[0] if cart_checks else Check.STOP_DISTANCE
        checks = map((*_DIRECT, Check.STOP_DISTANCE, held).__getitem__, ks)
        mode = "; rejected: braking this cycle" if self.reject else ""
        reasons = zip(repeat(_joint_reason), ks, measure, limit, bits, repeat(mode), repeat(tuple(cart_checks)))
        recs.extend(map(violation_from_fields, zip(repeat(cycle), checks, repeat(Level.WARNING), joints,
                                                   map(self.joint_names.__getitem__, joints), original, safe, reasons)))


def _joint_reason(k: int, measure: float, limit: float, broken: int, mode: str, cart_checks: tuple[Check, ...]) -> str:
    """The line for a joint clamped by direct limit ``k`` (``broken``: bit ``m`` for limit ``m``),
    for its stop (:data:`~vla_kit.safety.kernels.BLAME_STOP`) or held back with the whole arm
    by ``cart_checks`` (:data:`~vla_kit.safety.kernels.BLAME_HELD`); formatted when first read."""
    if k == BLAME_STOP:
        return "could not have braked inside the position limits from there" + mode
    if k == BLAME_HELD:
        by = " by " + ", ".join(c.value for c in cart_checks) if cart_checks else ""
        return "held back with the whole arm" + by + mode
    reason = f"{_NAMES[k]} {measure:.6g} {_UNITS[k]} beyond {limit:.6g}"
    others = [_NAMES[j] for j in range(5) if broken >> j & 1 and j != k]
    if others:
        reason += f" (also {', '.join(others)})"
    return reason + mode


def _rejected_reason(check: Check, excess: float, path: float) -> str:
    """The line for a Cartesian check that rejected the command (reject mode): the command is
    ``excess`` beyond it, or braking from it might have gone ``path`` beyond it."""
    unit = "rad" if check is Check.TOOL_CONE else "m/s" if check is Check.TCP_SPEED else "m"
    why = f"braking from the command might have gone {path:.3g} {unit} beyond it" if path > 0.0 else f"the command is {excess:.3g} {unit} beyond it"
    return f"{check.value}: {why}; rejected: braking this cycle"


def _held_reason(check: Check, fraction: float, path: float = 0.0) -> str:
    """The line for a Cartesian check that held the whole arm back (formatted when first read);
    ``path``: how far beyond it braking from the command might have gone (0: the command itself broke it)."""
    why = ""
    if path > 0.0:
        why = f"braking from the command might have gone {path:.3g} {'rad' if check is Check.TOOL_CONE else 'm'} beyond it; "
    return f"{check.value}: {why}held at {fraction:.4f} of the way from the braking step to the clamped command"
