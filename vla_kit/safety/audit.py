"""Audit a recorded joint trajectory against an envelope: every violation, vectorised.

The trajectory is judged the way :class:`~vla_kit.safety.monitor.StreamMonitor` judges a live
stream, with whole-array numpy operations instead of a loop: positions ``p_0 .. p_M``, where
``p_0`` is the start **at rest** (``q0`` when given, else the first sample), and
``v_k = (p_k - p_{k-1}) / dt_k``, ``a_k = (v_k - v_{k-1}) / dt_k``, ``j_k = (a_k - a_{k-1}) / dt_k``
with ``v_0 = a_0 = 0`` — the same float64 operations in the same order, so the audit and the
scalar checks agree bit for bit. There is no tolerance: a value beyond its limit by one ulp is a
violation, and NaN is always one. With Cartesian limits or obstacles in the envelope the poses
come from batched forward kinematics (in blocks, so memory stays bounded).

What each violation reports (``value`` beyond ``limit``):

=============  =========================================  ==================================
type           value                                      limit
=============  =========================================  ==================================
position       joint position (rad)                       the bound it is beyond (rad)
max_step       ``|p_k - p_{k-1}|`` (rad)                  max step at that ``dt`` (rad)
velocity …     ``|v|``, ``|a|``, ``|j|`` (rad/s, /s², /s³)  the joint's limit
tcp_box …      distance outside the box / half-space (m)  0
obstacle       capsule clearance (m), below the limit     ``obstacles.min_distance`` (m)
tool_cone      tool angle from straight down (deg)        the cone (deg)
tcp_speed      TCP speed (m/s)                            ``cartesian.tcp_speed_max`` (m/s)
=============  =========================================  ==================================

``step`` is the row of ``q`` the violation is at; ``joint`` is ``None`` (-1 in arrays) for
whole-arm checks. Reduced mode is not known to a log: TCP speed is held to the normal limit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_kit.errors import InputError
from vla_kit.robots.kinematics import RobotModel
from vla_kit.robots.models import get_robot_model
from vla_kit.safety.cartesian import CartesianGuard
from vla_kit.safety.checks import tcp_speed
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.records import Check
from vla_kit.safety.watchdog import joint_rows

__all__ = ["AUDIT_CHECKS", "AuditReport", "audit_trajectory"]

# Every check an audit can report, in the order rows are sorted within a step.
AUDIT_CHECKS: tuple[Check, ...] = (
    Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK,
    Check.TCP_BOX, Check.ELBOW_BOX, Check.PLANE, Check.OBSTACLE, Check.TOOL_CONE, Check.TCP_SPEED,
)
_CODE = {c: i for i, c in enumerate(AUDIT_CHECKS)}
_BLOCK = 4096  # configurations per forward-kinematics batch (small enough to stay in cache)


@dataclass(frozen=True)
class AuditReport:
    """Every violation found, as columns (one entry per violation, sorted by step then type).

    Attributes:
        samples: rows of the trajectory audited.
        joint_names: the robot's joint names.
        check: ``(V,)`` index into :data:`AUDIT_CHECKS`.
        joint: ``(V,)`` joint index, -1 for whole-arm checks.
        step: ``(V,)`` row of the trajectory.
        value, limit: ``(V,)`` what was measured and the limit it broke (units in the module docstring).
    """

    samples: int
    joint_names: tuple[str, ...]
    check: np.ndarray
    joint: np.ndarray
    step: np.ndarray
    value: np.ndarray
    limit: np.ndarray

    @property
    def total(self) -> int:
        """Number of violations (0: clean)."""
        return int(self.check.shape[0])

    @property
    def clean(self) -> bool:
        """No violation at all."""
        return self.total == 0

    @property
    def counts(self) -> dict[str, int]:
        """Violations per type, in :data:`AUDIT_CHECKS` order (types with none are left out)."""
        counts = np.bincount(self.check, minlength=len(AUDIT_CHECKS)) if self.total else np.zeros(len(AUDIT_CHECKS), int)
        return {c.value: int(n) for c, n in zip(AUDIT_CHECKS, counts) if n}

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The first ``limit`` violations (all when ``None``) as plain dicts."""
        n = self.total if limit is None else min(limit, self.total)
        out = []
        for c, j, s, v, lim in zip(self.check[:n].tolist(), self.joint[:n].tolist(), self.step[:n].tolist(),
                                   self.value[:n].tolist(), self.limit[:n].tolist()):
            out.append({"type": AUDIT_CHECKS[c].value, "joint": None if j < 0 else j,
                        "joint_name": None if j < 0 else self.joint_names[j], "step": s, "value": v, "limit": lim})
        return out

    def as_dict(self, max_records: int | None = None) -> dict[str, Any]:
        """JSON-able summary: ``clean``, ``samples``, ``total``, ``counts`` and the violations
        (the first ``max_records`` of them; ``omitted`` says how many were left out)."""
        rows = self.rows(max_records)
        return {"clean": self.clean, "samples": self.samples, "total": self.total, "counts": self.counts,
                "violations": rows, "omitted": self.total - len(rows)}

    def table(self, max_rows: int = 20) -> str:
        """A printable table: the first ``max_rows`` violations, then the count per type."""
        if self.clean:
            return f"clean: {self.samples} samples, no envelope violation"
        lines = [f"{'step':>8}  {'type':<13} {'joint':<22} {'value':>14} {'limit':>14}"]
        for r in self.rows(max_rows):
            joint = "-" if r["joint"] is None else f"{r['joint']} {r['joint_name']}"
            lines.append(f"{r['step']:>8}  {r['type']:<13} {joint:<22} {r['value']:>14.6g} {r['limit']:>14.6g}")
        if self.total > max_rows:
            lines.append(f"... {self.total - max_rows} more")
        lines.append(f"{self.total} violations in {self.samples} samples: "
                     + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        return "\n".join(lines)


def _intervals(n_rows: int, has_q0: bool, period: float, dt: Any, t: Any) -> np.ndarray:
    """One period per interval between consecutive positions (``n_rows`` intervals with ``q0``, else one fewer)."""
    m = n_rows if has_q0 else n_rows - 1
    if t is not None:
        times = np.asarray(t, dtype=np.float64)
        want = n_rows + 1 if has_q0 else n_rows
        if times.shape != (want,):
            raise InputError("t", f"expected one timestamp per position, shape ({want},), got {times.shape}")
        out = np.diff(times)
        what = "t"
    elif dt is None:
        return np.full(m, period)
    else:
        arr = np.asarray(dt, dtype=np.float64)
        if arr.ndim == 0:
            out, what = np.full(m, float(arr)), "dt"
        elif arr.shape == (m,):
            out, what = arr, "dt"
        elif not has_q0 and arr.shape == (n_rows,):
            out, what = arr[1:], "dt"  # dt[k] is the interval before row k; row 0 has none here
        else:
            raise InputError("dt", f"expected a scalar or shape ({m},) (one period per interval), got {arr.shape}")
    if out.size and not (np.isfinite(out).all() and (out > 0.0).all()):
        raise InputError(what, "periods must be finite and > 0 (timestamps strictly increasing)")
    return out


def audit_trajectory(
    envelope: Envelope,
    q: Any,
    *,
    dt: Any = None,
    t: Any = None,
    q0: Any = None,
    model: RobotModel | None = None,
) -> AuditReport:
    """Every envelope violation of a joint trajectory.

    Args:
        envelope: the limits.
        q: ``(N, dof)`` joint positions (rad), one row per sample.
        dt: period (s): a scalar, or one per interval. Default: the envelope's period.
        t: timestamps (s), one per position (instead of ``dt``).
        q0: ``(dof,)`` start position at rest before the first row (e.g. the measured position a
            filtered stream started from); default: the first row is the start at rest.
        model: the robot (default: the envelope's).

    Returns:
        The :class:`AuditReport`.

    Raises:
        InputError: shapes or periods that do not fit (names the key, the shape got and expected).
    """
    model = get_robot_model(envelope.robot) if model is None else model
    n = model.dof
    rows = joint_rows(q, n, model.name, "q", "joint positions")
    has_q0 = q0 is not None
    if has_q0:
        start = np.asarray(q0, dtype=np.float64)
        if start.shape != (n,):
            raise InputError("q0", f"expected shape ({n},), got {start.shape}")
        if not np.isfinite(start).all():
            raise InputError("q0", "the start position must be finite")
        pos = np.concatenate([start[None, :], rows])
    else:
        pos = rows
    h = _intervals(rows.shape[0], has_q0, envelope.period, dt, t)
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # code, step, joint, value, limit
    offset = 0 if has_q0 else 1  # row of q for interval k (1-based positions) is k - 1 + offset

    def add(check: Check, mask: np.ndarray, value: np.ndarray, limit: np.ndarray, row_of: int) -> None:
        steps, joints = np.nonzero(mask)
        if steps.size:
            parts.append((_CODE[check], steps + row_of, joints, value[steps, joints], np.broadcast_to(limit, mask.shape)[steps, joints]))

    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in a corrupt log is a violation, not a warning
        _joint_checks(envelope, rows, pos, h, offset, add)
    guard = CartesianGuard(envelope, model)
    if guard.enabled:
        with np.errstate(invalid="ignore", over="ignore"):
            _cartesian(envelope, guard, pos, h, has_q0, parts)
    return _report(rows.shape[0], model.joint_names, parts)


def _joint_checks(envelope: Envelope, rows: np.ndarray, pos: np.ndarray, h: np.ndarray, offset: int, add: Any) -> None:
    lim = envelope.limits
    # Positions: every row of q.
    add(Check.POSITION, ~((rows >= lim.q_min) & (rows <= lim.q_max)), rows,
        np.where(rows < lim.q_min, lim.q_min, lim.q_max), 0)
    if h.size:
        hc = h[:, None]
        dq = pos[1:] - pos[:-1]
        v = dq / hc
        a = np.empty_like(v)
        a[0] = v[0] / hc[0]  # (v_1 - 0) / dt: exactly (v - v_prev) / dt with v_prev = 0
        np.subtract(v[1:], v[:-1], out=a[1:])
        a[1:] /= hc[1:]
        j = np.empty_like(a)
        j[0] = a[0] / hc[0]
        np.subtract(a[1:], a[:-1], out=j[1:])
        j[1:] /= hc[1:]
        step = np.where(hc == envelope.period, lim.max_step, lim.max_step * (hc / envelope.period))
        for check, value, limit in ((Check.MAX_STEP, np.abs(dq), step), (Check.VELOCITY, np.abs(v), lim.v_max),
                                    (Check.ACCELERATION, np.abs(a), lim.a_max), (Check.JERK, np.abs(j), lim.j_max)):
            add(check, ~(value <= limit), value, limit, offset)


def _cartesian(envelope: Envelope, guard: CartesianGuard, pos: np.ndarray, h: np.ndarray, has_q0: bool,
               parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
    cart = envelope.cartesian
    first = 1 if has_q0 else 0  # positions before this one are not rows of q
    speed_limit = cart.tcp_speed_max
    tcp_prev = None
    for lo in range(0, pos.shape[0], _BLOCK):
        block = pos[lo:lo + _BLOCK]
        finite = np.isfinite(block).all(axis=1)
        safe = np.where(finite[:, None], block, 0.0)
        kin = guard.model.forward(safe)
        excess = guard.excess_of(kin) if guard.pose_checks else {}
        kin_tcp = kin.tcp_position if speed_limit is not None else None
        idx = np.arange(lo, lo + block.shape[0])
        keep = idx >= first
        for check, x in excess.items():
            bad = (x > 0.0) | ~finite
            if check is Check.OBSTACLE:
                value, limit = envelope.obstacles.min_distance - x, envelope.obstacles.min_distance
            elif check is Check.TOOL_CONE:
                value, limit = np.degrees(x + guard.cone), float(cart.tool_cone_deg)
            else:
                value, limit = x, 0.0
            sel = np.flatnonzero(bad & keep)
            if sel.size:
                value = np.where(finite, value, np.nan)
                parts.append((_CODE[check], idx[sel] - first, np.full(sel.size, -1), value[sel], np.full(sel.size, limit)))
        if kin_tcp is not None:
            tcp = np.where(finite[:, None], kin_tcp, np.nan)
            both = tcp if tcp_prev is None else np.concatenate([tcp_prev[None, :], tcp])
            start = lo if tcp_prev is None else lo - 1
            speed = tcp_speed(both[1:], both[:-1], h[start:start + both.shape[0] - 1])
            bad = ~(speed <= speed_limit)
            sel = np.flatnonzero(bad)
            if sel.size:
                row = start + 1 + sel - first  # position index of the later sample -> row of q
                parts.append((_CODE[Check.TCP_SPEED], row, np.full(sel.size, -1), speed[sel], np.full(sel.size, speed_limit)))
            tcp_prev = tcp[-1]


def _report(samples: int, names: tuple[str, ...], parts: list) -> AuditReport:
    if not parts:
        empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        return AuditReport(samples, names, empty_i.astype(np.int8), empty_i, empty_i, empty_f, empty_f)
    code = np.concatenate([np.full(p[1].shape[0], p[0], dtype=np.int8) for p in parts])
    step = np.concatenate([p[1] for p in parts]).astype(np.int64)
    joint = np.concatenate([p[2] for p in parts]).astype(np.int64)
    value = np.concatenate([p[3] for p in parts]).astype(np.float64)
    limit = np.concatenate([p[4] for p in parts]).astype(np.float64)
    order = np.lexsort((joint, code, step))
    return AuditReport(samples, names, code[order], joint[order], step[order], value[order], limit[order])
