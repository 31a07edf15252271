"""Compiled per-joint kernels for the layer's clamping searches (numba, ahead of the first cycle).

A clamped command usually leaves some joint that can no longer brake inside its position limits
from where the clip put it; :func:`~vla_kit.safety.search.furthest_stoppable` then searches, per
such joint, the segment from the braking step to the clipped command for the furthest point from
which the joint still stops in time. In numpy that is one batched closed form of about a hundred
small array operations — a few hundred microseconds per cycle, whatever the batch size. Here the
same closed form runs per joint and per grid point as scalar code, from the furthest grid point
down, and stops at the first feasible one: a few microseconds.

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

__all__ = ["braking_extent_1", "stop_feasible_1", "furthest_stoppable_joints"]

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


_IN = types.Array(types.float64, 1, "A", readonly=True)  # accepts writable and frozen arrays alike


@njit(types.void(types.float64[::1], _IN, _IN, types.Array(types.int64, 1, "A", readonly=True), _IN, _IN, _IN, types.float64, _IN, _IN,
                 _IN, _IN, _IN, types.float64), cache=True)
def furthest_stoppable_joints(out: np.ndarray, q_fb: np.ndarray, q_c: np.ndarray, joints: np.ndarray, mem_q: np.ndarray,
                              mem_v: np.ndarray, mem_a: np.ndarray, h: float, q_lo: np.ndarray, q_hi: np.ndarray, v_lim: np.ndarray,
                              a_max: np.ndarray, j_max: np.ndarray, pos_tol: float) -> None:
    """For each index in ``joints``: ``out[i]`` = the furthest of 32 grid points from ``q_fb[i]`` to
    ``q_c[i]`` from which joint ``i`` can still stop, or ``q_fb[i]`` when none can (as
    :func:`~vla_kit.safety.search.furthest_stoppable`)."""
    for i in joints:
        d = q_c[i] - q_fb[i]
        out[i] = q_fb[i]
        for k in range(_GRID_POINTS - 1, -1, -1):
            cand = q_fb[i] + ((k + 1.0) / _GRID_POINTS) * d
            v = (cand - mem_q[i]) / h
            a = (v - mem_v[i]) / h
            if stop_feasible_1(cand, v, a, h, q_lo[i], q_hi[i], v_lim[i], a_max[i], j_max[i], pos_tol):
                out[i] = cand
                break
