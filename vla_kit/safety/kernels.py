"""Compiled per-joint kernels for the layer's clamping searches (numba, ahead of the first cycle).

A clamped command usually leaves some joint that can no longer brake inside its position limits
from where the clip put it; :func:`~vla_kit.safety.search.furthest_stoppable` then searches, per
such joint, the segment from the braking step to the clipped command for the furthest point from
which the joint still stops in time. In numpy that is one batched closed form of about a hundred
small array operations — a few hundred microseconds per cycle, whatever the batch size. Here the
same closed form runs per joint and per grid point as scalar code, on at most six grid points
(the top, then bisection): a few microseconds.

**Same numbers, bit for bit.** Every expression is the one in :mod:`vla_kit.safety.braking` and
:mod:`vla_kit.safety.checks`, written in the same order, and numba compiles without fast-math
(no reassociation, no fused multiply-add), so IEEE float64 gives identical results; the numpy
functions stay the reference, and ``tests/safety/test_kernels.py`` holds the two equal on random
and adversarial states. Compiled code is cached next to this file (``cache=True``), so only the
first import after an install pays the compile (a few seconds, once). The search is declared with its one
signature (read-only inputs, which writable arrays convert to), so it is compiled or loaded when this
module is imported, never inside a control cycle, whether the layer's memory arrays are frozen or not.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

__all__ = ["braking_extent_1", "stop_feasible_1", "brake_accel_1", "braking_step", "furthest_stoppable_joints", "blame_rows", "measure_rows",
           "cheap_stop_joints", "interval_rows", "clamp_joints", "robot_terms", "screen_command", "all_finite", "worst_deviation"]

_GRID_POINTS = 32  # the search's grid: fractions (k + 1) / 32 of the way from the braking step


@njit(cache=True)
def _max(x: float, y: float) -> float:
    return x if (x > y or x != x) else y  # np.maximum: equal values (0 and -0) give the second, NaN wins


@njit(cache=True)
def _min(x: float, y: float) -> float:
    return x if (x < y or x != x) else y  # np.minimum


@njit(cache=True)
def _sign(x: float) -> float:
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    return 0.0 if x == 0.0 else x  # as np.sign: +0 for either zero, NaN for NaN


@njit(cache=True)
def _ramp_dv(alpha: float, h: float, delta: float) -> float:
    mag = abs(alpha)
    m = _max(np.ceil(mag / delta) - 1.0, 0.0)
    return _sign(alpha) * h * (m * mag - delta * m * (m + 1.0) * 0.5)


@njit(cache=True)
def _landing_steps(x: float) -> float:
    m = np.floor((np.sqrt(8.0 * x + 1.0) - 1.0) * 0.5)
    if m * (m + 1.0) * 0.5 > x:
        m = m - 1.0
    if (m + 1.0) * (m + 2.0) * 0.5 <= x:
        m = m + 1.0
    return _max(m, 0.0)


@njit(cache=True)
def _landing_distance(v: float, h: float, delta: float) -> float:
    x = _max(v, 0.0) / (h * delta)
    m = _landing_steps(x)
    return h * h * delta * (m * (x + m * (m + 1.0) * 0.5) * 0.5 - m * (m + 1.0) * (2.0 * m + 1.0) / 6.0)


@njit(cache=True)
def _g(n: float, v: float, a: float, km1: float, h: float, delta: float, a_max: float) -> float:
    n_r = _max(_min(n, km1), 0.0)
    v_n = v + h * (n_r * (a - delta * (n_r + 1.0) * 0.5) - a_max * (n - n_r))
    alpha_n = _max(a - n * delta, -a_max) if n > 0 else a
    return v_n + _ramp_dv(alpha_n, h, delta)


@njit(cache=True)
def braking_extent_1(q: float, v: float, a: float, h: float, a_max: float, j_max: float) -> tuple[float, float, float, float, bool]:
    """:func:`~vla_kit.safety.braking.braking_extent` for one joint: ``(q_stop, q_low, q_high, v_peak, exact)``."""
    delta = h * j_max
    v_inf = v + _ramp_dv(a, h, delta)
    sign = 1.0 if v_inf >= 0.0 else -1.0
    vs, as_ = sign * v, sign * a
    k_r = _max(np.ceil((as_ + a_max) / delta), 0.0)
    km1 = k_r - 1.0
    i0 = np.ceil(as_ / delta) if as_ > 0.0 else 0.0
    g_kr = _g(k_r, vs, as_, km1, h, delta, a_max)
    g_i0 = _g(i0, vs, as_, km1, h, delta, a_max)
    n_hold = k_r + np.floor(_max(g_kr, 0.0) / (h * a_max))
    c = g_i0 / h - 2.0 * as_ * i0 + delta * i0 * i0
    root = (as_ + np.sqrt(_max(as_ * as_ + delta * c, 0.0))) / delta
    n_ramp = i0 - 1.0 if g_i0 < 0.0 else _min(_max(np.floor(root), i0), _max(km1, i0))
    guess = _max(n_hold if g_kr >= 0.0 else n_ramp, 1.0)
    # the switching step: the last n with g >= 0, confirmed among guess - 1 .. guess + 1
    exact = False
    first = 0.0
    g_prev = _g(guess - 1.0, vs, as_, km1, h, delta, a_max)
    for k in range(3):
        g_next = _g(guess + float(k), vs, as_, km1, h, delta, a_max)
        if g_prev >= 0.0 and g_next < 0.0:
            exact, first = True, float(k)
            break
        g_prev = g_next
    n1 = _max(guess - 1.0 + first, 0.0)
    # _ramp_phase
    n_r = _max(_min(n1, km1), 0.0)
    n_h = n1 - n_r
    t_r = n_r * (n_r + 1.0) * 0.5
    v_r = vs + h * (n_r * as_ - delta * t_r)
    dist = n_r * vs + h * (as_ * t_r - delta * t_r * (n_r + 2.0) / 3.0) + n_h * v_r - h * a_max * n_h * (n_h + 1.0) * 0.5
    v1, dist1 = v_r - h * a_max * n_h, h * dist
    travel = dist1 + _landing_distance(v1, h, delta)
    q_stop = q + sign * travel
    q_back = q + sign * (h * i0 * _min(vs, 0.0))
    q_low = _min(_min(q_stop, q_back), q)
    q_high = _max(_max(q_stop, q_back), q)
    return q_stop, q_low, q_high, _max(abs(v), abs(v_inf)), exact


@njit(cache=True)
def stop_feasible_1(q: float, v: float, a: float, h: float, q_lo: float, q_hi: float, v_lim: float, a_max: float, j_max: float,
                    pos_tol: float) -> bool:
    """:func:`~vla_kit.safety.checks.stop_feasible` with ``exact=True`` for one joint."""
    tol = pos_tol if (v != 0.0 or a != 0.0) else 0.0
    delta = h * j_max
    peak = _max(abs(v), abs(v + _ramp_dv(a, h, delta)))
    if not (peak <= v_lim or peak <= abs(v)):
        return False
    _, q_low, q_high, _, exact = braking_extent_1(q, v, a, h, a_max, j_max)
    return exact and q_high <= q_hi - tol and q_low >= q_lo + tol


@njit(cache=True)
def brake_accel_1(v: float, a: float, h: float, a_max: float, j_max: float) -> float:
    """:func:`~vla_kit.safety.braking.brake_accel` for one joint: the braking law's next acceleration."""
    delta = h * j_max
    sign = 1.0 if v + _ramp_dv(a, h, delta) >= 0.0 else -1.0
    vs, as_ = sign * v, sign * a
    lo = _max(as_ - delta, -a_max)
    if vs + h * lo + _ramp_dv(lo, h, delta) >= 0.0:
        return sign * lo
    x = _max(vs, 0.0) / (h * delta)
    m = _landing_steps(x)
    land = -delta * (x + m * (m + 1.0) * 0.5) / (m + 1.0)
    return sign * _min(_max(land, lo), _min(as_ + delta, a_max))


