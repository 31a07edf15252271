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

Every box face and half-space is one linear function of a frame origin (a row ``frame, slot,
normal, offset``, precomputed at construction). The checks themselves run compiled, one
candidate at a time (:mod:`vla_kit.safety.cartesian_kernels`): this class holds the envelope's
geometry in the arrays those kernels read, and names their results.

An arm that starts outside a Cartesian limit may move only in ways that do not increase how far
outside it is (the *allowance*). While any allowance is left, a candidate the bound cannot clear
is judged at the configuration where the braking law would bring it to rest — an
approximation, used only to bring the arm back in.
"""

from __future__ import annotations

import math
from functools import partial
from operator import itemgetter

import numpy as np

from vla_kit.robots.kinematics import Kinematics, RobotModel
from vla_kit.safety.cartesian_kernels import SLOTS, judge_batch, pose_excess_batch
from vla_kit.safety.checks import PlanLimits
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.records import Check
from vla_kit.safety.state import Memory

__all__ = ["CartesianGuard", "TCP_SPEED_HEADROOM", "SLOTS"]

TCP_SPEED_HEADROOM = 0.02  # share of the TCP speed limit kept free when planning (see CartesianGuard.speed_limit)
_SLOT = {c: k for k, c in enumerate(SLOTS)}


class CartesianGuard:
    """The Cartesian part of an envelope, ready for the compiled checks.

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
        # Linear margins n . p_frame + offset (m; >= 0 inside), one row per box face and half-space.
        rows: list[list[float]] = []
        for check, box, frame in ((Check.TCP_BOX, params.tcp_box, tcp_i), (Check.ELBOW_BOX, params.elbow_box, elbow_i)):
            if box is None:
                continue
            for k in range(3):
                e = np.eye(3)[k]
                rows.append([frame, _SLOT[check], *e, -box.min[k]])
                rows.append([frame, _SLOT[check], *-e, box.max[k]])
        for p in params.planes:
            norm = float(np.linalg.norm(p.normal))
            for frame in (tcp_i, elbow_i):
                rows.append([frame, _SLOT[Check.PLANE], *(np.array(p.normal, dtype=np.float64) / norm), -p.offset / norm])
        self._lin = _frozen(np.array(rows, dtype=np.float64).reshape(-1, 6))
        obst = envelope.obstacles
        self._spheres = _frozen(np.array([[*s.centre, s.radius] for s in obst.spheres], dtype=np.float64).reshape(-1, 4))
        self._boxes = _frozen(np.array([[*b.min, *b.max] for b in obst.boxes], dtype=np.float64).reshape(-1, 6))
        self._min_distance = float(obst.min_distance)
        self._radii = envelope.link_radii
        self.cone = None if params.tool_cone_deg is None else float(np.deg2rad(params.tool_cone_deg))  # rad (None: off)
        self._cone = math.nan if self.cone is None else self.cone
        self._levers = _frozen(model.lever_arms())
        self._geometry = (model._cos, model._sin, model._const, model.tool, self._lin, self._spheres, self._boxes, self._radii,
                          self._levers, self._min_distance, self._cone)
        self.frame_shape = (frames, 4, 4)
        self._plan: tuple[PlanLimits, np.ndarray] | None = None  # a plan and its limits as rows (q_lo, q_hi, v, a, j)
        self._no_allowance = _frozen(np.zeros(len(SLOTS)))
        self.checks = tuple(c for c, on in zip(SLOTS, (
            params.tcp_box is not None, params.elbow_box is not None, bool(params.planes), self._spheres.size + self._boxes.size > 0,
            self.cone is not None, params.tcp_speed_max is not None)) if on)
        at = [_SLOT[c] for c in self.checks]  # the checks' slots, picked from a row as a tuple
        self.slots = tuple(zip(self.checks, at))  # (check, its slot) in ``checks`` order
        self._pick = itemgetter(*at) if len(at) > 1 else partial(_pick_one, at[0] if at else None)
        self.pose_checks = any(c is not Check.TCP_SPEED for c in self.checks)
        self.enabled = bool(self.checks)
        # cycle_args with every check off (a search with them is never run; the arguments must still type).
        self.off_args = (*self._geometry, math.nan, self._no_allowance, False, _ORIGIN)

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

    def excess_of(self, kin: Kinematics) -> dict[Check, np.ndarray]:
        """Pose-check excess of a batch of configurations ``(K, ...)`` (m or rad; 0 = within); for audits."""
        frames = kin.frames.reshape(-1, *kin.frames.shape[-3:])
        out = np.empty((frames.shape[0], len(SLOTS)))
        pose_excess_batch(frames, self._lin, self._spheres, self._boxes, self._radii, self._min_distance, self._cone, out)
        lead = kin.frames.shape[:-3]
        return {c: out[:, _SLOT[c]].reshape(lead) for c in self.checks if c is not Check.TCP_SPEED}

    def pose_excess(self, q: np.ndarray) -> dict[Check, float]:
        """Excess of one configuration ``(n,)`` for each pose check (the allowance of a start outside)."""
        return {c: float(x[0]) for c, x in self.excess_of(self.model.forward(q[None, :])).items()}

    def tcp_position(self, q: np.ndarray) -> np.ndarray:
        """TCP position (m) of one configuration."""
        return self.model.forward(q).tcp_position

    # ------------------------------------------------------------------ candidates

    def kernel_args(self, mem: Memory, plan: PlanLimits, h: float, reduced: bool) -> tuple:
        """The arguments the compiled judge and search share after the candidates: memory, limits,
        then :meth:`cycle_args`."""
        got = self._plan
        if got is None or got[0] is not plan:
            got = self._plan = (plan, _frozen(np.stack([plan.q_lo, plan.q_hi, plan.v, plan.a, plan.j])))
        return (mem.q, mem.v, mem.a, got[1], plan.pos_tol, h, *self.cycle_args(mem, reduced))

    def cycle_args(self, mem: Memory, reduced: bool) -> tuple:
        """The search's own arguments: kinematics, geometry, the speed limit (NaN: off), the
        allowance (slots), whether one is left, and the previous TCP position."""
        limit = self.speed_limit(reduced)
        allowance = self._no_allowance
        if mem.allowance:
            allowance = np.zeros(len(SLOTS))
            for c, x in mem.allowance.items():
                allowance[_SLOT[c]] = x
        return (*self._geometry, math.nan if limit is None else limit, allowance, bool(mem.allowance),
                mem.tcp if mem.tcp is not None else _ORIGIN)

    def judge(self, cand: np.ndarray, mem: Memory, plan: PlanLimits, h: float, *,
              reduced: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Judge candidate commands ``(K, n)``: each must be one every joint can stop from, with
        every Cartesian check met at it and along its braking path (see the module docstring).

        Returns:
            ``(good (K,), excess (K, len(SLOTS)), path (K, len(SLOTS)), frames)``: ``excess`` at
            each candidate; ``path``: how far beyond a limit braking from a candidate whose pose is
            inside every limit might go, in the slot of the limit it may cross (0 elsewhere);
            ``frames`` ``(dof + 2, 4, 4)`` is the forward kinematics of the first candidate.
        """
        good = np.empty(cand.shape[0], dtype=bool)
        excess = np.empty((cand.shape[0], len(SLOTS)))
        path = np.empty((cand.shape[0], len(SLOTS)))
        frames = np.empty(self.frame_shape)
        judge_batch(cand, *self.kernel_args(mem, plan, h, reduced), good, excess, path, frames)
        return good, excess, path, frames

    def pick(self, excess: np.ndarray) -> list[tuple[float, ...]]:
        """Rows of slot excess ``(R, len(SLOTS))`` as tuples of this envelope's checks' values, in ``checks`` order."""
        return [self._pick(row) for row in excess.tolist()]


def _pick_one(k: int | None, row: list[float]) -> tuple[float, ...]:
    """The one check's value of a slot row as a 1-tuple (none: empty), as ``itemgetter`` gives for several."""
    return () if k is None else (row[k],)


_ORIGIN = np.zeros(3)
_ORIGIN.setflags(write=False)


def _frozen(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x
