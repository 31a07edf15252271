"""Pure checks: each joint limit becomes the interval of positions allowed this cycle.

Commands are joint positions; with ``v = (q - q_prev)/dt``, ``a = (v - v_prev)/dt`` and
``j = (a - a_prev)/dt`` every kinematic limit is an interval for the next ``q``:

* position ``[q_lo, q_hi]``;  max step ``q_prev ± max_step * dt / period``;
* velocity ``q_prev + dt [-v, v]``;  acceleration ``q_prev + dt v_prev + dt² [-a, a]``;
* jerk ``q_prev + dt v_prev + dt² a_prev + dt³ [-j, j]``;
* stop distance: the command must leave a state from which the jerk-limited braking law of
  :mod:`vla_kit.safety.braking` stays inside the position and velocity limits
  (:func:`stop_feasible`). That set is the one that matters: it contains every state the layer
  can reach, and from each of them one braking step lands in it again.

The layer plans against :class:`PlanLimits` — the envelope's limits shrunk by a few units in the
last place — so that rounding in ``q + dt (v + dt (a + dt j))`` can never push the *exact*
backward differences of what it sends (:func:`exceeded`) past the envelope. Cartesian helpers at
the bottom work on forward-kinematics outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_kit.safety.braking import BrakingExtent, braking_extent, braking_reach_bound
from vla_kit.safety.envelope import JointLimits
from vla_kit.safety.records import Check

__all__ = [
    "Interval",
    "PlanLimits",
    "plan_limits",
    "step_limit",
    "backward_differences",
    "position_interval",
    "step_interval",
    "velocity_interval",
    "acceleration_interval",
    "jerk_interval",
    "joint_intervals",
    "stop_feasible",
    "exceeded",
    "box_excess",
    "box_depth",
    "plane_margin",
    "tcp_speed",
    "tool_cone_angle",
]

_EPS = np.finfo(np.float64).eps
_REL_MARGIN = 1e-9  # relative shrink of v/a/j limits for planning
_POS_TOL = 1e-8  # rad kept between a moving joint's braking reach and its position limit (float drift)


@dataclass(frozen=True)
class Interval:
    """Per-joint closed interval ``[lo, hi]`` of next positions (rad)."""

    lo: np.ndarray
    hi: np.ndarray

    def contains(self, q: np.ndarray) -> np.ndarray:
        """Per-joint: is ``q`` inside?"""
        return (q >= self.lo) & (q <= self.hi)

    def __and__(self, other: "Interval") -> "Interval":
        return Interval(np.maximum(self.lo, other.lo), np.minimum(self.hi, other.hi))

    def clip(self, q: np.ndarray) -> np.ndarray:
        """``q`` moved to the nearest point of the interval (lower bound wins if it is empty)."""
        return np.maximum(np.minimum(q, self.hi), self.lo)


@dataclass(frozen=True)
class PlanLimits:
    """Limits the layer plans with at one ``dt``: the envelope's, minus numerical headroom.

    Attributes:
        q_lo, q_hi: position limits (rad), exact. v, a, j: speed, acceleration, jerk used for
        planning (the velocity one also honours ``max_step / dt``). step: max step (rad).
        pos_tol: rad kept free between a moving joint's braking reach and its position limit.
    """

    q_lo: np.ndarray
    q_hi: np.ndarray
    v: np.ndarray
    a: np.ndarray
    j: np.ndarray
    step: np.ndarray
    pos_tol: float

    def take(self, joints: np.ndarray) -> "PlanLimits":
        """The limits of a subset of joints (index array or mask)."""
        return PlanLimits(self.q_lo[joints], self.q_hi[joints], self.v[joints], self.a[joints], self.j[joints],
                          self.step[joints], self.pos_tol)


def step_limit(limits: JointLimits, dt: float, period: float) -> np.ndarray:
    """Largest position change (rad) allowed in a cycle of ``dt``: ``max_step`` is per nominal
    ``period`` and scales with the cycle, so a late cycle does not force a velocity drop."""
    return limits.max_step if dt == period else limits.max_step * (dt / period)


def plan_limits(
    limits: JointLimits, dt: float, period: float, q_lo: np.ndarray | None = None, q_hi: np.ndarray | None = None
) -> PlanLimits | None:
    """The planning limits at ``dt``, or ``None`` when ``dt`` is too small for float64 to honour them.

    Args:
        limits: the envelope's joint limits.
        dt: the cycle period (s), finite and > 0.
        period: the envelope's nominal period (s).
        q_lo, q_hi: effective position limits (default: the envelope's).
    """
    q_lo = limits.q_min if q_lo is None else q_lo
    q_hi = limits.q_max if q_hi is None else q_hi
    # Rounding budget of one position computation, in rad, and what it becomes after 1-3 divisions by dt.
    ulp_q = 8.0 * _EPS * np.maximum(np.maximum(np.abs(q_lo), np.abs(q_hi)), 1.0)
    step = step_limit(limits, dt, period)
    v_cap = np.minimum(limits.v_max, step / dt)
    dv = 8.0 * _EPS * v_cap
    v = v_cap * (1.0 - _REL_MARGIN) - ulp_q / dt - dv
    a = limits.a_max * (1.0 - _REL_MARGIN) - ulp_q / dt**2 - dv / dt - 8.0 * _EPS * limits.a_max
    j = limits.j_max * (1.0 - _REL_MARGIN) - ulp_q / dt**3 - dv / dt**2 - 8.0 * _EPS * (limits.a_max / dt + limits.j_max)
    if np.any(v <= 0.5 * v_cap) or np.any(a <= 0.5 * limits.a_max) or np.any(j <= 0.5 * limits.j_max):
        return None
    return PlanLimits(q_lo=q_lo, q_hi=q_hi, v=v, a=a, j=j, step=step - ulp_q, pos_tol=_POS_TOL)


def backward_differences(q: np.ndarray, q_prev: np.ndarray, v_prev: np.ndarray, a_prev: np.ndarray, dt: float):
    """``(v, a, j)`` of the next position ``q``, exactly as every test and monitor computes them."""
    v = (q - q_prev) / dt
    a = (v - v_prev) / dt
    j = (a - a_prev) / dt
    return v, a, j


def position_interval(q_lo: np.ndarray, q_hi: np.ndarray) -> Interval:
    """Positions inside the (effective) position limits."""
    return Interval(q_lo, q_hi)


def step_interval(q_prev: np.ndarray, max_step: np.ndarray) -> Interval:
    """Positions within ``max_step`` of the previous command."""
    return Interval(q_prev - max_step, q_prev + max_step)


def velocity_interval(q_prev: np.ndarray, v_max: np.ndarray, dt: float) -> Interval:
    """Positions whose backward-difference velocity is within ``±v_max``."""
    return Interval(q_prev - dt * v_max, q_prev + dt * v_max)


def acceleration_interval(q_prev: np.ndarray, v_prev: np.ndarray, a_max: np.ndarray, dt: float) -> Interval:
    """Positions whose backward-difference acceleration is within ``±a_max``."""
    centre = q_prev + dt * v_prev
    return Interval(centre - dt * dt * a_max, centre + dt * dt * a_max)


def jerk_interval(q_prev: np.ndarray, v_prev: np.ndarray, a_prev: np.ndarray, j_max: np.ndarray, dt: float) -> Interval:
    """Positions whose backward-difference jerk is within ``±j_max``."""
    centre = q_prev + dt * (v_prev + dt * a_prev)
    return Interval(centre - dt**3 * j_max, centre + dt**3 * j_max)


def joint_intervals(q_prev: np.ndarray, v_prev: np.ndarray, a_prev: np.ndarray, plan: PlanLimits, dt: float) -> dict[Check, Interval]:
    """Every direct interval for the next position, in the order interventions are blamed."""
    return {
        Check.POSITION: position_interval(plan.q_lo, plan.q_hi),
        Check.MAX_STEP: step_interval(q_prev, plan.step),
        Check.VELOCITY: velocity_interval(q_prev, plan.v, dt),
        Check.ACCELERATION: acceleration_interval(q_prev, v_prev, plan.a, dt),
        Check.JERK: jerk_interval(q_prev, v_prev, a_prev, plan.j, dt),
    }


def stop_feasible(
    q: np.ndarray, v: np.ndarray, a: np.ndarray, plan: PlanLimits, dt: float, *, exact: bool = False, cheap_only: bool = False
) -> tuple[np.ndarray, np.ndarray, BrakingExtent | None]:
    """Per joint: can the braking law stop from ``(q, v, a)`` inside the position and speed limits?

    ``q, v, a`` are ``(n,)`` or a batch ``(K, n)``. A cheap travel bound settles joints far from
    their limits; the closed form settles the rest — all of them when ``exact``, which also
    returns where each joint comes to rest. With ``cheap_only`` joints the bound cannot clear are
    reported infeasible (a conservative answer, without the closed form).

    Returns:
        ``(feasible, travel, extent)``: ``travel`` bounds each joint's braking travel (rad);
        ``extent`` is ``None`` unless ``exact``.
    """
    moving = (v != 0.0) | (a != 0.0)
    tol = np.where(moving, plan.pos_tol, 0.0)
    travel, peak = braking_reach_bound(v, a, dt, plan.a, plan.j)
    # A peak equal to |v| is the current speed, which this cycle's exact checks already cover.
    speed_ok = (peak <= plan.v) | (peak <= np.abs(v))
    lo, hi = plan.q_lo + tol, plan.q_hi - tol
    if exact:
        ext = braking_extent(q, v, a, dt, plan.a, plan.j)
        return speed_ok & ext.exact & (ext.q_high <= hi) & (ext.q_low >= lo), travel, ext
    easy = (q + travel <= hi) & (q - travel >= lo)
    if cheap_only or easy.all():
        return speed_ok & easy if cheap_only else speed_ok, travel, None
    hard = ~easy
    full = lambda x: np.broadcast_to(x, q.shape)[hard]  # noqa: E731 - per-joint limits at the hard entries
    ext = braking_extent(q[hard], v[hard], a[hard], dt, full(plan.a), full(plan.j))
    inside = easy.copy()
    inside[hard] = ext.exact & (ext.q_high <= full(hi)) & (ext.q_low >= full(lo))
    return speed_ok & inside, travel, None


def exceeded(
    q: np.ndarray,
    q_prev: np.ndarray,
    v_prev: np.ndarray,
    a_prev: np.ndarray,
    dt: float,
    limits: JointLimits,
    period: float,
    q_lo: np.ndarray | None = None,
    q_hi: np.ndarray | None = None,
) -> dict[Check, np.ndarray]:
    """Per check, per joint: does ``q`` break the envelope's limit (exact, no headroom)?

    This is the monitor's view: backward differences at ``dt`` against the envelope's values.
    """
    q_lo = limits.q_min if q_lo is None else q_lo
    q_hi = limits.q_max if q_hi is None else q_hi
    v, a, j = backward_differences(q, q_prev, v_prev, a_prev, dt)
    return {
        Check.POSITION: (q < q_lo) | (q > q_hi),
        Check.MAX_STEP: np.abs(q - q_prev) > step_limit(limits, dt, period),
        Check.VELOCITY: np.abs(v) > limits.v_max,
        Check.ACCELERATION: np.abs(a) > limits.a_max,
        Check.JERK: np.abs(j) > limits.j_max,
    }


def box_excess(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How far (m) each point ``(..., 3)`` is outside the box; 0 inside, negative never."""
    return np.maximum(np.maximum(lo - points, points - hi), 0.0).max(axis=-1)


def box_depth(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the nearest box face (negative outside)."""
    return np.minimum(points - lo, hi - points).min(axis=-1)


def plane_margin(points: np.ndarray, normals: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Signed distance (m) of each point ``(..., 3)`` to the worst of the planes ``n.p >= offset``
    (negative on the wrong side; ``+inf`` without planes)."""
    if normals.shape[0] == 0:
        return np.full(points.shape[:-1], np.inf)
    norms = np.linalg.norm(normals, axis=-1)
    return np.min(points @ (normals / norms[:, None]).T - offsets / norms, axis=-1)


def tcp_speed(p: np.ndarray, p_prev: np.ndarray, dt: float) -> np.ndarray:
    """TCP speed (m/s) by backward difference."""
    d = p - p_prev
    return np.sqrt((d * d).sum(axis=-1)) / dt


def tool_cone_angle(tool_z: np.ndarray) -> np.ndarray:
    """Angle (rad) between the tool z axis and straight down (``-z`` of the base)."""
    return np.arccos(np.minimum(np.maximum(-tool_z[..., 2], -1.0), 1.0))
