"""Speed-and-separation monitoring (ISO/TS 15066): how close a person may come to the moving arm.

The protective separation distance is

    S_p = S_h + S_r + S_s + C + Z_d + Z_r,   S_h = v_h (T_r + T_s),   S_r = v_r T_r

with ``v_h`` the person's speed (1.6 m/s by default, ISO 13855), ``T_r`` the reaction time,
``T_s`` and ``S_s`` the robot's stopping time and distance, ``v_r`` the robot's speed, ``C`` the
intrusion distance and ``Z_d``, ``Z_r`` the position uncertainties of person and robot.
Here the robot terms are bounds per joint (:func:`vla_kit.safety.braking.stopping_bound`) that
hold for the layer's own braking law and for any continuous-time stop within the acceleration
and jerk limits through the last three positions sent (Ruckig's time-optimal stop included; a
joint whose last three positions are equal is taken to be at rest), carried to Cartesian space by
the lever arms, which bound the speed and travel of *every* point of the arm, not only the TCP:

* ``v_r = sum_i lever_i |v_i|``; ``S_s = sum_i lever_i travel_i``; ``T_s`` = the longest joint stop.

The distance ``d`` is from each person (a point) to the surface of the nearest link capsule
(:mod:`vla_kit.safety.geometry`). Zones, from far to near:

* ``d >= S_p(normal) + caution_distance``: SAFE.
* ``S_p(normal) <= d < S_p(normal) + caution_distance``: CAUTION, nothing changes.
* ``d < S_p(normal)``: WARNING, reduced mode (the TCP speed limit drops to
  ``cartesian.tcp_speed_max_reduced``). ``S_p(normal)`` uses the robot terms at the normal-mode
  TCP speed limit: were the arm to move that fast, a stop could come too late.
* ``d < S_p(now)``: DANGER, a protective stop (the controlled stop, without latching the
  e-stop). It is held until the arm rests **and** ``d >= S_p(reduced)``, so the arm does not
  start and stop again while the person lingers at the boundary.

A non-finite or malformed person position is treated as a person touching the arm.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from vla_kit.robots.kinematics import RobotModel
from vla_kit.safety.envelope import Envelope, SeparationParams
from vla_kit.safety.cartesian_kernels import human_clearance, separation_now
from vla_kit.safety.kernels import robot_terms as _robot_terms
from vla_kit.safety.records import Level

__all__ = ["protective_separation_distance", "RobotTerms", "SeparationVerdict", "SeparationMonitor"]


def protective_separation_distance(
    *,
    human_speed: float,
    reaction_time: float,
    stopping_time: float,
    robot_speed: float,
    stopping_distance: float,
    intrusion_distance: float,
    human_uncertainty: float,
    robot_uncertainty: float,
) -> float:
    """ISO/TS 15066 ``S_p = v_h (T_r + T_s) + v_r T_r + S_s + C + Z_d + Z_r`` (m).

    Args:
        human_speed: ``v_h`` (m/s). reaction_time: ``T_r`` (s). stopping_time: ``T_s`` (s).
        robot_speed: ``v_r`` (m/s). stopping_distance: ``S_s`` (m). intrusion_distance: ``C`` (m).
        human_uncertainty: ``Z_d`` (m). robot_uncertainty: ``Z_r`` (m).
    """
    return (human_speed * (reaction_time + stopping_time) + robot_speed * reaction_time + stopping_distance
            + intrusion_distance + human_uncertainty + robot_uncertainty)


class RobotTerms(NamedTuple):
    """The robot's part of ``S_p``: speed ``v_r`` (m/s), stopping distance ``S_s`` (m), stopping time ``T_s`` (s)."""

    speed: float
    stopping_distance: float
    stopping_time: float


