"""Cartesian limits through forward kinematics: keep-in boxes, half-spaces, obstacles, TCP speed, tool cone.

Cartesian limits are not intervals per joint, so the layer evaluates candidate commands — the
clamped command and points between it and the braking step — and keeps the furthest one that
passes. Box, plane, obstacle and cone limits must hold at the candidate **and along the whole
braking path from it**, so a fast approach towards a wall is slowed before the wall, not at it.
The path is cleared with a bound, not by sampling it: joint ``i`` braking through at most ``r_i``
rad moves any point of the arm (TCP, elbow, every point of every link capsule) by at most
``sum_i lever_i r_i`` metres and turns the tool by at most ``sum_i r_i`` rad
(``RobotModel.lever_arms``), for every configuration on the way. A candidate the bound cannot
clear is refused; the braking step is always admissible because its path is the rest of a path
that was cleared before. So, with the kinematic model as given, a TCP or elbow that starts
inside never leaves, a capsule that starts clear of the obstacles never comes closer than
``obstacles.min_distance``, and the tool never leaves its cone. The bound is conservative: an arm
slows down on the way to a wall and reaches it asymptotically.

Every box face and half-space is one linear function of the frame origins, so all of them are a
single matrix product per batch of candidates (precomputed at construction).

An arm that starts outside a Cartesian limit may move only in ways that do not increase how far
outside it is (the *allowance*). While any allowance is left, a candidate the bound cannot clear
is judged at the configuration where the braking law would bring it to rest
(:meth:`CartesianGuard.stop_excess`) — an approximation, used only to bring the arm back in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_kit.robots.kinematics import Kinematics, RobotModel
from vla_kit.safety.checks import tcp_speed, tool_cone_angle
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.geometry import capsule_segments, obstacle_clearance
from vla_kit.safety.records import Check

__all__ = ["CartesianReport", "CartesianGuard", "TCP_SPEED_HEADROOM"]

TCP_SPEED_HEADROOM = 0.02  # share of the TCP speed limit kept free when planning (see CartesianGuard.speed_limit)
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
        envelope: the envelope (its ``cartesian`` and ``obstacles`` sections and link radii).
        model: the robot whose forward kinematics is used.
    """

    def __init__(self, envelope: Envelope, model: RobotModel) -> None:
        params = envelope.cartesian
        self.params = params
        self.model = model
        frames = model.dof + 2
        tcp_i, elbow_i = frames - 1, model.elbow_index
        # Linear margins m = X @ A + b over the flattened frame origins X (m; >= 0 inside).
        cols: list[np.ndarray] = []
        offsets: list[float] = []
        self._groups: dict[Check, slice] = {}

        def face(frame: int, unit: np.ndarray, offset: float) -> None:
            col = np.zeros(frames * 3)
            col[3 * frame: 3 * frame + 3] = unit
            cols.append(col)
            offsets.append(offset)

        for check, box, frame in ((Check.TCP_BOX, params.tcp_box, tcp_i), (Check.ELBOW_BOX, params.elbow_box, elbow_i)):
            if box is None:
                continue
            start = len(cols)
            for k in range(3):
                e = np.eye(3)[k]
                face(frame, e, -box.min[k])
                face(frame, -e, box.max[k])
            self._groups[check] = slice(start, len(cols))
        if params.planes:
            start = len(cols)
            for p in params.planes:
                norm = float(np.linalg.norm(p.normal))
                for frame in (tcp_i, elbow_i):
                    face(frame, np.array(p.normal, dtype=np.float64) / norm, -p.offset / norm)
            self._groups[Check.PLANE] = slice(start, len(cols))
        self._A = np.array(cols).T if cols else None
        self._b = np.array(offsets)
        obst = envelope.obstacles
        self._spheres = None if not obst.spheres else (np.array([s.centre for s in obst.spheres], dtype=np.float64),
                                                       np.array([s.radius for s in obst.spheres], dtype=np.float64))
        self._boxes = None if not obst.boxes else (np.array([b.min for b in obst.boxes], dtype=np.float64),
                                                   np.array([b.max for b in obst.boxes], dtype=np.float64))
        self._obstacles = self._spheres is not None or self._boxes is not None
        self._min_distance = float(obst.min_distance)
        self._radii = envelope.link_radii
        self._cone = None if params.tool_cone_deg is None else float(np.deg2rad(params.tool_cone_deg))
        self.cone = self._cone  # rad, the tool cone (None: off)
        self._levers = model.lever_arms()
        self._pair = np.empty((2, model.dof))  # scratch: a candidate and its look-ahead configuration
        self.pose_checks = self._A is not None or self._obstacles or self._cone is not None
        self.enabled = self.pose_checks or params.tcp_speed_max is not None

    def speed_limit(self, reduced: bool) -> float | None:
        """The TCP speed (m/s) commands are planned to in the current mode: the limit less
        :data:`TCP_SPEED_HEADROOM`; reduced mode falls back to the normal limit.

        The look-ahead holds the speed the joints reach once their acceleration is ramped out,
        but at this configuration; the arm gets there a few cycles later, where the Jacobian
        differs slightly, and a braking step that was admissible can then edge past a limit
        planned to the last digit (hypothesis found 0.800023 m/s against 0.8 with the tool box,
        cone and obstacles on). The headroom absorbs that drift; audits use the limit itself.
        """
        limit = self.params.tcp_speed_max
        if reduced and self.params.tcp_speed_max_reduced is not None:
            limit = self.params.tcp_speed_max_reduced
        return None if limit is None else limit * (1.0 - TCP_SPEED_HEADROOM)

    # ------------------------------------------------------------------ pose checks

    def _margins(self, kin: Kinematics, k: int) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """For the first ``k`` configurations of ``kin``: the linear margins ``(k, F)``, obstacle
        margins ``(k,)`` and cone margins ``(k,)`` (``None`` where the check is off)."""
        frames = kin.frames[:k]
        lin = None
        if self._A is not None:
            lin = frames[..., :3, 3].reshape(k, -1) @ self._A + self._b
        obst = None
        if self._obstacles:
            starts, ends = capsule_segments(Kinematics(frames, kin.elbow_index))
            obst = obstacle_clearance(starts, ends, self._radii, self._spheres, self._boxes) - self._min_distance
        cone = None if self._cone is None else self._cone - tool_cone_angle(frames[..., -1, :3, 2])
        return lin, obst, cone

    def _excess(self, lin: np.ndarray | None, obst: np.ndarray | None, cone: np.ndarray | None) -> dict[Check, np.ndarray]:
        excess: dict[Check, np.ndarray] = {}
        for check, rows in self._groups.items():
            excess[check] = np.maximum(-lin[:, rows].min(axis=-1), 0.0)
        if obst is not None:
            excess[Check.OBSTACLE] = np.maximum(-obst, 0.0)
        if cone is not None:
            excess[Check.TOOL_CONE] = np.maximum(-cone, 0.0)
        return excess

    def pose_excess(self, q: np.ndarray) -> dict[Check, float]:
        """Excess of one configuration ``(n,)`` for each pose check (the allowance of a start outside)."""
        excess = self._excess(*self._margins(self.model.forward(q[None, :]), 1))
        return {c: float(x[0]) for c, x in excess.items()}

    # ------------------------------------------------------------------ candidates

    def check_one(self, q: np.ndarray, q_ahead: np.ndarray | None, travel: np.ndarray, p_prev: np.ndarray, dt: float,
                  limit: float | None) -> tuple[bool, np.ndarray, float]:
        """Fast verdict on one candidate when no allowance is in use.

        Args:
            q: the candidate (rad). q_ahead: ``q + dt * v_ahead`` (see :meth:`evaluate`), or
                ``None`` without a speed limit. travel: bound on each joint's braking travel (rad).
            p_prev: TCP position (m) of the previous command. dt: cycle period (s).
            limit: the TCP speed limit in force (m/s), or ``None``.

        Returns:
            ``(ok, frames, speed)``: the verdict (equal to :meth:`evaluate`'s), the candidate's
            frames ``(dof + 2, 4, 4)`` (TCP last) and its TCP speed from ``p_prev`` (m/s; ``nan``
            without a limit).
        """
        if q_ahead is None:
            kin = self.model.forward(q[None, :])
        else:
            pair = self._pair
            pair[0], pair[1] = q, q_ahead
            kin = self.model.forward(pair)
        ok = True
        if self.pose_checks:
            lin, obst, cone = self._margins(kin, 1)
            if lin is not None or obst is not None:
                margin = np.inf if lin is None else lin.min()
                if obst is not None:
                    margin = min(margin, obst[0])
                ok = bool(travel @ self._levers < margin)
            if ok and cone is not None:
                ok = bool(travel.sum() < cone[0])
        tcp = kin.frames[:, -1, :3, 3]
        speed = np.nan
        if limit is not None:
            speed = float(tcp_speed(tcp[0], p_prev, dt))
            ok = ok and speed <= limit and tcp_speed(tcp[1], tcp[0], dt) <= limit
        return ok, kin.frames[0], speed

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
        lin, obst, cone = self._margins(kin, k)
        excess = self._excess(lin, obst, cone)
        tcp_all = kin.tcp_position
        tcp = tcp_all[:k]
        ok = np.ones(k, dtype=bool)
        for c, x in excess.items():
            ok &= x <= allowance.get(c, 0.0) + _SLACK
        if self.pose_checks:
            margin = np.full(k, np.inf)
            if lin is not None:
                margin = lin.min(axis=-1)
            if obst is not None:
                margin = np.minimum(margin, obst)
            uncleared = reach @ self._levers >= margin
            if cone is not None:
                uncleared |= reach.sum(axis=-1) >= cone
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
        excess = self._excess(*self._margins(self.model.forward(q_stop), q_stop.shape[0]))
        ok = np.ones(q_stop.shape[0], dtype=bool)
        for c, x in excess.items():
            ok &= x <= allowance.get(c, 0.0) + _SLACK
        return ok, excess

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        """TCP position (m) of one configuration."""
        return self.model.forward(q).tcp_position

    def excess_of(self, kin: Kinematics) -> dict[Check, np.ndarray]:
        """Pose-check excess of a batch of configurations ``(K, ...)`` (m or rad; 0 = within); for audits."""
        return self._excess(*self._margins(kin, kin.frames.shape[0]))
