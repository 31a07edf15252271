"""Distances between the arm's link capsules and obstacles or people, vectorised.

The arm is modelled as capsules: one segment per pair of consecutive frame origins from forward
kinematics (base → joint 1 → … → last joint → TCP), each with a radius
(``cartesian.link_radius``). Obstacles are spheres and axis-aligned boxes; a person is a point
(the separation terms carry their size). Every function broadcasts over leading batch axes, so
the layer evaluates 1 or 32 candidate configurations and the audit a million with the same code.

Distances are exact for the model, not sampled: a point to a segment in closed form, and a
segment to a box by minimising the squared distance ``f(t)``, which is convex and piecewise
quadratic in the segment parameter ``t``, piece by piece.
"""

from __future__ import annotations

import numpy as np

from vla_kit.robots.kinematics import Kinematics

__all__ = [
    "capsule_segments",
    "point_segment_distance",
    "segment_box_distance",
    "obstacle_clearance",
    "human_distance",
]


def capsule_segments(kin: Kinematics) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points ``(..., dof + 1, 3)`` (m) of the link segments of ``kin``."""
    points = kin.frames[..., :3, 3]
    return points[..., :-1, :], points[..., 1:, :]


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (m) from points ``p`` to segments ``[a, b]``; all ``(..., 3)``, broadcast together."""
    d = b - a
    dd = (d * d).sum(axis=-1)
    t = ((p - a) * d).sum(axis=-1) / np.where(dd > 0.0, dd, 1.0)
    t = np.minimum(np.maximum(t, 0.0), 1.0)
    e = a + t[..., None] * d - p
    return np.sqrt((e * e).sum(axis=-1))


