"""Compiled Cartesian checks: one configuration at a time, no temporaries (numba, cached next to this file).

The Cartesian part of a control cycle is small arithmetic on a 9-frame chain — forward
kinematics, a dozen linear margins, a few capsule–obstacle distances, a cone angle, a speed — but
in numpy each of those is an array call of a microsecond or more, and the layer judges up to
~30 candidate commands per clamped cycle. Here the judgement of a candidate is one scalar loop,
and the clamping search is one call: it judges candidates from the furthest down and stops at
the first that passes, where numpy had to judge whole grids.

What is judged (:func:`judge_batch`, :func:`search_segment`) is what
:mod:`vla_kit.safety.cartesian` documents: the pose checks (keep-in boxes and half-spaces on TCP
and elbow, obstacle clearance of the link capsules, tool cone) at the candidate **and along its
whole braking path** (cleared by the lever-arm bound), the TCP speed now and once the
acceleration is ramped out, and — because a candidate must also be one every joint can stop
from — the stop feasibility of :func:`vla_kit.safety.checks.stop_feasible` (cheap bound, then the
closed form). The geometry is :mod:`vla_kit.safety.geometry`'s, the same formulas per scalar;
``tests/safety/test_cartesian_kernels.py`` holds the two together on random configurations.

Excess (how far beyond a limit; 0 = within) comes back in fixed slots, :data:`SLOTS`. Every entry
point has one explicit signature with read-only inputs, so it is compiled or loaded at import,
never inside a control cycle.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from vla_kit.robots.fk_kernel import fk_one
from vla_kit.safety.kernels import (CLAMP_REJECTED, _max, _min, _ramp_dv, blame_rows, braking_extent_1, cheap_stop_joints, clamp_joints,
                                   measure_rows, robot_terms, stop_feasible_1)
from vla_kit.safety.records import Check

__all__ = ["SLOTS", "SLACK", "pose_excess_batch", "judge_batch", "search_segment", "clamp_cycle", "enforce_cycle", "human_clearance",
           "separation_now", "JC_ROWS"]

SLOTS = (Check.TCP_BOX, Check.ELBOW_BOX, Check.PLANE, Check.OBSTACLE, Check.TOOL_CONE, Check.TCP_SPEED)
_POSE = 5  # the first five slots are pose checks; the last is the TCP speed
SLACK = 1e-12  # m or rad: an equal excess after a round trip through FK still counts as "not worse"
_GRID = 16  # points of the search without a hint
_STEP = 1.0 / 256.0  # where a bisection stops (fraction of the segment)
_POSE_WORK = 14  # scratch of _pose and _judge: 3 slot minima, 8 knots of _segment_box, the binding slot, what blocked the braking path


# ---------------------------------------------------------------------- geometry (one pair at a time)


@njit(cache=True)
def _point_segment(px, py, pz, ax, ay, az, bx, by, bz) -> float:  # noqa: ANN001
    dx, dy, dz = bx - ax, by - ay, bz - az
    dd = dx * dx + dy * dy + dz * dz
    t = ((px - ax) * dx + (py - ay) * dy + (pz - az) * dz) / (dd if dd > 0.0 else 1.0)
    t = _min(_max(t, 0.0), 1.0)
    ex, ey, ez = ax + t * dx - px, ay + t * dy - py, az + t * dz - pz
    return math.sqrt(ex * ex + ey * ey + ez * ez)


@njit(cache=True)
def _segment_box(a, b, lo, hi, knots) -> float:  # noqa: ANN001 - 3-vectors
    """Distance from segment ``[a, b]`` to box ``[lo, hi]``: the piecewise-quadratic minimum of
    geometry.segment_box_distance. ``knots``: 8 values of scratch (overwritten)."""
    knots[0], knots[1] = 0.0, 1.0
    for k in range(3):
        d = b[k] - a[k]
        if d != 0.0:
            knots[2 + k] = _min(_max((lo[k] - a[k]) / d, 0.0), 1.0)
            knots[5 + k] = _min(_max((hi[k] - a[k]) / d, 0.0), 1.0)
        else:
            knots[2 + k] = 0.0
            knots[5 + k] = 0.0
    for i in range(1, 8):  # insertion sort of 8 values
        x = knots[i]
        j = i - 1
        while j >= 0 and knots[j] > x:
            knots[j + 1] = knots[j]
            j -= 1
        knots[j + 1] = x
    best = math.inf
    for p in range(7):
        t0, t1 = knots[p], knots[p + 1]
        mid = 0.5 * (t0 + t1)
        num = 0.0
        den = 0.0
        for k in range(3):
            d = b[k] - a[k]
            pm = a[k] + mid * d
            if pm < lo[k]:
                num += d * (lo[k] - a[k])
                den += d * d
            elif pm > hi[k]:
                num += d * (hi[k] - a[k])
                den += d * d
        t = num / den if den > 0.0 else mid
        t = _min(_max(t, t0), t1)
        sq = 0.0
        for k in range(3):
            pk = a[k] + t * (b[k] - a[k])
            e = pk - _min(_max(pk, lo[k]), hi[k])
            sq += e * e
        best = _min(best, sq)
    return math.sqrt(best)


@njit(cache=True)
def _clearance(frames, radii, spheres, boxes, knots) -> float:  # noqa: ANN001
    """Smallest gap (m) between any link capsule of one configuration and any obstacle (inf: none);
    ``knots``: scratch for :func:`_segment_box`."""
    best = math.inf
    for s in range(frames.shape[0] - 1):
        a = frames[s, :3, 3]
        b = frames[s + 1, :3, 3]
        for o in range(spheres.shape[0]):
            gap = _point_segment(spheres[o, 0], spheres[o, 1], spheres[o, 2], a[0], a[1], a[2], b[0], b[1], b[2]) - spheres[o, 3] - radii[s]
            best = _min(best, gap)
        for o in range(boxes.shape[0]):
            # The gap between the segment's bounding box and the obstacle bounds its distance from
            # below: a pair that cannot beat the best so far is skipped (the minimum is unchanged).
            sq = 0.0
            for k in range(3):
                g = _max(boxes[o, k] - _max(a[k], b[k]), _min(a[k], b[k]) - boxes[o, 3 + k])
                if not g <= 0.0:  # NaN included: it makes the bound NaN, and a NaN bound goes the exact way
                    sq += g * g
            if not math.sqrt(sq) - radii[s] >= best:
                best = _min(best, _segment_box(a, b, boxes[o, :3], boxes[o, 3:], knots) - radii[s])
    return best


# ---------------------------------------------------------------------- pose checks of one configuration


@njit(cache=True)
def _pose(frames, lin, spheres, boxes, radii, min_distance, cone, excess, work) -> tuple[float, float]:  # noqa: ANN001
    """Fill ``excess[:5]`` for one configuration; return the smallest box/plane/obstacle margin (m)
    and the cone margin (rad), each inf when no such check is on. ``work``: :data:`_POSE_WORK`
    values of scratch (overwritten), so that judging a candidate allocates nothing; ``work[11]``
    gets the slot of the smallest margin (-1: none).

    ``lin`` rows are ``(frame, slot, nx, ny, nz, offset)``: margin ``n . p_frame + offset`` (>= 0 inside).
    ``cone`` is NaN when the tool cone is off; excess[4] then stays 0.
    """
    for c in range(_POSE):
        excess[c] = 0.0
    margin = math.inf
    bind = -1
    worst = work[:3]
    worst[:] = math.inf
    for g in range(lin.shape[0]):
        f, slot = int(lin[g, 0]), int(lin[g, 1])
        m = frames[f, 0, 3] * lin[g, 2] + frames[f, 1, 3] * lin[g, 3] + frames[f, 2, 3] * lin[g, 4] + lin[g, 5]
        worst[slot] = _min(worst[slot], m)
        if m < margin:
            bind = slot
        margin = _min(margin, m)
    for slot in range(3):
        if worst[slot] < math.inf:
            excess[slot] = _max(-worst[slot], 0.0)
    if spheres.shape[0] or boxes.shape[0]:
        obst = _clearance(frames, radii, spheres, boxes, work[3:]) - min_distance
        excess[3] = _max(-obst, 0.0)
        if obst < margin:
            bind = 3
        margin = _min(margin, obst)
    work[11] = bind
    cone_margin = math.inf
    if cone == cone:
        z = frames[frames.shape[0] - 1, 2, 2]
        cone_margin = cone - math.acos(_min(_max(-z, -1.0), 1.0))
        excess[4] = _max(-cone_margin, 0.0)
    return margin, cone_margin


_RO1 = types.Array(types.float64, 1, "A", readonly=True)
_RO2 = types.Array(types.float64, 2, "A", readonly=True)
_RO3 = types.Array(types.float64, 3, "A", readonly=True)
_RO4 = types.Array(types.float64, 4, "A", readonly=True)


@njit(types.void(_RO4, _RO2, _RO2, _RO2, _RO1, types.float64, types.float64, types.float64[:, ::1]), cache=True)
def pose_excess_batch(frames: np.ndarray, lin: np.ndarray, spheres: np.ndarray, boxes: np.ndarray, radii: np.ndarray,
                      min_distance: float, cone: float, out: np.ndarray) -> None:
    """``out[k, :5]``: pose-check excess of each configuration's frames ``(K, F, 4, 4)`` (audits, allowances)."""
    work = np.empty(_POSE_WORK)
    for k in range(frames.shape[0]):
        _pose(frames[k], lin, spheres, boxes, radii, min_distance, cone, out[k], work)