class SeparationVerdict(NamedTuple):
    """One cycle of separation monitoring (an immutable tuple underneath: one is made every cycle).

    Attributes:
        distance: from the nearest person to the nearest capsule surface (m); ``inf`` without people.
        protective: ``S_p`` at the arm's current state (m): closer means a protective stop.
        reduced_zone: ``S_p`` at the normal-mode speed (m): closer means reduced mode.
        release: ``S_p`` at the reduced-mode speed (m): a held stop ends beyond it, at rest.
        level: SAFE, CAUTION, WARNING (reduced mode) or DANGER (protective stop).
        fault: what made the person data untrustworthy (``None`` when it was fine).
        held: a protective stop held from an earlier cycle (the person is beyond ``protective``).
    """

    distance: float
    protective: float
    reduced_zone: float
    release: float
    level: Level
    fault: str | None = None
    held: bool = False

    @property
    def reduce(self) -> bool:
        """Reduced mode is required."""
        return self.level >= Level.WARNING

    @property
    def stop(self) -> bool:
        """A protective stop is required."""
        return self.level >= Level.DANGER

    @property
    def reason(self) -> str:
        """One readable line (formatted on demand: the layer logs zone changes only)."""
        d = self.distance
        if self.fault is not None:
            return f"protective stop: {self.fault}"
        if self.level is Level.DANGER:
            why = "held until the arm rests and the person is beyond the release distance; person" if self.held else "person"
            return f"protective stop: {why} {d:.3f} m from the arm, S_p = {self.protective:.3f} m (release beyond {self.release:.3f} m)"
        if self.level is Level.WARNING:
            return f"reduced speed: person {d:.3f} m from the arm, inside S_p = {self.reduced_zone:.3f} m at normal speed"
        if self.level is Level.CAUTION:
            return f"person {d:.3f} m from the arm, approaching S_p = {self.reduced_zone:.3f} m"
        return "clear" if math.isinf(d) else f"person {d:.3f} m from the arm"