def _box_sq(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    e = p - np.minimum(np.maximum(p, lo), hi)
    return (e * e).sum(axis=-1)


def segment_box_distance(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance (m) from segments ``[a, b]`` to axis-aligned boxes ``[lo, hi]``; all ``(..., 3)``.

    0 when the segment touches or crosses the box. ``f(t)^2`` is quadratic between the (at most
    six) parameters where a coordinate crosses a face; its minimum on each piece is the piece's
    stationary point clipped to the piece, and the smallest of those is the answer. Two
    implementations give bit-identical results: all axes at once (fewer calls: per-cycle sizes)
    and one axis at a time (less memory traffic: audit-sized batches).
    """
    if np.broadcast_shapes(a.shape, b.shape, lo.shape, hi.shape)[:-1] and max(a.size, b.size) > 96:
        return _segment_box_by_axis(a, b, lo, hi)
    return _segment_box_all_axes(a, b, lo, hi)


def _segment_box_all_axes(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    a, b, lo, hi = np.broadcast_arrays(a, b, lo, hi)
    d = b - a
    safe_d = np.where(d != 0.0, d, 1.0)
    cross = np.concatenate([(lo - a) / safe_d, (hi - a) / safe_d], axis=-1)
    cross = np.where(np.concatenate([d, d], axis=-1) != 0.0, cross, 0.0)
    ends = np.zeros(a.shape[:-1] + (2,))
    ends[..., 1] = 1.0
    knots = np.sort(np.concatenate([ends, np.minimum(np.maximum(cross, 0.0), 1.0)], axis=-1), axis=-1)  # (..., 8)
    t0, t1 = knots[..., :-1], knots[..., 1:]  # (..., 7) pieces
    mid = 0.5 * (t0 + t1)
    a3, d3, lo3, hi3 = a[..., None, :], d[..., None, :], lo[..., None, :], hi[..., None, :]
    pm = a3 + mid[..., None] * d3
    below, above = pm < lo3, pm > hi3
    act = np.where(below | above, d3, 0.0)  # each coordinate's slope where it is outside its slab
    num = (act * (np.where(below, lo3, hi3) - a3)).sum(axis=-1)
    den = (act * act).sum(axis=-1)
    t = np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), mid)
    t = np.minimum(np.maximum(t, t0), t1)
    p = a3 + t[..., None] * d3
    e = p - np.minimum(np.maximum(p, lo3), hi3)
    return np.sqrt((e * e).sum(axis=-1).min(axis=-1))


def _segment_box_by_axis(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    shape = np.broadcast_shapes(a.shape, b.shape, lo.shape, hi.shape)[:-1]
    d = b - a
    ax = [(a[..., k], d[..., k], lo[..., k], hi[..., k]) for k in range(3)]
    knots = np.empty(shape + (8,))
    knots[..., 0], knots[..., 1] = 0.0, 1.0
    for k, (ak, dk, lok, hik) in enumerate(ax):
        moving = dk != 0.0
        step = np.where(moving, dk, 1.0)
        knots[..., 2 + k] = np.where(moving, (lok - ak) / step, 0.0)
        knots[..., 5 + k] = np.where(moving, (hik - ak) / step, 0.0)
    np.clip(knots, 0.0, 1.0, out=knots)
    knots.sort(axis=-1)
    t0, t1 = knots[..., :-1], knots[..., 1:]
    mid = 0.5 * (t0 + t1)
    num = np.zeros(mid.shape)
    den = np.zeros(mid.shape)
    for ak, dk, lok, hik in ax:
        ak, dk, lok, hik = ak[..., None], dk[..., None], lok[..., None], hik[..., None]
        pm = ak + mid * dk
        below, above = pm < lok, pm > hik
        act = np.where(below | above, dk, 0.0)
        num += act * (np.where(below, lok, hik) - ak)
        den += act * act
    t = np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), mid)
    t = np.minimum(np.maximum(t, t0), t1)
    sq = np.zeros(mid.shape)
    for ak, dk, lok, hik in ax:
        p = ak[..., None] + t * dk[..., None]
        e = p - np.minimum(np.maximum(p, lok[..., None]), hik[..., None])
        sq += e * e
    return np.sqrt(sq.min(axis=-1))


def obstacle_clearance(
    starts: np.ndarray,
    ends: np.ndarray,
    radii: np.ndarray,
    spheres: tuple[np.ndarray, np.ndarray] | None,
    boxes: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """Smallest distance (m) between any link capsule and any obstacle, per configuration.

    Args:
        starts, ends: ``(..., S, 3)`` link segments (:func:`capsule_segments`).
        radii: ``(S,)`` capsule radii (m).
        spheres: ``(centres (O, 3), radii (O,))`` or ``None``.
        boxes: ``(lo (B, 3), hi (B, 3))`` or ``None``.

    Returns:
        ``(...,)`` clearance (m): negative when a capsule reaches into an obstacle; ``+inf``
        without obstacles.
    """
    best = np.full(starts.shape[:-2], np.inf)
    a, b = starts[..., :, None, :], ends[..., :, None, :]  # (..., S, 1, 3)
    if spheres is not None:
        centres, r = spheres
        gap = point_segment_distance(centres, a, b) - r - radii[:, None]  # (..., S, O)
        best = np.minimum(best, gap.min(axis=(-2, -1)))
    if boxes is not None:
        lo, hi = boxes
        gap = segment_box_distance(a, b, lo, hi) - radii[:, None]  # (..., S, B)
        best = np.minimum(best, gap.min(axis=(-2, -1)))
    return best


def human_distance(humans: np.ndarray, starts: np.ndarray, ends: np.ndarray, radii: np.ndarray) -> float:
    """Smallest distance (m) from any person (points ``(H, 3)``) to the surface of any link capsule
    of one configuration (``starts, ends (S, 3)``); ``+inf`` without people, 0 inside a capsule."""
    if humans.shape[0] == 0:
        return float("inf")
    dist = point_segment_distance(humans[:, None, :], starts[None, :, :], ends[None, :, :]) - radii
    return float(max(dist.min(), 0.0))