_IN = types.Array(types.float64, 1, "A", readonly=True)  # accepts writable and frozen arrays alike


@njit(cache=True)
def _stops_at(cand: float, q_prev: float, v_prev: float, lim: tuple) -> bool:
    """Whether a joint sent to ``cand`` (after ``q_prev`` at ``v_prev``) can still stop inside its limits."""
    h, q_lo, q_hi, v_lim, a_max, j_max, pos_tol = lim
    v = (cand - q_prev) / h
    a = (v - v_prev) / h
    return stop_feasible_1(cand, v, a, h, q_lo, q_hi, v_lim, a_max, j_max, pos_tol)


@njit(types.void(types.float64[::1], _IN, _IN, types.Array(types.int64, 1, "A", readonly=True), _IN, _IN, _IN, types.float64, _IN, _IN,
                 _IN, _IN, _IN, types.float64), cache=True)
def furthest_stoppable_joints(out: np.ndarray, q_fb: np.ndarray, q_c: np.ndarray, joints: np.ndarray, mem_q: np.ndarray,
                              mem_v: np.ndarray, mem_a: np.ndarray, h: float, q_lo: np.ndarray, q_hi: np.ndarray, v_lim: np.ndarray,
                              a_max: np.ndarray, j_max: np.ndarray, pos_tol: float) -> None:
    """For each index in ``joints``: ``out[i]`` = a point of the 32-point grid from ``q_fb[i]`` to
    ``q_c[i]`` from which joint ``i`` can still stop, with the grid point above it refused (or
    ``q_fb[i]`` when every grid point is refused); see :func:`~vla_kit.safety.search.furthest_stoppable`.

    The clipped command itself is judged first (the cheap bound that refused it is conservative),
    then the grid is bisected: six exact judgements at most, where a scan from the top took up to
    32. Feasibility along the segment is monotone in practice (further means faster and closer to
    the limit), and then this is the furthest feasible grid point; where it is not, the point kept
    is still feasible — less progress, never a joint that cannot stop.
    """
    for i in joints:
        d = q_c[i] - q_fb[i]
        lim = (h, q_lo[i], q_hi[i], v_lim[i], a_max[i], j_max[i], pos_tol)
        lo, hi = 0, _GRID_POINTS  # grid index m = 1..32 is the point m/32 of the way; 0 is the braking step
        if _stops_at(q_fb[i] + 1.0 * d, mem_q[i], mem_v[i], lim):
            lo = hi
        while hi - lo > 1:
            m = (lo + hi) // 2
            if _stops_at(q_fb[i] + (m / _GRID_POINTS) * d, mem_q[i], mem_v[i], lim):
                lo = m
            else:
                hi = m
        out[i] = q_fb[i] + (lo / _GRID_POINTS) * d if lo > 0 else q_fb[i]