@njit(types.float64(_RO2, _RO3, _RO1), cache=True)
def human_clearance(humans: np.ndarray, frames: np.ndarray, radii: np.ndarray) -> float:
    """Smallest distance (m) from any person (points ``(H, 3)``) to the surface of any link capsule of
    one configuration's frames ``(F, 4, 4)``; inf without people, 0 inside a capsule, NaN when a
    person coordinate is not finite (untrustworthy data: the caller decides)."""
    for p in range(humans.shape[0]):
        for k in range(3):
            if not abs(humans[p, k]) < math.inf:
                return math.nan
    best = math.inf
    for p in range(humans.shape[0]):
        for s in range(frames.shape[0] - 1):
            d = _point_segment(humans[p, 0], humans[p, 1], humans[p, 2], frames[s, 0, 3], frames[s, 1, 3], frames[s, 2, 3],
                               frames[s + 1, 0, 3], frames[s + 1, 1, 3], frames[s + 1, 2, 3]) - radii[s]
            best = _min(best, d)
    return best if best == math.inf else _max(best, 0.0)


@njit(types.UniTuple(types.float64, 2)(_RO2, _RO3, _RO1, _RO1, _RO1, types.float64, _RO1, _RO1, _RO1, _RO1), cache=True)
def separation_now(humans: np.ndarray, frames: np.ndarray, radii: np.ndarray, v: np.ndarray, a: np.ndarray, h: float,
                   a_max: np.ndarray, j_max: np.ndarray, levers: np.ndarray, person: np.ndarray) -> tuple[float, float]:
    """One cycle of speed-and-separation monitoring in one call: ``(d, S_p)``.

    ``d`` is :func:`human_clearance` (NaN for a non-finite person coordinate); ``S_p`` the ISO/TS
    15066 protective separation distance at the arm's state ``v``, ``a``, with the robot terms of
    :func:`vla_kit.safety.kernels.robot_terms` and ``person`` = ``(v_h, T_r, C, Z_d, Z_r)``, summed in
    the order of :func:`vla_kit.safety.separation.protective_separation_distance` (same bits)."""
    d = human_clearance(humans, frames, radii)
    speed, distance, stop_time = robot_terms(v, a, h, a_max, j_max, levers)
    v_h, t_r = person[0], person[1]
    return d, v_h * (t_r + stop_time) + speed * t_r + distance + person[2] + person[3] + person[4]


