"""Where to clamp a command that breaks a limit which is not an interval per joint.

The direct limits (position, step, velocity, acceleration, jerk) are intervals and a command is
simply clipped into them. Stop feasibility and the Cartesian limits are not: the layer searches
the segment from the **braking step** (always admissible: it continues a stop that was feasible
last cycle) towards the clipped command and keeps the furthest admissible point. Every point on
that segment is inside the direct intervals, because both ends are and the intervals are convex.
Pure functions: the layer passes its memory in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_kit.safety.braking import braking_extent, ramp_dv
from vla_kit.safety.cartesian import CartesianGuard, CartesianReport
from vla_kit.safety.checks import PlanLimits, backward_differences, stop_feasible
from vla_kit.safety.kernels import furthest_stoppable_joints
from vla_kit.safety.records import Check
from vla_kit.safety.state import Memory

__all__ = ["furthest_stoppable", "cartesian_verdict", "CartesianOutcome", "furthest_cartesian"]

_GRID = np.arange(1, 17, dtype=np.float64) / 16.0  # fractions of the way from the braking step to a target
_WINDOW = np.arange(8, -8, -1, dtype=np.float64) / 256.0  # around last cycle's fraction, highest first
_ONE = np.ones(1)


def furthest_stoppable(q_fb: np.ndarray, q_c: np.ndarray, mem: Memory, plan: PlanLimits, h: float,
                       cheap_ok: np.ndarray | None = None) -> np.ndarray:
    """Per joint, the point nearest ``q_c`` on the segment from ``q_fb`` from which the joint can still stop.

    Only joints that cannot stop from ``q_c`` are searched, on a 32-point grid: the answer is
    within 1/32 of the segment (at most ``2 h^3 J / 32`` rad) of the best one. The search runs
    per joint in compiled code (:func:`vla_kit.safety.kernels.furthest_stoppable_joints`), from
    the grid's far end down to the first point the exact closed form accepts.

    Args:
        q_fb: the braking step (rad). q_c: the command clipped into the direct intervals (rad).
        mem: the layer's memory (previous command and its differences). plan: planning limits.
        h: cycle period (s).
        cheap_ok: per joint, the cheap bound's verdict on ``q_c`` when the caller has it already.
    """
    if cheap_ok is None:
        v, a, _ = backward_differences(q_c, mem.q, mem.v, mem.a, h)
        cheap_ok = stop_feasible(q_c, v, a, plan, h, cheap_only=True)[0]
        if cheap_ok.all():
            return q_c
    out = q_c.copy()  # the grid ends at q_c itself, so the search also settles the joints the cheap bound refused exactly
    furthest_stoppable_joints(out, q_fb, q_c, np.flatnonzero(~cheap_ok), mem.q, mem.v, mem.a, h, plan.q_lo, plan.q_hi, plan.v,
                              plan.a, plan.j, plan.pos_tol)
    return out


def cartesian_verdict(
    guard: CartesianGuard, cand: np.ndarray, v: np.ndarray, a: np.ndarray, travel: np.ndarray, mem: Memory, plan: PlanLimits,
    h: float, *, reduced: bool
) -> tuple[np.ndarray, CartesianReport]:
    """Cartesian pass/fail of candidates ``(K, n)``; braking paths the cheap bound cannot clear are
    checked at their exact stop configuration.

    Args:
        guard: the Cartesian checks. cand, v, a: candidates and their differences.
        travel: ``(K, n)`` bound on each joint's braking travel. mem, plan, h: as for the layer.
        reduced: reduced mode active.
    """
    v_ahead = v + ramp_dv(a, h, h * plan.j)
    rep = guard.evaluate(cand, mem.tcp, h, reduced=reduced, allowance=mem.allowance, reach=travel, v_ahead=v_ahead)
    good = rep.ok.copy()
    unsure = np.flatnonzero(good & rep.unsure)
    if unsure.size:
        ext = braking_extent(cand[unsure], v[unsure], a[unsure], h, plan.a, plan.j)
        stop_ok, _ = guard.stop_excess(ext.q_stop, mem.allowance)
        good[unsure] = stop_ok & ext.exact.all(axis=-1)
    return good, rep


@dataclass(frozen=True)
class CartesianOutcome:
    """Result of :func:`furthest_cartesian`.

    Attributes:
        q: what to send (rad).
        fraction: how far it is from the braking step towards the target, 0..1.
        failing: the checks the target broke (``STOP_DISTANCE`` when only braking feasibility did).
        excess_target, excess_sent: per Cartesian check, the excess at the target and at ``q``.
    """

    q: np.ndarray
    fraction: float
    failing: list[Check]
    excess_target: dict[Check, float]
    excess_sent: dict[Check, float]


def _candidates(guard: CartesianGuard, s: np.ndarray, q_fb: np.ndarray, q_j: np.ndarray, mem: Memory, plan: PlanLimits, h: float,
                reduced: bool) -> tuple[np.ndarray, np.ndarray, CartesianReport]:
    """Points at fractions ``s`` of the way from ``q_fb`` to ``q_j``, and which of them pass every check."""
    cand = q_fb + s[:, None] * (q_j - q_fb)
    v, a, _ = backward_differences(cand, mem.q, mem.v, mem.a, h)
    stop_ok, travel, _ = stop_feasible(cand, v, a, plan, h)
    good, rep = cartesian_verdict(guard, cand, v, a, travel, mem, plan, h, reduced=reduced)
    good &= stop_ok.all(axis=1)
    return cand, good, rep


def _outcome(q: np.ndarray, fraction: float, first: CartesianReport, excess: dict[Check, float]) -> CartesianOutcome:
    target = {c: float(x[0]) for c, x in first.excess.items()}
    failing = [c for c, x in target.items() if x > 0.0] or [Check.STOP_DISTANCE]
    return CartesianOutcome(q, fraction, failing, target, excess)


def furthest_cartesian(
    guard: CartesianGuard, q_fb: np.ndarray, q_j: np.ndarray, mem: Memory, plan: PlanLimits, h: float, *, reduced: bool,
    hint: float | None = None,
) -> CartesianOutcome:
    """The furthest point from the braking step ``q_fb`` towards ``q_j`` that passes the Cartesian
    checks with every joint still able to stop; ``q_fb`` itself when none does.

    The search is a 16-point grid, refined once (1/256 of the segment). With ``hint`` — the
    fraction found last cycle, which changes little from one cycle to the next — one round of
    16 points spaced 1/256 around it settles the answer when it brackets the boundary; otherwise
    the full search runs. Either way only candidates that pass every check (or the braking step)
    come back.
    """
    if hint is not None:
        s = np.concatenate([_ONE, np.minimum(np.maximum(hint + _WINDOW, 0.0), 1.0)])
        cand, good, rep = _candidates(guard, s, q_fb, q_j, mem, plan, h, reduced)
        if good[0]:
            return CartesianOutcome(q_j, 1.0, [], {}, {})
        k = int(np.argmax(good[1:])) + 1
        if good[k] and k > 1 and not good[k - 1]:  # bracketed: the point above fails
            return _outcome(cand[k], float(s[k]), rep, {c: float(x[k]) for c, x in rep.excess.items()})
        if not good[1:].any() and s[-1] == 0.0:  # down to the braking step itself: nothing further passes
            return _outcome(q_fb, 0.0, rep, {c: float(x[-1]) for c, x in rep.excess.items()})
    lo, hi = 0.0, 1.0
    fractions = 1.0 - (_GRID - _GRID[0])  # 1, 15/16, ..., 1/16
    first: CartesianReport | None = None
    q_best, excess_best = q_fb, None
    for _ in range(2):
        s = lo + (hi - lo) * fractions
        cand, good, rep = _candidates(guard, s, q_fb, q_j, mem, plan, h, reduced)
        if first is None:
            first = rep  # row 0 is q_j: what the joint clamp alone would send
            if good[0]:
                return CartesianOutcome(q_j, 1.0, [], {}, {})
        if good.any():
            k = int(np.argmax(good))
            lo, hi = float(s[k]), (float(s[k - 1]) if k > 0 else hi)
            q_best, excess_best = cand[k], {c: float(x[k]) for c, x in rep.excess.items()}
        else:
            hi = float(s[-1])
    if excess_best is None:  # only the braking step is left: report what it still exceeds
        rep = guard.evaluate(q_fb[None, :], mem.tcp, h, reduced=reduced, allowance=mem.allowance, reach=np.zeros((1, q_fb.shape[0])))
        excess_best = {c: float(x[0]) for c, x in rep.excess.items()}
    return _outcome(q_best, lo, first, excess_best)