_RO2 = types.Array(types.float64, 2, "A", readonly=True)


@njit(types.void(_IN, _IN, _IN, types.float64, _IN, _IN, types.float64[::1]), cache=True)
def braking_step(q: np.ndarray, v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray, out: np.ndarray) -> None:
    """``out`` = one step of the braking law from ``(q, v, a)``: ``q + h (v + h alpha)`` per joint."""
    for i in range(q.shape[0]):
        out[i] = q[i] + h * (v[i] + h * brake_accel_1(v[i], a[i], h, a_max[i], j_max[i]))


_FLAGS = types.Array(types.boolean, 1, "A", readonly=True)
BLAME_STOP, BLAME_HELD = 5, 6  # blame_rows' binding "limit" of a joint clamped for its stop, or held back with the whole arm


@njit(types.int64(_IN, _IN, _RO2, _RO2, _RO2, _RO2, _IN, _IN, _IN, _IN, _FLAGS, _FLAGS, types.int64[:, ::1], types.float64[:, ::1]),
      cache=True)
def blame_rows(q_cmd: np.ndarray, q_out: np.ndarray, measures: np.ndarray, bound: np.ndarray, lo4: np.ndarray, hi4: np.ndarray,
               plan_lo: np.ndarray, plan_hi: np.ndarray, mem_lo: np.ndarray, mem_hi: np.ndarray, direct_ok: np.ndarray,
               stop_ok: np.ndarray, idx: np.ndarray, val: np.ndarray) -> int:
    """Who is to blame for each changed joint of a clamped command (run inside
    :func:`~vla_kit.safety.cartesian_kernels.clamp_cycle`; :meth:`JointEnforcer._blame` makes the records).

    ``measures`` rows (of the command) against ``bound`` rows: ``q_lo - q``, ``q - q_hi``, ``|dq|``,
    ``|v|``, ``|a|``, ``|j|``; ``lo4``/``hi4``: the step, velocity, acceleration and jerk intervals;
    ``direct_ok``/``stop_ok``: per joint, whether the command met every direct limit / could stop.
    For the ``m``-th changed joint, column ``m`` of ``idx`` gets ``(joint, k, broken limits as
    bits)`` and of ``val`` ``(commanded, sent, measured value, limit value)``. ``k`` is the binding
    limit of a joint that broke a direct one — 0 position, 1 step, 2 velocity, 3 acceleration,
    4 jerk: the broken limit whose interval lies furthest from the command (the first on ties) —
    else :data:`BLAME_STOP` (it could not have stopped) or :data:`BLAME_HELD` (held back with the
    whole arm; measure and limit are NaN for both). Returns how many joints changed. Rows of
    Python numbers come out of two ``tolist()`` calls: the layer builds one record per joint from
    them without a Python loop.
    """
    m = 0
    for i in range(q_cmd.shape[0]):
        if q_out[i] == q_cmd[i]:
            continue
        q = q_cmd[i]
        idx[0, m] = i
        val[0, m] = q
        val[1, m] = q_out[i]
        if direct_ok[i]:
            idx[1, m] = BLAME_HELD if stop_ok[i] else BLAME_STOP
            idx[2, m] = 0
            val[2, m] = np.nan
            val[3, m] = np.nan
            m += 1
            continue
        bits = 0
        best, k_best = -1.0, 0
        for k in range(5):
            broken = (measures[0, i] > bound[0, i] or measures[1, i] > bound[1, i]) if k == 0 else measures[k + 1, i] > bound[k + 1, i]
            if not broken:
                continue
            bits |= 1 << k
            lo = plan_lo[i] if k == 0 else lo4[k - 1, i]
            hi = plan_hi[i] if k == 0 else hi4[k - 1, i]
            pull = _max(lo - q, 0.0) + _max(q - hi, 0.0)
            if pull > best:
                best, k_best = pull, k
        idx[1, m] = k_best
        idx[2, m] = bits
        if k_best == 0:
            val[2, m] = q
            val[3, m] = mem_lo[i] if q < mem_lo[i] else mem_hi[i]
        else:
            val[2, m] = measures[k_best + 1, i]
            val[3, m] = bound[k_best + 1, i]
        m += 1
    return m