# ---------------------------------------------------------------------- judging candidate commands


@njit(cache=True)
def _passes_at(s, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept) -> bool:  # noqa: ANN001
    """Judge the point ``s`` of the way from ``q_fb`` to ``q_j`` (into ``cand``, its excess into
    ``row``); when it passes, keep it: ``out``, ``excess[1]`` and its frames ``kept``."""
    for i in range(q_j.shape[0]):
        cand[i] = q_fb[i] + s * (q_j[i] - q_fb[i])
    if not _judge(cand, ctx, True, row, frames, scratch):
        return False
    out[:] = cand
    excess[1, :] = row
    kept[:] = frames
    return True


@njit(cache=True)
def _context(mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit,  # noqa: ANN001
             allowance, recovering, p_prev) -> tuple:
    """The ``ctx`` every candidate of a cycle shares, in the order :func:`_judge` unpacks it, with
    its two scratch arrays: judging allocates nothing (but when recovering). ``ctx[22]`` is the
    pose scratch, where a judgement leaves the slot its braking path may cross."""
    return (mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit,
            allowance, recovering, p_prev, np.empty((3, mq.shape[0])), np.empty(_POSE_WORK))


@njit(cache=True)
def _judge(c, ctx, path, excess, frames, scratch) -> bool:  # noqa: ANN001
    """Whether one candidate ``c`` passes stop feasibility and every Cartesian check; fills
    ``excess`` (6 slots) and ``frames`` (its forward kinematics).

    ``ctx`` is what every candidate of a cycle shares (``CartesianGuard.kernel_args``, or
    :func:`enforce_cycle` with the plan rows of its packed constants): memory,
    planning limits (``plan`` rows q_lo, q_hi, v, a, j), kinematics, geometry, the TCP speed limit
    (NaN: none), the allowance and the previous TCP position, then two scratch arrays the entry
    point allocates once per call (``(3, n)`` and :data:`_POSE_WORK`). ``path``: also clear the
    braking path and the speed once the acceleration is ramped out (False: the pose alone, for
    reports). ``scratch`` ``(F, 4, 4)`` is overwritten."""
    (mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit, allowance,
     recovering, p_prev, work, pose_work) = ctx
    n = c.shape[0]
    ahead = scratch
    stop_ok = True
    reach = 0.0  # sum_i lever_i * travel_i: how far any point of the arm can move while braking
    turn = 0.0  # sum_i travel_i: how far the tool can turn
    speeding = limit == limit
    v_ahead, v, a = work[0], work[1], work[2]
    for i in range(n):
        vi = (c[i] - mq[i]) / h
        ai = (vi - mv[i]) / h
        v[i], a[i] = vi, ai
        delta = h * plan[4, i]
        rdv = _ramp_dv(ai, h, delta)
        v_ahead[i] = vi + rdv
        peak = _max(abs(vi), abs(vi + rdv))
        travel = h * peak * ((abs(ai) + 2.0 * plan[3, i]) / delta + 4.0) + peak * peak / (2.0 * plan[3, i])
        if path:
            reach += levers[i] * travel
            turn += travel
        if stop_ok:
            tol = pos_tol if (vi != 0.0 or ai != 0.0) else 0.0
            lo, hi = plan[0, i] + tol, plan[1, i] - tol
            if not (peak <= plan[2, i] or peak <= abs(vi)):
                stop_ok = False
            elif not (c[i] + travel <= hi and c[i] - travel >= lo):
                stop_ok = stop_feasible_1(c[i], vi, ai, h, plan[0, i], plan[1, i], plan[2, i], plan[3, i], plan[4, i], pos_tol)
    fk_one(c, fk_c, fk_s, fk_k, tool, frames)
    margin, cone_margin = _pose(frames, lin, spheres, boxes, radii, min_distance, cone, excess, pose_work)
    ok = True
    for s in range(_POSE):
        if not excess[s] <= allowance[s] + SLACK:
            ok = False
    uncleared = reach >= margin or turn >= cone_margin
    unsure = False
    pose_work[12] = -1.0  # the slot whose limit the braking path may cross (-1: none), and by how much (m or rad)
    if recovering:
        unsure = ok and uncleared
    elif uncleared:
        if ok:  # the pose itself is within every limit: only its braking path was not cleared
            if reach >= margin:
                pose_work[12], pose_work[13] = pose_work[11], reach - margin
            else:
                pose_work[12], pose_work[13] = 4.0, turn - cone_margin
        ok = False
    excess[5] = 0.0
    if speeding:
        last = frames.shape[0] - 1
        dx, dy, dz = frames[last, 0, 3] - p_prev[0], frames[last, 1, 3] - p_prev[1], frames[last, 2, 3] - p_prev[2]
        speed = math.sqrt(dx * dx + dy * dy + dz * dz) / h
        if path:
            for i in range(n):
                v_ahead[i] = c[i] + h * v_ahead[i]
            fk_one(v_ahead, fk_c, fk_s, fk_k, tool, ahead)
            dx, dy, dz = ahead[last, 0, 3] - frames[last, 0, 3], ahead[last, 1, 3] - frames[last, 1, 3], ahead[last, 2, 3] - frames[last, 2, 3]
            speed = _max(speed, math.sqrt(dx * dx + dy * dy + dz * dz) / h)
        excess[5] = _max(speed - limit, 0.0)
        ok = ok and excess[5] <= 0.0
    if unsure:  # recovering from a start outside: judge the configuration where braking ends
        q_stop = np.empty(n)
        for i in range(n):
            stop_i, _, _, _, exact = braking_extent_1(c[i], v[i], a[i], h, plan[3, i], plan[4, i])
            q_stop[i] = stop_i
            ok = ok and exact
        fk_one(q_stop, fk_c, fk_s, fk_k, tool, ahead)
        at_stop = np.empty(6)
        _pose(ahead, lin, spheres, boxes, radii, min_distance, cone, at_stop, pose_work)
        for s in range(_POSE):
            if not at_stop[s] <= allowance[s] + SLACK:
                ok = False
    return ok and stop_ok