class SeparationMonitor:
    """Evaluates speed-and-separation monitoring for one envelope and robot.

    Args:
        envelope: its ``separation`` section, Cartesian speed limits and link radii are used.
        model: the robot (forward kinematics and lever arms).
    """

    def __init__(self, envelope: Envelope, model: RobotModel) -> None:
        self.params: SeparationParams = envelope.separation
        self.model = model
        self.radii = envelope.link_radii
        self.levers = model.lever_arms()
        lim = envelope.limits
        self._v_max, self._a_max, self._j_max = lim.v_max, lim.a_max, lim.j_max
        full = float(self.levers @ lim.v_max)  # fastest any point of the arm can move (m/s)
        cart = envelope.cartesian
        self.speed_normal = full if cart.tcp_speed_max is None else min(full, cart.tcp_speed_max)
        reduced = cart.tcp_speed_max_reduced if cart.tcp_speed_max_reduced is not None else cart.tcp_speed_max
        self.speed_reduced = full if reduced is None else min(full, reduced)
        self._full = full
        p = self.params  # the person's terms of S_p, in protective_separation_distance's order
        self._person = np.array([p.human_speed, p.reaction_time, p.intrusion_distance, p.human_uncertainty, p.robot_uncertainty])
        self._person.setflags(write=False)
        self._cache: dict[float, tuple[RobotTerms, RobotTerms, float, float]] = {}  # dt -> (normal, reduced, their S_p)

    def distance_bound(self, robot: RobotTerms) -> float:
        """``S_p`` (m) for the given robot terms and this envelope's person terms."""
        p = self.params
        return protective_separation_distance(
            human_speed=p.human_speed, reaction_time=p.reaction_time, stopping_time=robot.stopping_time,
            robot_speed=robot.speed, stopping_distance=robot.stopping_distance, intrusion_distance=p.intrusion_distance,
            human_uncertainty=p.human_uncertainty, robot_uncertainty=p.robot_uncertainty,
        )

    def robot_terms(self, v: np.ndarray, a: np.ndarray, h: float, a_max: np.ndarray | None = None,
                    j_max: np.ndarray | None = None) -> RobotTerms:
        """Robot terms from joint velocity ``v`` (rad/s) and acceleration ``a`` (rad/s^2) at period ``h``
        (compiled: :func:`vla_kit.safety.kernels.robot_terms`).

        ``a_max``, ``j_max``: the limits the braking law uses (default: the envelope's).
        """
        return RobotTerms(*_robot_terms(v, a, h, self._a_max if a_max is None else a_max, self._j_max if j_max is None else j_max,
                                        self.levers))

    def terms_at_speed(self, speed: float, h: float) -> RobotTerms:
        """Robot terms when every point of the arm may move at up to ``speed`` (m/s): joint speeds
        scaled from the joint limits until their lever bound is ``speed``, no acceleration."""
        scale = min(1.0, speed / self._full) if self._full > 0 else 0.0
        v = self._v_max * scale
        terms = self.robot_terms(v, np.zeros_like(v), h)
        return RobotTerms(speed if scale < 1.0 else self._full, terms.stopping_distance, terms.stopping_time)

    def mode_terms(self, h: float) -> tuple[RobotTerms, RobotTerms]:
        """``(normal, reduced)`` robot terms at the two TCP speed limits, at period ``h`` (cached)."""
        return self._modes(h)[:2]

    def _modes(self, h: float) -> tuple[RobotTerms, RobotTerms, float, float]:
        """:meth:`mode_terms` and their two distances ``S_p`` (cached per period)."""
        got = self._cache.get(h)
        if got is None:
            if len(self._cache) > 16:
                self._cache.clear()
            normal, reduced = self.terms_at_speed(self.speed_normal, h), self.terms_at_speed(self.speed_reduced, h)
            got = self._cache[h] = (normal, reduced, self.distance_bound(normal), self.distance_bound(reduced))
        return got

    def measure(self, humans: object, q: np.ndarray, frames: np.ndarray | None = None) -> tuple[float, str | None]:
        """Distance (m) from the nearest person to the arm at ``q``, and a fault description when
        the person data cannot be trusted (then the distance is 0).

        ``frames``: the forward kinematics of ``q`` when the caller has them already.
        """
        pts, fault = _points(humans)
        if fault is not None:
            return 0.0, fault
        d = human_clearance(pts, self.model.forward(q).frames if frames is None else frames, self.radii)
        return (0.0, _NON_FINITE) if d != d else (d, None)

    def stale(self, age: float, timeout: float) -> SeparationVerdict:
        """The verdict when the last person data is ``age`` s old, beyond ``timeout``: a protective stop."""
        return SeparationVerdict(math.nan, math.nan, math.nan, math.nan, Level.DANGER,
                                 fault=f"person data is {age:.3g} s old (timeout {timeout:g} s)")

    def assess(self, humans: object, q: np.ndarray, v: np.ndarray, a: np.ndarray, h: float, *, holding: bool,
               at_rest: bool, a_max: np.ndarray | None = None, j_max: np.ndarray | None = None,
               frames: np.ndarray | None = None) -> SeparationVerdict:
        """The zone of this cycle.

        Args:
            humans: person positions ``(H, 3)`` (m, base frame); may be empty.
            q, v, a: the arm's current (last sent) position, velocity and acceleration.
            h: cycle period (s).
            holding: a protective stop is being held from an earlier cycle.
            at_rest: the arm is at rest.
            a_max, j_max: the limits the braking law uses.
            frames: forward kinematics of ``q``, when known.
        """
        a_max = self._a_max if a_max is None else a_max
        j_max = self._j_max if j_max is None else j_max
        pts, fault = _points(humans)
        if fault is None:  # distance and S_p in one compiled call
            d, now = separation_now(pts, self.model.forward(q).frames if frames is None else frames, self.radii, v, a, h, a_max,
                                    j_max, self.levers, self._person)
            if d != d:
                d, fault = 0.0, _NON_FINITE
        else:
            d, now = 0.0, self.distance_bound(self.robot_terms(v, a, h, a_max, j_max))
        zone, release = self._modes(h)[2:]
        if fault is not None:
            return SeparationVerdict(d, now, zone, release, Level.DANGER, fault=fault)
        if d < now or (holding and not (at_rest and d >= release)):
            return SeparationVerdict(d, now, zone, release, Level.DANGER, held=d >= now)
        if d < zone:
            return SeparationVerdict(d, now, zone, release, Level.WARNING)
        if d < zone + self.params.caution_distance:
            return SeparationVerdict(d, now, zone, release, Level.CAUTION)
        return SeparationVerdict(d, now, zone, release, Level.SAFE)


_NON_FINITE = "non-finite person position"


def _points(humans: object) -> tuple[np.ndarray, None] | tuple[None, str]:
    """Person positions as a float64 ``(H, 3)`` array (one ``(3,)`` point is accepted), or why not.
    A float64 ``(H, 3)`` array is used as it is; finiteness is checked by the compiled distance."""
    pts = humans
    if type(pts) is not np.ndarray or pts.dtype != np.float64 or pts.ndim != 2:
        try:
            pts = np.asarray(humans, dtype=np.float64)
        except (TypeError, ValueError):
            return None, "person positions that are not numbers"
        if pts.ndim == 1 and pts.shape == (3,):
            pts = pts[None, :]
    if pts.ndim != 2 or pts.shape[1] != 3:
        return None, f"person positions of shape {pts.shape}, expected (H, 3)"
    return pts, None
