"""The jerk-limited braking law, in discrete time, and where it ends — in closed form.

Per joint the layer's output is a sequence ``q_k`` at period ``h``; backward differences give
``v_k = (q_k - q_{k-1})/h``, ``a_k = (v_k - v_{k-1})/h``, ``j_k = (a_k - a_{k-1})/h``. Choosing the
next acceleration ``alpha`` is choosing the next position ``q + h (v + h alpha)``; the jerk limit
says ``|alpha - a| <= delta`` with ``delta = h J``.

**The law.** ``ramp_dv(alpha)`` is the velocity still gained while an acceleration ``alpha`` is
ramped to zero as fast as the jerk limit allows; ``v_inf = v + ramp_dv(a)`` is where the velocity
ends if we stop accelerating *now*. Its sign says which way the joint is really going (a joint
with a small positive ``v`` but a large negative ``a`` is already going backwards). Mirrored so that ``v_inf >= 0``,
each step takes the most negative ``alpha`` in ``[max(a - delta, -A), a + delta]`` for which
``v + h alpha + ramp_dv(alpha) >= 0`` — brake as hard as possible while a jerk-limited landing at
exactly ``v = a = 0`` is still possible. That is: ramp the deceleration up to ``-A``, hold it,
take one landing step, ramp back to zero. The law is a state feedback, so the law from the next
state is the rest of the law from this one: **a state whose braking trajectory is inside the
limits has a successor (its braking step) whose braking trajectory is inside the limits.** That
is the whole stop-feasibility argument; :func:`braking_extent` computes the trajectory's reach in
O(1) so the layer can test any candidate command against it.

Everything is vectorised and broadcasts over joints (and over candidate batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ramp_dv", "landing_accel", "brake_accel", "BrakingExtent", "braking_extent", "braking_reach_bound", "stopping_bound",
           "continuous_states"]


def ramp_dv(alpha: np.ndarray, h: float, delta: np.ndarray) -> np.ndarray:
    """Velocity change while ``alpha`` is ramped to 0 at ``delta`` per step (steps after this one).

    For ``alpha < 0`` the following accelerations are ``alpha + delta, alpha + 2 delta, ...`` until
    the first one ``>= 0``, which is replaced by 0. Continuous and increasing in ``alpha``.
    """
    mag = np.abs(alpha)
    m = np.maximum(np.ceil(mag / delta) - 1.0, 0.0)
    return np.sign(alpha) * h * (m * mag - delta * m * (m + 1.0) * 0.5)


def _landing_steps(x: np.ndarray) -> np.ndarray:
    """Largest integer ``m >= 0`` with ``m (m + 1) / 2 <= x`` (``x >= 0``)."""
    m = np.floor((np.sqrt(8.0 * x + 1.0) - 1.0) * 0.5)
    m = np.where(m * (m + 1.0) * 0.5 > x, m - 1.0, m)
    m = np.where((m + 1.0) * (m + 2.0) * 0.5 <= x, m + 1.0, m)
    return np.maximum(m, 0.0)


def landing_accel(v: np.ndarray, h: float, delta: np.ndarray) -> np.ndarray:
    """The acceleration ``alpha <= 0`` with ``v + h alpha + ramp_dv(alpha) = 0`` (``v >= 0``).

    Taking it, then ramping to zero at ``delta`` per step, lands exactly on ``v = a = 0``.
    """
    x = np.maximum(v, 0.0) / (h * delta)
    m = _landing_steps(x)
    return -delta * (x + m * (m + 1.0) * 0.5) / (m + 1.0)


def _landing_distance(v: np.ndarray, h: float, delta: np.ndarray) -> np.ndarray:
    """Distance travelled from velocity ``v >= 0`` by the landing step and the ramp that follows."""
    x = np.maximum(v, 0.0) / (h * delta)
    m = _landing_steps(x)
    return h * h * delta * (m * (x + m * (m + 1.0) * 0.5) * 0.5 - m * (m + 1.0) * (2.0 * m + 1.0) / 6.0)


def brake_accel(v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray) -> np.ndarray:
    """The braking law: the next acceleration (rad/s^2) from state ``(v, a)``.

    The next position is ``q + h * (v + h * alpha)``. From rest it returns exactly 0.
    """
    delta = h * j_max
    sign = np.where(v + ramp_dv(a, h, delta) >= 0.0, 1.0, -1.0)
    vs, as_ = sign * v, sign * a
    lo = np.maximum(as_ - delta, -a_max)
    keep_braking = vs + h * lo + ramp_dv(lo, h, delta) >= 0.0
    land = np.clip(landing_accel(vs, h, delta), lo, np.minimum(as_ + delta, a_max))
    return sign * np.where(keep_braking, lo, land)


@dataclass(frozen=True)
class BrakingExtent:
    """Where the braking law takes a joint from a given state.

    Attributes:
        q_stop: position where it comes to rest (rad).
        q_low, q_high: lowest and highest position on the way (rad), conservative by at most a
            few steps of the initial velocity when the joint first moves backwards.
        v_peak: largest speed on the way (rad/s); exact.
        exact: False where the closed form could not confirm its own switching step; treat
            such joints as infeasible.
    """

    q_stop: np.ndarray
    q_low: np.ndarray
    q_high: np.ndarray
    v_peak: np.ndarray
    exact: np.ndarray


def braking_reach_bound(v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cheap upper bounds ``(travel, peak speed)`` of the braking law from ``(v, a)``, either direction.

    Ramp, landing and any backward motion take at most ``(|a| + 2 A)/delta + 4`` steps at no more
    than the peak speed; while holding ``-A`` the speed falls by ``h A`` per step, which sums to at
    most ``peak^2 / (2 A)``.
    """
    delta = h * j_max
    peak = np.maximum(np.abs(v), np.abs(v + ramp_dv(a, h, delta)))
    travel = h * peak * ((np.abs(a) + 2.0 * a_max) / delta + 4.0) + peak * peak / (2.0 * a_max)
    return travel, peak