@njit(types.void(_RO2, _RO1, _RO1, _RO1, _RO2, types.float64, types.float64, _RO3, _RO3, _RO3, _RO2, _RO2, _RO2, _RO2, _RO1, _RO1,
                 types.float64, types.float64, types.float64, _RO1, types.boolean, _RO1, types.boolean[::1], types.float64[:, ::1],
                 types.float64[:, ::1], types.float64[:, :, ::1]), cache=True)
def judge_batch(cand: np.ndarray, mq: np.ndarray, mv: np.ndarray, ma: np.ndarray, plan: np.ndarray, pos_tol: float, h: float,
                fk_c: np.ndarray, fk_s: np.ndarray, fk_k: np.ndarray, tool: np.ndarray, lin: np.ndarray, spheres: np.ndarray,
                boxes: np.ndarray, radii: np.ndarray, levers: np.ndarray, min_distance: float, cone: float, limit: float,
                allowance: np.ndarray, recovering: bool, p_prev: np.ndarray, good: np.ndarray, excess: np.ndarray,
                path: np.ndarray, frames: np.ndarray) -> None:
    """Judge candidates ``cand`` ``(K, n)``: ``good[k]``, ``excess[k]`` (slots, at the candidate);
    ``path[k]``: how far beyond a pose limit the braking path from the candidate may go by the
    lever-arm bound when that is what refused it (one slot at most, 0 elsewhere); ``frames`` gets
    the forward kinematics of the first candidate."""
    scratch = np.empty_like(frames)
    spare = np.empty_like(frames)
    ctx = _context(mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit,
                   allowance, recovering, p_prev)
    pose_work = ctx[22]
    path[:, :] = 0.0
    for k in range(cand.shape[0]):
        good[k] = _judge(cand[k], ctx, True, excess[k], frames if k == 0 else spare, scratch)
        if pose_work[12] >= 0.0:
            path[k, int(pose_work[12])] = pose_work[13]