@njit(types.boolean(_IN, _IN, _IN, _IN, _IN, _IN, types.float64, _RO2, types.float64[:, ::1], types.float64[::1], types.float64[::1],
                    types.boolean[::1]), cache=True)
def measure_rows(q: np.ndarray, mem_q: np.ndarray, mem_v: np.ndarray, mem_a: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray, h: float,
                 bound: np.ndarray, rows: np.ndarray, v: np.ndarray, a: np.ndarray, joint_ok: np.ndarray) -> bool:
    """Backward differences of ``q`` into ``v``, ``a``, and the measure ``rows`` (``q_lo - q``,
    ``q - q_hi``, ``|dq|``, ``|v|``, ``|a|``, ``|j|``), per joint whether its rows are within
    ``bound`` (``joint_ok``); whether every row is (see
    :meth:`~vla_kit.safety.enforce.JointEnforcer.measure`: the same operations, bit for bit)."""
    ok = True
    for i in range(q.shape[0]):
        dq = q[i] - mem_q[i]
        vi = dq / h
        ai = (vi - mem_v[i]) / h
        ji = (ai - mem_a[i]) / h
        v[i], a[i] = vi, ai
        rows[0, i] = q_lo[i] - q[i]
        rows[1, i] = q[i] - q_hi[i]
        rows[2, i] = abs(dq)
        rows[3, i] = abs(vi)
        rows[4, i] = abs(ai)
        rows[5, i] = abs(ji)
        joint_ok[i] = True
        for r in range(6):
            if not rows[r, i] <= bound[r, i]:
                joint_ok[i] = ok = False
    return ok


@njit(types.boolean(_IN, _IN, _IN, types.float64, _IN, _IN, _IN, _IN, _IN, types.boolean[::1]), cache=True)
def cheap_stop_joints(q: np.ndarray, v: np.ndarray, a: np.ndarray, h: float, delta: np.ndarray, two_a: np.ndarray, v_lim: np.ndarray,
                      hi_tol: np.ndarray, lo_tol: np.ndarray, ok: np.ndarray) -> bool:
    """The cheap braking bound of :func:`~vla_kit.safety.checks.stop_feasible` per joint into ``ok``;
    whether it clears every joint. ``delta = h J``, ``two_a = 2 A``, ``hi_tol``/``lo_tol``: the
    position limits less ``pos_tol``. A joint at rest stops where it is."""
    every = True
    for i in range(q.shape[0]):
        abs_v, abs_a = abs(v[i]), abs(a[i])
        peak = _max(abs_v, abs(v[i] + _ramp_dv(a[i], h, delta[i])))
        travel = h * peak * ((abs_a + two_a[i]) / delta[i] + 4.0) + peak * peak / two_a[i]
        good = (q[i] + travel <= hi_tol[i] and q[i] - travel >= lo_tol[i]) or (v[i] == 0.0 and a[i] == 0.0)
        good = good and (peak <= v_lim[i] or peak <= abs_v)
        ok[i] = good
        every = every and good
    return every


