"""Where to clamp a command that breaks a limit which is not an interval per joint.

The direct limits (position, step, velocity, acceleration, jerk) are intervals and a command is
simply clipped into them. Stop feasibility and the Cartesian limits are not: the layer searches
the segment from the **braking step** (always admissible: it continues a stop that was feasible
last cycle) towards the clipped command and keeps the furthest admissible point. Every point on
that segment is inside the direct intervals, because both ends are and the intervals are convex.
Pure functions: the layer passes its memory in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from vla_kit.safety.cartesian import CartesianGuard
from vla_kit.safety.cartesian_kernels import SLOTS, search_segment
from vla_kit.safety.checks import PlanLimits, backward_differences, stop_feasible
from vla_kit.safety.kernels import furthest_stoppable_joints
from vla_kit.safety.records import Check
from vla_kit.safety.state import Memory

__all__ = ["furthest_stoppable", "CartesianOutcome", "furthest_cartesian"]


def furthest_stoppable(q_fb: np.ndarray, q_c: np.ndarray, mem: Memory, plan: PlanLimits, h: float,
                       cheap_ok: np.ndarray | None = None) -> np.ndarray:
    """Per joint, the point nearest ``q_c`` on the segment from ``q_fb`` from which the joint can still stop.

    Only joints that cannot stop from ``q_c`` are searched, on a 32-point grid: ``q_c`` itself
    (the cheap bound that refused it is conservative), then bisection, judged by the exact closed
    form. Where feasibility is monotone along the segment (further is faster and nearer the
    limit) the answer is within 1/32 of the segment (at most ``2 h^3 J / 32`` rad) of the best
    one; where it is not, still a point the joint can stop from. Compiled, per joint
    (:func:`vla_kit.safety.kernels.furthest_stoppable_joints`).

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


class CartesianOutcome(NamedTuple):
    """Result of :func:`furthest_cartesian` (a tuple underneath). The layer's own cycle runs the same
    search inside :func:`vla_kit.safety.cartesian_kernels.enforce_cycle` and reads its rows directly.

    Attributes:
        q: what to send (rad).
        fraction: how far it is from the braking step towards the target, 0..1.
        failing: the checks the target broke (``STOP_DISTANCE`` when only braking feasibility did).
        target, sent: per check of the envelope (in ``checks`` order), the excess at the target
            and at ``q`` (m, rad or m/s; 0 = within).
        path: per check, how far beyond it braking from the target might go (by the lever-arm
            bound) when that is why the target was refused (0 elsewhere): a target whose pose is
            inside every limit fails this way on the approach to a wall.
        checks: the envelope's Cartesian checks.
        frames: the forward kinematics of ``q``, ``(dof + 2, 4, 4)``.
    """

    q: np.ndarray
    fraction: float
    failing: list[Check]
    target: tuple[float, ...]
    sent: tuple[float, ...]
    path: tuple[float, ...]
    checks: tuple[Check, ...]
    frames: np.ndarray

    @property
    def excess_target(self) -> dict[Check, float]:
        """``{check: excess at the target}``."""
        return dict(zip(self.checks, self.target))

    @property
    def excess_sent(self) -> dict[Check, float]:
        """``{check: excess at what is sent}``."""
        return dict(zip(self.checks, self.sent))


def furthest_cartesian(
    guard: CartesianGuard, q_fb: np.ndarray, q_j: np.ndarray, mem: Memory, plan: PlanLimits, h: float, *, reduced: bool,
    hint: float | None = None,
) -> CartesianOutcome:
    """The furthest point from the braking step ``q_fb`` towards ``q_j`` that passes the Cartesian
    checks with every joint still able to stop; ``q_fb`` itself when none does.

    With ``hint`` — the fraction found last cycle, which changes little from one cycle to the
    next — the hint and its neighbour 1/256 towards the boundary usually settle it; otherwise
    the boundary is bracketed (doubling steps upwards, the braking step downwards) and bisected
    to 1/256 of the segment. Without a hint, a 16-point grid from the top, then bisection. Either
    way only candidates that pass every check (or the braking step) come back. It runs compiled,
    in one call (:func:`vla_kit.safety.cartesian_kernels.search_segment`).
    """
    out = np.empty_like(q_j)
    excess = np.empty((3, len(SLOTS)))
    frames = np.empty(guard.frame_shape)
    fraction = search_segment(q_fb, q_j, math.nan if hint is None else hint, *guard.kernel_args(mem, plan, h, reduced), out, excess,
                              frames)
    if fraction == 1.0:
        return CartesianOutcome(q_j, 1.0, [], (), (), (), (), frames)
    target, sent, path = guard.pick(excess)
    failing = [c for c, x, p in zip(guard.checks, target, path) if x > 0.0 or p > 0.0] or [Check.STOP_DISTANCE]
    return CartesianOutcome(out, fraction, failing, target, sent, path, guard.checks, frames)