@njit(cache=True)
def _bisect(lo, hi, found, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept) -> float:  # noqa: ANN001
    """Narrow ``[lo, hi]`` (``hi`` fails; ``lo`` passed and is kept when ``found``, else it is the
    braking step) to 1/256 of the segment; the highest passing fraction, or -1 when none passed."""
    best = lo if found else -1.0
    while hi - lo > _STEP:
        s = 0.5 * (lo + hi)
        if _passes_at(s, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
            lo = best = s
        else:
            hi = s
    return best


@njit(cache=True)
def _settle(best, q_fb, ctx, excess, kept, scratch, out) -> float:  # noqa: ANN001
    """The search's answer: ``best``, or the braking step (fraction 0) when nothing passed, with
    what it still exceeds (judged without a braking path: for the report)."""
    if best >= 0.0:
        return best
    out[:] = q_fb
    _judge(q_fb, ctx, False, excess[1], kept, scratch)
    return 0.0


@njit(types.float64(_RO1, _RO1, types.float64, _RO1, _RO1, _RO1, _RO2, types.float64, types.float64, _RO3, _RO3, _RO3, _RO2, _RO2,
                    _RO2, _RO2, _RO1, _RO1, types.float64, types.float64, types.float64, _RO1, types.boolean, _RO1, types.float64[::1],
                    types.float64[:, ::1], types.float64[:, :, ::1]), cache=True)
def search_segment(q_fb: np.ndarray, q_j: np.ndarray, hint: float, mq: np.ndarray, mv: np.ndarray, ma: np.ndarray, plan: np.ndarray,
                   pos_tol: float, h: float, fk_c: np.ndarray, fk_s: np.ndarray, fk_k: np.ndarray, tool: np.ndarray, lin: np.ndarray,
                   spheres: np.ndarray, boxes: np.ndarray, radii: np.ndarray, levers: np.ndarray, min_distance: float, cone: float,
                   limit: float, allowance: np.ndarray, recovering: bool, p_prev: np.ndarray, out: np.ndarray,
                   excess: np.ndarray, kept: np.ndarray) -> float:
    """The furthest point from the braking step ``q_fb`` towards ``q_j`` that :func:`_judge` passes.

    Writes it to ``out`` and returns its fraction of the way (1: ``q_j`` itself passes; 0: only
    the braking step is left). ``excess`` rows: at ``q_j``, at what was kept, and how far beyond
    a pose limit the braking path from ``q_j`` may go by the lever-arm bound when that is what
    refused it (one slot at most; 0 elsewhere); ``kept``: the forward kinematics of what was kept.

    The search: with ``hint`` (last cycle's fraction, NaN: none) the hint and its neighbour 1/256
    towards the boundary; a passing point with a failing one just above settles it (three
    judgements in all, usually). Beyond that, upwards steps double until one fails, downwards the
    braking step is judged, and the bracket is bisected to 1/256 of the segment. Without a hint,
    a 16-point grid judged from the top down to its first passing point, then bisected between it
    and the failing point above. The braking step is the answer when nothing passes, judged or
    not: it continues a stop that was admissible last cycle. Otherwise only judged points that
    pass are kept, so a boundary that is not monotone along the segment costs progress, never
    safety.
    """
    ctx = _context(mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit,
                   allowance, recovering, p_prev)
    pose_work = ctx[22]
    frames = np.empty_like(kept)
    scratch = np.empty_like(kept)
    cand = np.empty(q_j.shape[0])
    row = np.empty(6)
    excess[2, :] = 0.0
    if _judge(q_j, ctx, True, excess[0], kept, scratch):
        out[:] = q_j
        excess[1, :] = excess[0]
        return 1.0
    if pose_work[12] >= 0.0:  # the target's pose may pass, its braking path was not cleared: say which limit it may cross
        excess[2, int(pose_work[12])] = pose_work[13]
    if hint == hint:
        # The boundary moves little from one cycle to the next: judge last cycle's fraction and
        # its neighbour 1/256 towards the boundary; that usually settles it. Upwards, steps double
        # until one fails; downwards, the braking step is judged next (the boundary often jumps
        # there); then the bracket is bisected to 1/256 of the segment.
        s = _min(_max(hint, 0.0), 1.0)
        if _passes_at(s, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
            step = _STEP
            while s < 1.0:
                up = _min(s + step, 1.0)
                if up == 1.0 or not _passes_at(up, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
                    return _bisect(s, up, True, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept)  # q_j itself failed
                s, step = up, 2.0 * step
            return s
        if s > 0.0:
            below = _max(s - _STEP, 0.0)
            if _passes_at(below, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
                return below  # bracketed: the point above failed
            if below > 0.0 and _passes_at(0.0, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
                return _bisect(0.0, below, True, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept)
        out[:] = q_fb  # the braking step itself was judged last and failed: nothing further passes
        excess[1, :] = row
        kept[:] = frames
        return 0.0
    for g in range(1, _GRID):
        s = 1.0 - g / _GRID
        if _passes_at(s, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept):
            return _bisect(s, s + 1.0 / _GRID, True, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept)
    return _settle(_bisect(0.0, 1.0 / _GRID, False, q_fb, q_j, cand, ctx, row, frames, scratch, out, excess, kept), q_fb, ctx,
                   excess, kept, scratch, out)



# ---------------------------------------------------------------------- the whole cycle: pass a command through, or clamp it

# Rows of the packed per-plan joint constants (``JointEnforcer._jc``) that enforce_cycle and clamp_cycle read: the step,
# velocity, acceleration and jerk interval half-widths (4), the plan rows q_lo, q_hi, v, a, j (5), the measure bounds (6),
# h J, 2 A, the position limits less pos_tol, and the speed and acceleration a joint is near its limit at (caution).
JC_ROWS = 21
_FLAGS = types.Array(types.boolean, 1, "A", readonly=True)
COMMAND_BROKEN, COMMAND_STOP_REFUSED, COMMAND_REFUSED, COMMAND_PASSES, COMMAND_PASSES_NEAR = 0, 1, 2, 3, 4  # enforce_cycle's verdict


@njit(cache=True)
def _judge_command(q, mq, mv, ma, mem_lo, mem_hi, h, jc, pos_tol, cartesian, caution_fraction, ctx, rows, v, a, joint_ok, stop_ok,
                   excess, frames) -> int:  # noqa: ANN001
    """Whether the command ``q`` may pass as it is (:func:`enforce_cycle`'s first half): its measure
    rows; where the cheap bound refuses a joint's stop, the exact closed form (as
    :func:`~vla_kit.safety.checks.stop_feasible`); the caution share of the joint speed and
    acceleration limits; with ``cartesian`` checks, :func:`_judge` at the command (excess into
    ``excess[0]``, how far its braking path may cross a limit into ``excess[1]``) and its TCP
    speed against ``caution_fraction`` of the limit (NaN: never near by speed)."""
    if not measure_rows(q, mq, mv, ma, mem_lo, mem_hi, h, jc[9:15], rows, v, a, joint_ok):
        return COMMAND_BROKEN
    if not cheap_stop_joints(q, v, a, h, jc[15], jc[16], jc[6], jc[17], jc[18], stop_ok):
        every = True
        for i in range(q.shape[0]):
            if not stop_ok[i]:
                stop_ok[i] = stop_feasible_1(q[i], v[i], a[i], h, jc[4, i], jc[5, i], jc[6, i], jc[7, i], jc[8, i], pos_tol)
                every = every and stop_ok[i]
        if not every:
            return COMMAND_STOP_REFUSED
    near = False
    for i in range(q.shape[0]):
        if rows[3, i] >= jc[19, i] or rows[4, i] >= jc[20, i]:
            near = True
    if not cartesian:
        return COMMAND_PASSES_NEAR if near else COMMAND_PASSES
    pose_work = ctx[22]
    excess[1, :] = 0.0
    if not _judge(q, ctx, True, excess[0], frames, np.empty_like(frames)):
        if pose_work[12] >= 0.0:
            excess[1, int(pose_work[12])] = pose_work[13]
        return COMMAND_REFUSED
    limit, p_prev = ctx[17], ctx[20]
    # The TCP speed now, against the share of the limit that counts as near it (NaN caution_fraction: no previous TCP).
    # A level, not a limit: numpy's BLAS dot product may round this norm differently by an ulp.
    if not near and limit == limit:
        last = frames.shape[0] - 1
        dx, dy, dz = frames[last, 0, 3] - p_prev[0], frames[last, 1, 3] - p_prev[1], frames[last, 2, 3] - p_prev[2]
        near = math.sqrt(dx * dx + dy * dy + dz * dz) / h >= caution_fraction * limit
    return COMMAND_PASSES_NEAR if near else COMMAND_PASSES


@njit(types.Tuple((types.int64, types.float64, types.int64, types.boolean))(
    _RO1, _FLAGS, _FLAGS, _RO1, _RO1, _RO1, _RO1, _RO1, types.float64, _RO2, types.float64, types.boolean, types.float64, types.boolean,
    _RO3, _RO3, _RO3, _RO2, _RO2, _RO2, _RO2, _RO1, _RO1, types.float64, types.float64, types.float64, _RO1, types.boolean, _RO1,
    _RO2, types.float64[::1], types.float64[::1], types.float64[::1], types.float64[:, :, ::1], types.float64[:, ::1],
    types.int64[:, ::1], types.float64[:, ::1]), cache=True)
def clamp_cycle(q_cmd: np.ndarray, direct_ok: np.ndarray, stop_ok: np.ndarray, mq: np.ndarray, mv: np.ndarray, ma: np.ndarray,
                mem_lo: np.ndarray, mem_hi: np.ndarray, h: float, jc: np.ndarray, pos_tol: float, reject: bool, hint: float,
                cartesian: bool, fk_c: np.ndarray, fk_s: np.ndarray, fk_k: np.ndarray, tool: np.ndarray, lin: np.ndarray,
                spheres: np.ndarray, boxes: np.ndarray, radii: np.ndarray, levers: np.ndarray, min_distance: float, cone: float,
                limit: float, allowance: np.ndarray, recovering: bool, p_prev: np.ndarray, measures: np.ndarray, q_out: np.ndarray,
                v_out: np.ndarray, a_out: np.ndarray, frames: np.ndarray, excess: np.ndarray, idx: np.ndarray,
                val: np.ndarray) -> tuple[int, float, int, bool]:
    """A command that breaks a limit, clamped in one call: what
    :meth:`~vla_kit.safety.enforce.JointEnforcer.enforce` did in four, with the same kernels in the same order.

    :func:`~vla_kit.safety.kernels.clamp_joints` (joints that met every limit — ``direct_ok`` and
    ``stop_ok`` — keep their command), then, unless it rejected the command, with ``cartesian``
    checks on, :func:`search_segment` from the braking step towards the clip (``hint``: last
    cycle's fraction, NaN: none), then :func:`~vla_kit.safety.kernels.blame_rows` against the
    command's ``measures``, then :func:`~vla_kit.safety.kernels.measure_rows` of what is sent.
    ``jc`` packs the per-plan joint constants (:data:`JC_ROWS`). The arguments from ``fk_c`` to ``p_prev`` are the search's
    (``CartesianGuard.cycle_args``); without ``cartesian`` they are not read.

    Writes ``q_out`` (what to send), ``v_out``/``a_out`` (its backward differences), ``frames``
    and ``excess`` (the search's, when it ran), ``idx``/``val`` (the blame's columns).

    Returns:
        ``(clamp code, fraction of the way from the braking step to the clip, changed joints,
        every direct limit holds exactly at q_out)``; the fraction is 1 when no search ran.
    """
    n = q_cmd.shape[0]
    widths, plan, bound = jc[0:4], jc[4:9], jc[9:15]
    keep = np.empty(n, dtype=np.bool_)
    for i in range(n):
        keep[i] = direct_ok[i] and stop_ok[i]  # one of the two masks is all true
    lo4, hi4, rows = np.empty((4, n)), np.empty((4, n)), np.empty((6, n))
    ok, q_fb, q_c = np.empty(n, dtype=np.bool_), np.empty(n), np.empty(n)
    code = clamp_joints(q_cmd, keep, mq, mv, ma, mem_lo, mem_hi, h, widths, plan, pos_tol, bound, jc[15], jc[16], jc[17], jc[18],
                        reject, lo4, hi4, rows, ok, q_fb, q_c, v_out, a_out)
    fraction = 1.0
    if cartesian and code != CLAMP_REJECTED:
        fraction = search_segment(q_fb, q_c, hint, mq, mv, ma, plan, pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii,
                                  levers, min_distance, cone, limit, allowance, recovering, p_prev, q_out, excess, frames)
    else:
        q_out[:] = q_c
    m = blame_rows(q_cmd, q_out, measures, bound, lo4, hi4, plan[0], plan[1], mem_lo, mem_hi, direct_ok, stop_ok, idx, val)
    exact = measure_rows(q_out, mq, mv, ma, mem_lo, mem_hi, h, bound, rows, v_out, a_out, ok)
    return code, fraction, m, exact


@njit(types.Tuple((types.int64, types.int64, types.float64, types.int64, types.boolean))(
    _RO1, _RO1, _RO1, _RO1, _RO1, _RO1, types.float64, _RO2, types.float64, types.boolean, types.float64, types.boolean,
    types.float64, _RO3, _RO3, _RO3, _RO2, _RO2, _RO2, _RO2, _RO1, _RO1, types.float64, types.float64, types.float64, _RO1,
    types.boolean, _RO1, types.float64[:, ::1], types.float64[::1], types.float64[::1], types.float64[::1], types.boolean[::1],
    types.boolean[::1], types.float64[:, :, ::1], types.float64[:, ::1], types.int64[:, ::1], types.float64[:, ::1]), cache=True)
def enforce_cycle(q_cmd: np.ndarray, mq: np.ndarray, mv: np.ndarray, ma: np.ndarray, mem_lo: np.ndarray, mem_hi: np.ndarray, h: float,
                  jc: np.ndarray, pos_tol: float, reject: bool, hint: float, cartesian: bool, caution_fraction: float, fk_c: np.ndarray,
                  fk_s: np.ndarray, fk_k: np.ndarray, tool: np.ndarray, lin: np.ndarray, spheres: np.ndarray, boxes: np.ndarray,
                  radii: np.ndarray, levers: np.ndarray, min_distance: float, cone: float, limit: float, allowance: np.ndarray,
                  recovering: bool, p_prev: np.ndarray, rows: np.ndarray, q_out: np.ndarray, v: np.ndarray, a: np.ndarray,
                  joint_ok: np.ndarray, stop_ok: np.ndarray, frames: np.ndarray, excess: np.ndarray, idx: np.ndarray,
                  val: np.ndarray) -> tuple[int, int, float, int, bool]:
    """One command through :meth:`~vla_kit.safety.enforce.JointEnforcer.enforce`'s arithmetic, in one call.

    First whether it may pass as it is (:func:`_judge_command`: measure ``rows``, ``v``, ``a``,
    ``joint_ok``; stop feasibility into ``stop_ok``; with ``cartesian`` checks, the judge at the
    command, into ``excess`` rows 0 and 1 and ``frames``); if not, :func:`clamp_cycle` — joints
    that broke a direct limit are clipped when any did, else those that cannot stop — into
    ``q_out``, ``v``, ``a``, ``frames``, ``excess``, ``idx``, ``val``. A call costs about 0.05 us
    per array argument, so the layer makes this one instead of several. ``jc``: the packed joint
    constants (:data:`JC_ROWS`); the arguments from ``fk_c`` to ``p_prev`` are the search's
    (``CartesianGuard.cycle_args``), not read without ``cartesian``.

    Returns:
        ``(verdict, clamp code, fraction, changed joints, every direct limit holds exactly at
        q_out)``; the verdict is ``COMMAND_*``, the rest is :func:`clamp_cycle`'s (``-1, 1.0, 0,
        True`` when the command passed: ``v``, ``a`` and ``frames`` are then the command's).
    """
    n = q_cmd.shape[0]
    ctx = _context(mq, mv, ma, jc[4:9], pos_tol, h, fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone,
                   limit, allowance, recovering, p_prev)
    verdict = _judge_command(q_cmd, mq, mv, ma, mem_lo, mem_hi, h, jc, pos_tol, cartesian, caution_fraction, ctx, rows, v, a, joint_ok,
                             stop_ok, excess, frames)
    if verdict >= COMMAND_PASSES:
        return verdict, -1, 1.0, 0, True
    every = np.ones(n, dtype=np.bool_)
    direct_ok, stop = (joint_ok, every) if verdict == COMMAND_BROKEN else (every, stop_ok)
    code, fraction, m, exact = clamp_cycle(q_cmd, direct_ok, stop, mq, mv, ma, mem_lo, mem_hi, h, jc, pos_tol, reject, hint, cartesian,
                                           fk_c, fk_s, fk_k, tool, lin, spheres, boxes, radii, levers, min_distance, cone, limit,
                                           allowance, recovering, p_prev, rows, q_out, v, a, frames, excess, idx, val)
    return verdict, code, fraction, m, exact