@njit(types.void(_IN, _IN, _IN, types.float64, _RO2, _IN, _IN, types.float64[:, ::1], types.float64[:, ::1], types.float64[::1],
                 types.float64[::1]), cache=True)
def interval_rows(mem_q: np.ndarray, mem_v: np.ndarray, mem_a: np.ndarray, h: float, widths: np.ndarray, q_lo: np.ndarray,
                  q_hi: np.ndarray, lo4: np.ndarray, hi4: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """The step, velocity, acceleration and jerk intervals of the next position (``lo4``, ``hi4``,
    rows in that order, half-widths ``widths``) and their intersection with ``[q_lo, q_hi]`` (``lo``, ``hi``)."""
    for i in range(mem_q.shape[0]):
        q = mem_q[i]
        lo[i], hi[i] = q_lo[i], q_hi[i]
        for r in range(4):
            c = q if r < 2 else (q + h * mem_v[i] if r == 2 else q + h * (mem_v[i] + h * mem_a[i]))
            lo4[r, i] = c - widths[r, i]
            hi4[r, i] = c + widths[r, i]
            lo[i] = _max(lo[i], lo4[r, i])
            hi[i] = _min(hi[i], hi4[r, i])


CLAMP_EXACT, CLAMP_SEARCHED, CLAMP_REJECTED = 0, 1, 2  # what clamp_joints returns


@njit(types.int64(_IN, _FLAGS, _IN, _IN, _IN, _IN, _IN, types.float64, _RO2, _RO2, types.float64, _RO2, _IN, _IN, _IN, _IN,
                  types.boolean, types.float64[:, ::1], types.float64[:, ::1], types.float64[:, ::1], types.boolean[::1],
                  types.float64[::1], types.float64[::1], types.float64[::1], types.float64[::1]), cache=True)
def clamp_joints(q_cmd: np.ndarray, keep: np.ndarray, mem_q: np.ndarray, mem_v: np.ndarray, mem_a: np.ndarray, mem_lo: np.ndarray,
                 mem_hi: np.ndarray, h: float, widths: np.ndarray, plan: np.ndarray, pos_tol: float, bound: np.ndarray, delta: np.ndarray,
                 two_a: np.ndarray, hi_tol: np.ndarray, lo_tol: np.ndarray, reject: bool, lo4: np.ndarray, hi4: np.ndarray,
                 rows: np.ndarray, ok: np.ndarray, q_fb: np.ndarray, q_out: np.ndarray, v: np.ndarray, a: np.ndarray) -> int:
    """The joint clamp of :meth:`~vla_kit.safety.enforce.JointEnforcer.enforce` (run inside
    :func:`~vla_kit.safety.cartesian_kernels.clamp_cycle`).

    The braking step into ``q_fb``; the step/velocity/acceleration/jerk intervals into ``lo4``,
    ``hi4``; then (unless ``reject``) the command clipped into their overlap with the planning
    position limits — joints flagged in ``keep`` keep their command — its measure ``rows`` and
    differences ``v``, ``a``, the cheap stop bound per joint into ``ok``, and for each joint it
    refuses the furthest stoppable point towards the braking step
    (:func:`furthest_stoppable_joints`). ``plan`` rows: ``q_lo``, ``q_hi``, ``v``, ``a``, ``j``.

    Returns:
        :data:`CLAMP_EXACT`: ``q_out`` is the clip, every direct limit holds exactly and every
        joint can stop by the cheap bound (``v``, ``a`` are its differences);
        :data:`CLAMP_SEARCHED`: ``q_out`` came from the search (``v``, ``a`` not valid: verify it);
        :data:`CLAMP_REJECTED`: ``q_out`` is the braking step.
    """
    n = q_cmd.shape[0]
    plan_lo, plan_hi, plan_v, plan_a, plan_j = plan[0], plan[1], plan[2], plan[3], plan[4]
    braking_step(mem_q, mem_v, mem_a, h, plan_a, plan_j, q_fb)
    lo, hi = np.empty(n), np.empty(n)
    interval_rows(mem_q, mem_v, mem_a, h, widths, plan_lo, plan_hi, lo4, hi4, lo, hi)
    if reject:
        q_out[:] = q_fb
        return CLAMP_REJECTED
    for i in range(n):
        q_out[i] = q_cmd[i] if keep[i] else _max(_min(q_cmd[i], hi[i]), lo[i])
    exact = measure_rows(q_out, mem_q, mem_v, mem_a, mem_lo, mem_hi, h, bound, rows, v, a, np.empty(n, dtype=np.bool_))
    if cheap_stop_joints(q_out, v, a, h, delta, two_a, plan_v, hi_tol, lo_tol, ok):
        return CLAMP_EXACT if exact else CLAMP_SEARCHED
    refused = np.flatnonzero(~ok)
    q_c = q_out.copy()  # the grid ends at the clip itself
    furthest_stoppable_joints(q_out, q_fb, q_c, refused, mem_q, mem_v, mem_a, h, plan_lo, plan_hi, plan_v, plan_a, plan_j, pos_tol)
    return CLAMP_SEARCHED


@njit(types.UniTuple(types.float64, 3)(_IN, _IN, types.float64, _IN, _IN, _IN), cache=True)
def robot_terms(v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray,
                levers: np.ndarray) -> tuple[float, float, float]:
    """The robot's part of the ISO/TS 15066 separation distance from joint velocity ``v`` and
    acceleration ``a``: ``(v_r, S_s, T_s)`` = (lever-weighted speed, lever-weighted stopping
    travel bound, the longest joint stop), with the bounds of
    :func:`~vla_kit.safety.braking.stopping_bound`, which hold for the layer's braking law and for
    a continuous-time jerk-limited stop (see :mod:`vla_kit.safety.separation`)."""
    speed = 0.0
    distance = 0.0
    time = 0.0
    for i in range(v.shape[0]):
        if v[i] == 0.0 and a[i] == 0.0:
            continue  # a joint at rest stops where it is
        delta = h * j_max[i]
        peak = _max(_max(abs(v[i]) + 0.5 * h * a_max[i], abs(v[i] + _ramp_dv(a[i], h, delta))),
                    abs(v[i] + a[i] * abs(a[i]) / (2.0 * j_max[i])) + 1.5 * h * a_max[i])
        ramps = h * ((abs(a[i]) + 2.0 * a_max[i]) / delta + 4.0)
        speed += levers[i] * abs(v[i])
        distance += levers[i] * (peak * ramps + peak * peak / (2.0 * a_max[i]))
        time = _max(time, ramps + peak / a_max[i])
    return speed, distance, time


SCREEN_OK, SCREEN_NON_FINITE, SCREEN_JUMP = 0, 1, 2  # what screen_command returns


@njit(types.boolean(_IN), cache=True)
def all_finite(q: np.ndarray) -> bool:
    """Whether every value of ``q`` is finite (a measured state is checked every cycle)."""
    for i in range(q.shape[0]):
        if not abs(q[i]) < np.inf:  # NaN fails every comparison
            return False
    return True


@njit(types.int64(_IN, _IN, _IN, types.boolean, _IN, types.boolean), cache=True)
def screen_command(q_cmd: np.ndarray, mem_q: np.ndarray, previous: np.ndarray, has_previous: bool, absurd: np.ndarray,
                   check_absurd: bool) -> int:
    """The first look at a command (:func:`~vla_kit.safety.watchdog.non_finite_or_absurd`):
    :data:`SCREEN_NON_FINITE` when a joint target is NaN or infinite; :data:`SCREEN_JUMP` when
    (``check_absurd``) some joint is further than ``absurd`` from the last position sent **and**
    (``has_previous``) from the previous command; :data:`SCREEN_OK` otherwise."""
    if not all_finite(q_cmd):
        return SCREEN_NON_FINITE
    if check_absurd:
        for i in range(q_cmd.shape[0]):
            if abs(q_cmd[i] - mem_q[i]) > absurd[i] and (not has_previous or abs(q_cmd[i] - previous[i]) > absurd[i]):
                return SCREEN_JUMP
    return SCREEN_OK


@njit(types.int64(_IN, _IN, types.float64), cache=True)
def worst_deviation(measured: np.ndarray, mem_q: np.ndarray, limit: float) -> int:
    """The tracking-error watchdog: the joint whose measured position is furthest from the last
    position sent (the first on ties, as ``argmax``), when that is beyond ``limit`` (rad); -1 otherwise."""
    worst, at = limit, -1
    for i in range(measured.shape[0]):
        e = abs(measured[i] - mem_q[i])
        if e > worst:
            worst, at = e, i
    return at
