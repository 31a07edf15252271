"""Cartesian limits through forward kinematics: keep-in boxes, half-spaces, TCP speed, tool cone.

Cartesian limits are not intervals per joint, so the layer evaluates candidate commands — the
clamped command and points between it and the braking step — and keeps the furthest one that
passes. Box, plane and cone limits must hold at the candidate **and along the whole braking
path from it**, so a fast approach towards a wall is slowed before the wall, not at it. The path
is cleared with a bound, not by sampling it: joint ``i`` braking through at most ``r_i`` rad
moves the TCP and the elbow by at most ``sum_i lever_i r_i`` metres and turns the tool by at most
``sum_i r_i`` rad (``RobotModel.lever_arms``), for every configuration on the way. A candidate the
bound cannot clear is refused; the braking step is always admissible because its path is the rest
of a path that was cleared before. So, with the kinematic model as given, a TCP or elbow that
starts inside never leaves, and the tool never leaves its cone. The bound is conservative: an
arm slows down on the way to a wall and reaches it asymptotically.

An arm that starts outside a Cartesian limit may move only in ways that do not increase how far
outside it is (the *allowance*). While any allowance is left, a candidate the bound cannot clear
is judged at the configuration where the braking law would bring it to rest
(:meth:`CartesianGuard.stop_excess`) — an approximation, used only to bring the arm back in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_kit.robots.kinematics import Kinematics, RobotModel
from vla_kit.safety.checks import box_depth, tcp_speed, tool_cone_angle
from vla_kit.safety.envelope import CartesianParams
from vla_kit.safety.records import Check

__all__ = ["CartesianReport", "CartesianGuard"]

_SLACK = 1e-12  # m or rad: an equal excess after a round trip through FK still counts as "not worse"


@dataclass(frozen=True)
class CartesianReport:
    """Cartesian evaluation of ``K`` candidates.

    Attributes:
        ok: ``(K,)`` the candidate passes every enabled check (within the allowance).
        excess: per check, ``(K,)`` amount beyond the limit (m, rad or m/s; 0 = within).
        tcp: ``(K, 3)`` TCP positions (m).
        unsure: ``(K,)`` recovering from a start outside, the bound could not clear the braking
            path: judge the candidate at its stop configuration (:meth:`CartesianGuard.stop_excess`).
    """

    ok: np.ndarray
    excess: dict[Check, np.ndarray]
    tcp: np.ndarray
    unsure: np.ndarray


class CartesianGuard:
    """Evaluates the Cartesian part of an envelope on batches of joint configurations.

    Args:
        params: the envelope's ``cartesian`` section.
        model: the robot whose forward kinematics is used.
    """

    def __init__(self, params: CartesianParams, model: RobotModel) -> None:
        self.params = params
        self.model = model
        self._tcp_box = None if params.tcp_box is None else (np.array(params.tcp_box.min), np.array(params.tcp_box.max))
        self._elbow_box = None if params.elbow_box is None else (np.array(params.elbow_box.min), np.array(params.elbow_box.max))
        normals = np.array([p.normal for p in params.planes], dtype=np.float64).reshape(-1, 3)
        offsets = np.array([p.offset for p in params.planes], dtype=np.float64)
        norms = np.linalg.norm(normals, axis=-1)
        # Unit normals and offsets, so a plane's signed distance is one product: p . u - d.
        self._units = (normals / norms[:, None]).T if len(offsets) else None
        self._unit_offsets = offsets / norms if len(offsets) else None
        self._cone = None if params.tool_cone_deg is None else float(np.deg2rad(params.tool_cone_deg))
        self._levers = model.lever_arms()
        self.pose_checks = self._tcp_box is not None or self._elbow_box is not None or len(params.planes) > 0 or self._cone is not None
        self.enabled = self.pose_checks or params.tcp_speed_max is not None

    def speed_limit(self, reduced: bool) -> float | None:
        """TCP speed limit (m/s) in the current mode; reduced mode falls back to the normal limit."""
        if reduced and self.params.tcp_speed_max_reduced is not None:
            return self.params.tcp_speed_max_reduced
        return self.params.tcp_speed_max

    def _pose(self, kin: Kinematics) -> tuple[dict[Check, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Per pose check the excess of each configuration, plus TCP positions, the smallest
        positional margin (m) and the cone margin (rad) left before any limit."""
        tcp, elbow = kin.tcp_position, kin.elbow_position
        shape = tcp.shape[:-1]
        excess: dict[Check, np.ndarray] = {}
        margin: np.ndarray | float = np.inf
        if self._tcp_box is not None:
            depth = box_depth(tcp, *self._tcp_box)  # negative outside: minus the L-inf distance to the box
            excess[Check.TCP_BOX] = np.maximum(-depth, 0.0)
            margin = np.minimum(margin, depth)
        if self._elbow_box is not None:
            depth = box_depth(elbow, *self._elbow_box)
            excess[Check.ELBOW_BOX] = np.maximum(-depth, 0.0)
            margin = np.minimum(margin, depth)
        if self._units is not None:
            signed = np.minimum((tcp @ self._units - self._unit_offsets).min(axis=-1), (elbow @ self._units - self._unit_offsets).min(axis=-1))
            excess[Check.PLANE] = np.maximum(-signed, 0.0)
            margin = np.minimum(margin, signed)
        cone_margin: np.ndarray | float = np.inf
        if self._cone is not None:
            angle = tool_cone_angle(kin.tool_z)
            excess[Check.TOOL_CONE] = np.maximum(angle - self._cone, 0.0)
            cone_margin = self._cone - angle
        return excess, tcp, np.broadcast_to(margin, shape), np.broadcast_to(cone_margin, shape)

    def pose_excess(self, q: np.ndarray) -> dict[Check, float]:
        """Excess of one configuration ``(n,)`` for each pose check (the allowance of a start outside)."""
        excess, _, _, _ = self._pose(self.model.forward(q[None, :]))
        return {c: float(x[0]) for c, x in excess.items()}

    def evaluate(
        self,
        q: np.ndarray,
        p_prev: np.ndarray,
        dt: float,
        *,
        reduced: bool,
        allowance: dict[Check, float],
        reach: np.ndarray,
        v_ahead: np.ndarray | None = None,
    ) -> CartesianReport:
        """Evaluate ``K`` candidate configurations ``q`` ``(K, n)``.

        Args:
            q: candidates (rad).
            p_prev: TCP position (m) of the previous command, for the speed check.
            dt: cycle period (s).
            reduced: reduced mode (lower TCP speed) active.
            allowance: per pose check, the excess already present (0 when inside).
            reach: ``(K, n)`` bound on each joint's braking travel from the candidate (rad).
            v_ahead: ``(K, n)`` joint velocities (rad/s) once the candidate's acceleration has
                been ramped to zero; the TCP speed they give is held to the limit too, because
                the jerk limit cannot stop an acceleration at once.
        """
        limit = self.speed_limit(reduced)
        k = q.shape[0]
        ahead = limit is not None and v_ahead is not None
        kin = self.model.forward(np.concatenate([q, q + dt * v_ahead]) if ahead else q)
        excess, tcp, margin, cone_margin = self._pose(kin)
        excess = {c: x[:k] for c, x in excess.items()}
        margin, cone_margin, tcp_all, tcp = margin[:k], cone_margin[:k], tcp, tcp[:k]
        ok = np.ones(k, dtype=bool)
        for c, x in excess.items():
            ok &= x <= allowance.get(c, 0.0) + _SLACK
        if self.pose_checks:
            uncleared = (reach @ self._levers >= margin) | (reach.sum(axis=-1) >= cone_margin)
            if allowance:  # recovering: the stop configuration decides (see the module docstring)
                unsure = ok & uncleared
            else:
                ok &= ~uncleared
                unsure = np.zeros_like(ok)
        else:
            unsure = np.zeros_like(ok)
        if limit is not None:
            speed = tcp_speed(tcp, p_prev, dt)
            if ahead:
                speed = np.maximum(speed, tcp_speed(tcp_all[k:], tcp, dt))
            excess[Check.TCP_SPEED] = np.maximum(speed - limit, 0.0)
            ok &= excess[Check.TCP_SPEED] <= 0.0
        return CartesianReport(ok=ok, excess=excess, tcp=tcp, unsure=unsure)

    def stop_excess(self, q_stop: np.ndarray, allowance: dict[Check, float]) -> tuple[np.ndarray, dict[Check, np.ndarray]]:
        """Pose checks at stop configurations ``(M, n)``: ``(ok (M,), excess per check)``."""
        excess, _, _, _ = self._pose(self.model.forward(q_stop))
        ok = np.ones(q_stop.shape[0], dtype=bool)
        for c, x in excess.items():
            ok &= x <= allowance.get(c, 0.0) + _SLACK
        return ok, excess

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        """TCP position (m) of one configuration."""
        return self.model.forward(q).tcp_position