def stopping_bound(v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper bounds ``(travel, time, peak speed)`` of a stop from ``(v, a)``, for the robot's
    stopping distance and time (ISO/TS 15066 ``S_s``, ``T_s``).

    They hold for the layer's braking law **and** for the time-optimal continuous-time stop
    (Ruckig's) of any motion within ``a_max`` and ``j_max`` through the last three positions sent:
    the layer brakes in backward differences at ``h``, the arm moves in continuous time.
    ``tests/safety/test_braking_ruckig.py`` checks both. One assumption: three equal positions
    sent (``v = a = 0``) are an arm at rest, which stops where it is (a cubic with jerk ``J``
    through three equal samples still moves at ``J h^2 / 3``: 2.5 mrad/s for the Panda at 1 kHz).

    The same form as :func:`braking_reach_bound`, with a peak speed that also covers the
    continuous stop. Such a motion's velocity now is within ``h A / 2`` of ``v`` (the mean over
    the last step) and its acceleration within ``h J`` of ``a`` (a mean over two steps), so it
    gains at most ``a |a| / (2 J) + h A`` more while its acceleration ramps to zero. In backward
    differences the law may instead drop ``a`` by ``h J`` in one step and gains less: where ``h J``
    is large against ``a_max``, the discrete bound alone falls short of the physical stop (0.05
    against 1.2 mrad of joint travel at 100 Hz from ``a = 25``, ``A = 26``, ``J = 3000``).
    """
    delta = h * j_max
    peak = np.maximum(np.maximum(np.abs(v) + 0.5 * h * a_max, np.abs(v + ramp_dv(a, h, delta))),
                      np.abs(v + a * np.abs(a) / (2.0 * j_max)) + 1.5 * h * a_max)
    peak = np.where((v == 0.0) & (a == 0.0), 0.0, peak)  # a joint at rest stops where it is
    ramps = np.where(peak > 0.0, h * ((np.abs(a) + 2.0 * a_max) / delta + 4.0), 0.0)
    return peak * ramps + peak * peak / (2.0 * a_max), ramps + peak / a_max, peak


def continuous_states(v: float, a: float, h: float, a_max: float, j_max: float) -> list[tuple[float, float]]:
    """Continuous-time states ``(velocity, acceleration)`` now, of motions within ``a_max`` and
    ``j_max`` through the last three positions sent, given their backward differences ``(v, a)``:
    the parabola through them (``v + h a / 2``, ``a``) and the corners of where any such motion can
    be (velocity within ``h A / 2`` of ``v``, acceleration within ``h J`` of ``a``). Three equal
    positions are an arm at rest. :func:`stopping_bound` covers a stop from each of them."""
    if v == 0.0 and a == 0.0:
        return [(0.0, 0.0)]
    accs = sorted({a, min(a + h * j_max, a_max), max(a - h * j_max, -a_max)})
    vels = sorted({v + 0.5 * h * a, v - 0.5 * h * a_max, v + 0.5 * h * a_max})
    return [(vc, ac) for vc in vels for ac in accs]


def _ramp_phase(n: np.ndarray, v: np.ndarray, a: np.ndarray, km1: np.ndarray, h: float, delta: np.ndarray, a_max: np.ndarray):
    """Velocity and travel after ``n`` maximal-braking steps: ``a - i delta`` for ``i < k_r`` (``km1 = k_r - 1``),
    then ``-a_max``."""
    n_r = np.maximum(np.minimum(n, km1), 0.0)  # unclamped ramp steps
    n_h = n - n_r  # steps at -a_max (the first may be the clamped end of the ramp)
    t_r = n_r * (n_r + 1.0) * 0.5
    v_r = v + h * (n_r * a - delta * t_r)
    dist = n_r * v + h * (a * t_r - delta * t_r * (n_r + 2.0) / 3.0) + n_h * v_r - h * a_max * n_h * (n_h + 1.0) * 0.5
    return v_r - h * a_max * n_h, h * dist


def _g(n: np.ndarray, v: np.ndarray, a: np.ndarray, km1: np.ndarray, h: float, delta: np.ndarray, a_max: np.ndarray) -> np.ndarray:
    """``v_inf`` after ``n`` maximal-braking steps; the law keeps braking while this is >= 0."""
    n_r = np.maximum(np.minimum(n, km1), 0.0)
    v_n = v + h * (n_r * (a - delta * (n_r + 1.0) * 0.5) - a_max * (n - n_r))
    alpha_n = np.where(n > 0, np.maximum(a - n * delta, -a_max), a)
    return v_n + ramp_dv(alpha_n, h, delta)


_OFFSETS = np.array([-1.0, 0.0, 1.0, 2.0])


def braking_extent(q: np.ndarray, v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray, j_max: np.ndarray) -> BrakingExtent:
    """Closed-form extent of the braking law from ``(q, v, a)``; all arrays broadcast together.

    Args:
        q, v, a: position (rad), velocity (rad/s), acceleration (rad/s^2), by backward differences.
        h: control period (s), > 0.
        a_max, j_max: the acceleration and jerk limits the law uses (> 0).

    Returns:
        :class:`BrakingExtent`.
    """
    q, v, a = (np.asarray(x, dtype=np.float64) for x in (q, v, a))
    if not q.shape == v.shape == a.shape:
        q, v, a = np.broadcast_arrays(q, v, a)
    a_max = np.asarray(a_max, dtype=np.float64)
    delta = h * np.asarray(j_max, dtype=np.float64)
    v_inf = v + ramp_dv(a, h, delta)
    sign = np.where(v_inf >= 0.0, 1.0, -1.0)
    vs, as_ = sign * v, sign * a
    # Ramp indices: alpha_i = max(a - i delta, -a_max); k_r is the first i at -a_max, i0 the first at <= 0.
    k_r = np.maximum(np.ceil((as_ + a_max) / delta), 0.0)
    km1 = k_r - 1.0
    i0 = np.where(as_ > 0.0, np.ceil(as_ / delta), 0.0)
    g_kr, g_i0 = _g(np.stack([k_r, i0]), vs, as_, km1, h, delta, a_max)
    # Crossing while holding -a_max: g falls by h a_max per step.
    n_hold = k_r + np.floor(np.maximum(g_kr, 0.0) / (h * a_max))
    # Crossing on the ramp, between i0 and k_r - 1: g is exactly quadratic in i there.
    c = g_i0 / h - 2.0 * as_ * i0 + delta * i0 * i0
    root = (as_ + np.sqrt(np.maximum(as_ * as_ + delta * c, 0.0))) / delta
    n_ramp = np.where(g_i0 < 0.0, i0 - 1.0, np.minimum(np.maximum(np.floor(root), i0), np.maximum(km1, i0)))
    guess = np.maximum(np.where(g_kr >= 0.0, n_hold, n_ramp), 1.0)
    # The switching step n1 is the last with g >= 0 (g never increases): confirm it among
    # guess - 1 .. guess + 1 (rounding can move the floor by one); flag joints where none fits.
    g = _g(guess + _OFFSETS.reshape((4,) + (1,) * guess.ndim), vs, as_, km1, h, delta, a_max)
    switch = (g[:-1] >= 0.0) & (g[1:] < 0.0)  # switch[k]: n1 = guess - 1 + k
    exact = switch.any(axis=0)
    n1 = np.maximum(guess - 1.0 + np.argmax(switch, axis=0), 0.0)
    v1, dist1 = _ramp_phase(n1, vs, as_, km1, h, delta, a_max)
    travel = dist1 + _landing_distance(v1, h, delta)
    # A joint moving backwards (vs < 0 but v_inf >= 0) does so for fewer than i0 steps.
    q_stop = q + sign * travel
    q_back = q + sign * (h * i0 * np.minimum(vs, 0.0))
    return BrakingExtent(
        q_stop=q_stop,
        q_low=np.minimum(np.minimum(q_stop, q_back), q),
        q_high=np.maximum(np.maximum(q_stop, q_back), q),
        v_peak=np.maximum(np.abs(v), np.abs(v_inf)),
        exact=exact,
    )
