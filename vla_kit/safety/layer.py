"""The safety layer: the last word between a policy's joint targets and the robot.

``SafetyLayer(envelope, robot_model).filter(command, state, dt)`` returns a :class:`Decision`.
What it guarantees, at a fixed ``dt`` and from rest at the first measured state:

* the sent positions satisfy the envelope's position, max-step, velocity, acceleration and jerk
  limits **by backward differences at dt**, bit for bit (every output is re-checked exactly);
* after every cycle a jerk-limited stop inside the position limits is still possible, and the
  layer's own controlled stop is that stop (:mod:`vla_kit.safety.braking`);
* with Cartesian limits on, a TCP or elbow that starts inside its box and half-spaces never
  leaves them, braking included, and the tool stays in its cone (given the kinematic model;
  :mod:`vla_kit.safety.cartesian`); the TCP speed limit is met as fast as the joint limits allow;
* a command that is in limits — every joint limit, a feasible stop from it, every Cartesian
  check — is sent unchanged (same float64 bits);
* NaN/inf, absurd steps, a bad ``dt`` and the software e-stop latch the e-stop in the same
  cycle; stale commands and lost state reads brake without latching. Interventions are logged.

If ``dt`` varies from cycle to cycle the stop certificate of the previous cycle may not hold at
the new ``dt``; positions are still kept inside their limits and any rate limit that cannot be
met is reported (``Check.INFEASIBLE``, level DANGER) rather than hidden.

Everything the layer remembers is explicit: :attr:`SafetyLayer.memory` (last sent position,
velocity, acceleration, effective limits), the e-stop latch, the missed-read counter and the log.
"""

from __future__ import annotations

import math
from collections import deque
from functools import reduce

import numpy as np

from vla_kit.errors import InputError, SafetyError
from vla_kit.robots.kinematics import RobotModel
from vla_kit.safety.braking import brake_accel, braking_extent
from vla_kit.safety.cartesian import CartesianGuard
from vla_kit.safety.checks import Interval, PlanLimits, backward_differences, joint_intervals, plan_limits, step_limit, stop_feasible
from vla_kit.safety.envelope import Envelope, OnViolation
from vla_kit.safety.records import Check, Decision, Level, Violation
from vla_kit.safety.search import cartesian_verdict, furthest_cartesian, furthest_stoppable
from vla_kit.safety.state import JointCommand, Memory, RobotState

__all__ = ["SafetyLayer"]

_DIRECT = (Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK)
_NAMES = tuple(c.value for c in _DIRECT)
_UNITS = ("rad", "rad", "rad/s", "rad/s^2", "rad/s^3")


def _frozen(x: np.ndarray) -> np.ndarray:
    x.setflags(write=False)
    return x


class SafetyLayer:
    """Filters joint-position commands through a safety envelope.

    Args:
        envelope: the validated limits (:class:`~vla_kit.safety.envelope.Envelope`).
        robot_model: the robot the envelope was written for.

    Raises:
        SafetyError: the envelope names a different robot than ``robot_model``.
    """

    def __init__(self, envelope: Envelope, robot_model: RobotModel) -> None:
        if envelope.robot != robot_model.name or len(envelope.limits.names) != robot_model.dof:
            raise SafetyError(f"the envelope is for robot {envelope.robot!r}, the model is {robot_model.name!r}")
        self.envelope = envelope
        self.model = robot_model
        self.limits = envelope.limits
        self.cartesian = CartesianGuard(envelope.cartesian, robot_model)
        self.cycle = 0  # filter() calls so far
        self.missed_reads = 0  # consecutive invalid state reads
        self.reduced = False  # reduced mode (lower TCP speed)
        self._memory: Memory | None = None
        self._estop: Violation | None = None  # the record that latched the e-stop
        self._resync = False  # restart from rest at the measured state on the next cycle
        self._plan_key: tuple | None = None
        self._plan: PlanLimits | None = None
        self._step = self.limits.max_step  # max step (rad) at the current cycle's dt
        self._log: deque[Violation] = deque(maxlen=envelope.log_capacity)
        self._held: set[Check] = set()  # checks of the last stop-at-rest cycle: not logged again
        f = envelope.caution_fraction
        self._caution_v, self._caution_a = f * self.limits.v_max, f * self.limits.a_max

    # ------------------------------------------------------------------ explicit state

    @property
    def memory(self) -> Memory | None:
        """What the layer remembers of the last cycle (``None`` before the first one)."""
        return self._memory

    @property
    def estop_latched(self) -> bool:
        """Whether the e-stop is latched."""
        return self._estop is not None

    @property
    def log(self) -> list[Violation]:
        """Logged interventions, oldest first (at most ``envelope.log_capacity``)."""
        return list(self._log)

    def estop(self, reason: str = "software e-stop") -> None:
        """Latch the e-stop now; the next :meth:`filter` runs the controlled stop."""
        self._latch(Check.SOFTWARE_ESTOP, reason, None)

    def reset_estop(self) -> None:
        """Clear the e-stop latch; the next cycle restarts from rest at the measured state.

        Raises:
            SafetyError: the arm is still braking (the stop must finish first).
        """
        if self._memory is not None and not self._memory.at_rest:
            raise SafetyError("cannot reset the e-stop while the arm is still braking; keep calling filter() until it rests")
        self._estop = None
        self._resync = True

    def set_reduced(self, on: bool) -> None:
        """Switch reduced mode (the lower TCP speed limit) on or off."""
        self.reduced = bool(on)

    # ------------------------------------------------------------------ the cycle

    def filter(self, command: JointCommand | np.ndarray, state: RobotState | None, dt: float) -> Decision:
        """Turn a command into what may be sent this cycle.

        Args:
            command: a :class:`JointCommand` or a bare array of joint targets (rad).
            state: this cycle's measurement (``None`` or ``valid=False``: a missed read).
            dt: time since the previous cycle (s).

        Returns:
            The :class:`Decision`; send ``decision.command_sent``.

        Raises:
            InputError: the command or the state has the wrong shape (the e-stop is latched first).
            SafetyError: there has never been a valid state to start from.
        """
        self.cycle += 1
        recs: list[Violation] = []
        cmd = command if isinstance(command, JointCommand) else JointCommand(q=command)
        q_cmd = self._as_joints(cmd.q, "command.q")
        measured = self._read_state(state, recs)
        if self._memory is None or self._resync:
            if measured is None:
                raise SafetyError("no valid robot state yet: the safety layer needs one to start from")
            self._memory, self._resync, self._held = self._start(measured, recs), False, set()
        mem = self._memory
        h, plan = self._period(dt, mem, recs)
        self._check_command(cmd, q_cmd, mem, recs)
        stops = self._watchdog(cmd, state, measured, mem, h, recs)
        diffs = tcp = None
        if self._estop is not None or stops:
            if self._estop is not None and not any(r.level is Level.EMERGENCY for r in recs):
                est = self._estop
                recs.append(self._violation(est.check, Level.EMERGENCY, None, math.nan, math.nan,
                                            f"latched since cycle {est.cycle} ({est.reason}): controlled stop"))
            q_out = self._verify(self._brake(mem, plan, h), mem, plan, h, recs)
            level = Level.EMERGENCY if self._estop is not None else Level.DANGER
        elif not self.envelope.enabled:
            q_out, level = q_cmd, Level.CAUTION
        else:
            q_out, level, diffs, tcp = self._enforce(q_cmd, mem, plan, h, recs)
            if q_out is not q_cmd:
                q_out = self._verify(q_out, mem, plan, h, recs)
        stopping = self._estop is not None or bool(stops)
        g_out, e_out = (mem.gripper, mem.gripper_effort) if stopping else self._gripper(cmd, recs)
        level = max([level, *(r.level for r in recs)])
        self._commit(q_out, mem, h, g_out, e_out, diffs, tcp)
        self._record(recs, stopping)
        intervened = stopping or q_out is not q_cmd or any(r.level >= Level.WARNING for r in recs)
        return Decision(
            command_sent=_frozen(q_out.copy()) if q_out is q_cmd else _frozen(q_out),
            level=Level(level),
            violations=tuple(recs),
            intervened=intervened,
            gripper_sent=g_out,
            gripper_effort_sent=e_out,
            estop_latched=self._estop is not None,
            reduced=self.reduced,
        )

    # ------------------------------------------------------------------ inputs, faults, watchdog

    def _as_joints(self, q: object, what: str) -> np.ndarray:
        try:
            arr = np.asarray(q, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != (self.model.dof,):
            self._latch(Check.NON_FINITE, f"malformed {what}", None)
            got = "values that are not numbers" if arr is None else f"shape {arr.shape}"
            raise InputError(what, f"expected {self.model.dof} joint values for {self.model.name!r}, got {got}")
        return arr

    def _read_state(self, state: RobotState | None, recs: list[Violation]) -> np.ndarray | None:
        if state is None or not state.valid or state.q is None:
            self.missed_reads += 1
            return None
        q = self._as_joints(state.q, "state.q")
        if not np.isfinite(q).all():
            self.missed_reads += 1
            recs.append(self._violation(Check.STATE_LOST, Level.CAUTION, None, math.nan, math.nan, "non-finite measured state ignored"))
            return None
        self.missed_reads = 0
        return q

    def _start(self, measured: np.ndarray, recs: list[Violation]) -> Memory:
        """Memory at rest at the measured state; limits widened to include a start outside them."""
        lim = self.limits
        q = measured.copy()
        q_lo, q_hi = np.minimum(lim.q_min, q), np.maximum(lim.q_max, q)
        for i in np.flatnonzero((q_lo < lim.q_min) | (q_hi > lim.q_max)):
            recs.append(self._violation(Check.POSITION, Level.WARNING, int(i), q[i], q[i],
                                        "started outside the envelope: only motion back inside is allowed"))
        tcp, allowance = None, {}
        if self.cartesian.enabled:
            tcp = self.cartesian.tcp_position(q)
            allowance = {c: x for c, x in self.cartesian.pose_excess(q).items() if x > 0.0}
            for c, x in allowance.items():
                recs.append(self._violation(c, Level.WARNING, None, x, x, "started outside this Cartesian limit: it may only shrink"))
        return Memory(q=_frozen(q), v=_frozen(np.zeros_like(q)), a=_frozen(np.zeros_like(q)), q_lo=_frozen(q_lo),
                      q_hi=_frozen(q_hi), tcp=tcp, allowance=allowance)

    def _period(self, dt: float, mem: Memory, recs: list[Violation]) -> tuple[float, PlanLimits]:
        nominal = self.envelope.period
        valid = isinstance(dt, (int, float, np.floating)) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0.0
        h = float(dt) if valid else nominal
        if not valid:
            self._latch(Check.INVALID_DT, f"dt = {dt!r} is not a finite positive period; braking at the nominal {nominal:g} s", recs)
        elif h > nominal * (1.0 + self.envelope.dt_tolerance):
            recs.append(self._violation(Check.CYCLE_OVERRUN, Level.CAUTION, None, h, nominal, f"cycle took {h:.6g} s, nominal {nominal:.6g} s"))
        plan = self._plan_for(h, mem)
        if plan is None:
            self._latch(Check.INVALID_DT, f"dt = {h!r} is too short to honour the limits in float64", recs)
            h = nominal
            plan = self._plan_for(h, mem)
        if plan is None:
            raise SafetyError(f"the envelope's limits cannot be planned at its own period {nominal!r} s")
        return h, plan

    def _plan_for(self, h: float, mem: Memory) -> PlanLimits | None:
        key = (h, mem.q_lo, mem.q_hi)
        if self._plan_key is None or key[0] != self._plan_key[0] or key[1] is not self._plan_key[1] or key[2] is not self._plan_key[2]:
            self._plan_key, self._plan = key, plan_limits(self.limits, h, self.envelope.period, mem.q_lo, mem.q_hi)
            self._step = step_limit(self.limits, h, self.envelope.period)
        return self._plan

    def _check_command(self, cmd: JointCommand, q_cmd: np.ndarray, mem: Memory, recs: list[Violation]) -> None:
        """Latch the e-stop for a non-finite command or an absurdly large step."""
        grip = (cmd.gripper, cmd.gripper_effort)
        if not (np.isfinite(q_cmd).all() and all(g is None or math.isfinite(g) for g in grip)):
            self._latch(Check.NON_FINITE, f"non-finite command {q_cmd.tolist()}, gripper {grip}", recs)
        elif self.envelope.enabled and self._estop is None:
            with np.errstate(over="ignore"):  # a finite 1e308 command is absurd, not an error
                ratio = np.abs(q_cmd - mem.q) / self.limits.max_step
            i = int(np.argmax(ratio))
            if ratio[i] > self.envelope.joints.absurd_step_factor:
                self._latch(Check.ABSURD_STEP, f"joint {i} asked for {ratio[i]:.3g}x its max step "
                            f"(absurd above {self.envelope.joints.absurd_step_factor:g}x)", recs)

    def _watchdog(self, cmd: JointCommand, state: RobotState | None, measured: np.ndarray | None, mem: Memory, h: float,
                  recs: list[Violation]) -> list[Check]:
        """Faults that brake without latching; returns the checks that demand a stop this cycle."""
        wd = self.envelope.watchdog
        stops: list[Check] = []
        if self.missed_reads >= wd.max_missed_state_reads:
            stops.append(Check.STATE_LOST)
            recs.append(self._violation(Check.STATE_LOST, Level.DANGER, None, self.missed_reads, wd.max_missed_state_reads,
                                        f"{self.missed_reads} consecutive state reads missed: controlled stop"))
        if h > wd.command_timeout:
            stops.append(Check.CYCLE_OVERRUN)
            recs.append(self._violation(Check.CYCLE_OVERRUN, Level.DANGER, None, h, wd.command_timeout,
                                        f"a {h:.6g} s cycle is longer than the command timeout: controlled stop"))
        now = None if state is None else state.stamp
        if cmd.stamp is not None and now is not None:
            age = float(now) - float(cmd.stamp)
            if not math.isfinite(age) or abs(age) > wd.command_timeout:
                stops.append(Check.COMMAND_TIMEOUT)
                recs.append(self._violation(Check.COMMAND_TIMEOUT, Level.DANGER, None, age, wd.command_timeout,
                                            f"command is {age:.6g} s old (limit {wd.command_timeout:g} s): controlled stop"))
        if measured is not None and wd.max_tracking_error is not None:
            err = np.abs(measured - mem.q)
            i = int(np.argmax(err))
            if err[i] > wd.max_tracking_error:
                recs.append(self._violation(Check.TRACKING_ERROR, Level.WARNING, i, measured[i], mem.q[i],
                                            f"measured {err[i]:.6g} rad away from the last command"))
        return stops

    # ------------------------------------------------------------------ limits

    def _brake(self, mem: Memory, plan: PlanLimits, h: float) -> np.ndarray:
        """One step of the braking law: the controlled stop, and the always-feasible fallback."""
        return mem.q + h * (mem.v + h * brake_accel(mem.v, mem.a, h, plan.a, plan.j))

    def _in_limits(self, q: np.ndarray, v: np.ndarray, a: np.ndarray, j: np.ndarray, mem: Memory) -> np.ndarray:
        """Per joint: every direct limit holds exactly (the same test a monitor would run)."""
        lim = self.limits
        return ((q >= mem.q_lo) & (q <= mem.q_hi) & (np.abs(q - mem.q) <= self._step)
                & (np.abs(v) <= lim.v_max) & (np.abs(a) <= lim.a_max) & (np.abs(j) <= lim.j_max))

    def _enforce(self, q_cmd: np.ndarray, mem: Memory, plan: PlanLimits, h: float, recs: list[Violation]):
        """Pass an in-limit command through untouched; clamp or reject anything else."""
        v, a, j = backward_differences(q_cmd, mem.q, mem.v, mem.a, h)
        direct_ok = self._in_limits(q_cmd, v, a, j, mem)
        stop_ok = np.ones_like(direct_ok)
        cart, cart_checks = self.cartesian, []
        if direct_ok.all():
            stop_ok, travel, _ = stop_feasible(q_cmd, v, a, plan, h)
            if stop_ok.all():
                if not cart.enabled:
                    return q_cmd, self._pass_level(v, a, None, h, mem), (v, a), None
                good, rep = cartesian_verdict(cart, q_cmd[None, :], v[None, :], a[None, :], travel[None, :], mem, plan, h,
                                              reduced=self.reduced)
                if good[0]:
                    return q_cmd, self._pass_level(v, a, rep.tcp[0], h, mem), (v, a), rep.tcp[0]
                cart_checks = [c for c, x in rep.excess.items() if x[0] > 0.0] or [Check.STOP_DISTANCE]
        q_fb = self._brake(mem, plan, h)
        ints = joint_intervals(mem.q, mem.v, mem.a, plan, h)
        if self.envelope.on_violation is OnViolation.REJECT:
            q_out = q_fb
        else:
            box = reduce(Interval.__and__, ints.values())
            q_c = np.where(direct_ok & stop_ok, q_cmd, box.clip(q_cmd))
            q_out = furthest_stoppable(q_fb, q_c, mem, plan, h)
            if cart.enabled:
                q_out, cart_checks = self._cartesian_clamp(q_fb, q_out, mem, plan, h, recs)
        self._blame(q_cmd, q_out, (v, a, j), direct_ok, stop_ok, cart_checks, ints, mem, recs)
        return q_out, Level.WARNING, None, None

    def _cartesian_clamp(self, q_fb: np.ndarray, q_j: np.ndarray, mem: Memory, plan: PlanLimits, h: float,
                         recs: list[Violation]) -> tuple[np.ndarray, list[Check]]:
        """Hold the joint-clamped command back towards the braking step until the Cartesian checks pass."""
        out = furthest_cartesian(self.cartesian, q_fb, q_j, mem, plan, h, reduced=self.reduced)
        for c in out.failing:
            left = out.excess_sent.get(c, 0.0)
            stuck = c is not Check.TCP_SPEED and left > mem.allowance.get(c, 0.0)  # even braking cannot fix it
            recs.append(self._violation(c, Level.DANGER if stuck else Level.WARNING, None, out.excess_target.get(c, 0.0), left,
                                        f"{c.value}: held at {out.fraction:.4f} of the way from the braking step to the clamped command"))
        return out.q, out.failing

    def _verify(self, q_out: np.ndarray, mem: Memory, plan: PlanLimits, h: float, recs: list[Violation]) -> np.ndarray:
        """Exact re-check of what is about to be sent; fall back to braking; as a last resort keep position."""
        if self._in_limits(q_out, *backward_differences(q_out, mem.q, mem.v, mem.a, h), mem).all():
            return q_out
        q_fb = self._brake(mem, plan, h)
        if q_fb is not q_out and self._in_limits(q_fb, *backward_differences(q_fb, mem.q, mem.v, mem.a, h), mem).all():
            recs.append(self._violation(Check.INFEASIBLE, Level.WARNING, None, math.nan, math.nan, "numerical fallback to the braking step"))
            return q_fb
        q_last = np.clip(q_fb, mem.q_lo, mem.q_hi)
        ok = self._in_limits(q_last, *backward_differences(q_last, mem.q, mem.v, mem.a, h), mem)
        recs.append(self._violation(Check.INFEASIBLE, Level.DANGER, None, math.nan, math.nan,
                                    f"no command meets every limit at dt={h:.6g} s (did dt change mid-motion?); position kept "
                                    f"inside its limits, joints {np.flatnonzero(~ok).tolist()} exceed a rate limit"))
        return q_last

    def _gripper(self, cmd: JointCommand, recs: list[Violation]) -> tuple[float | None, float | None]:
        g, e = cmd.gripper, cmd.gripper_effort
        if g is not None:
            g_safe = min(max(float(g), 0.0), 1.0)
            if g_safe != g:
                recs.append(self._violation(Check.GRIPPER, Level.WARNING, None, float(g), g_safe, "gripper target outside [0, 1]"))
            g = g_safe
        cap = self.envelope.gripper.max_effort
        if e is not None:
            e_safe = min(max(float(e), 0.0), math.inf if cap is None else cap)
            if e_safe != e:
                recs.append(self._violation(Check.GRIPPER_EFFORT, Level.WARNING, None, float(e), e_safe, f"grasp force outside [0, {cap}] N"))
            e = e_safe
        return g, e

    # ------------------------------------------------------------------ bookkeeping

    def _pass_level(self, v: np.ndarray, a: np.ndarray, tcp: np.ndarray | None, h: float, mem: Memory) -> Level:
        near = bool((np.abs(v) >= self._caution_v).any() or (np.abs(a) >= self._caution_a).any())
        limit = self.cartesian.speed_limit(self.reduced)
        if tcp is not None and limit is not None and mem.tcp is not None:
            d = tcp - mem.tcp
            near = near or bool(np.sqrt(d @ d) / h >= self.envelope.caution_fraction * limit)
        return Level.CAUTION if near or self.reduced else Level.SAFE

    def _blame(self, q_cmd: np.ndarray, q_out: np.ndarray, vaj: tuple[np.ndarray, ...], direct_ok: np.ndarray, stop_ok: np.ndarray,
               cart_checks: list[Check], ints: dict[Check, Interval], mem: Memory, recs: list[Violation]) -> None:
        """One record per changed joint, naming the limit that bound it and every other one it broke."""
        changed = np.flatnonzero(q_out != q_cmd).tolist()
        if not changed:
            return
        lim = self.limits
        v, a, j = vaj
        beyond = np.where(q_cmd < mem.q_lo, mem.q_lo, mem.q_hi)
        measure = np.array([q_cmd, np.abs(q_cmd - mem.q), np.abs(v), np.abs(a), np.abs(j)])
        limit = np.array([beyond, self._step, lim.v_max, lim.a_max, lim.j_max])
        broken = measure > limit
        broken[0] = (q_cmd < mem.q_lo) | (q_cmd > mem.q_hi)
        lo = np.array([ints[c].lo for c in _DIRECT])
        hi = np.array([ints[c].hi for c in _DIRECT])
        pull = (np.maximum(lo - q_cmd, 0.0) + np.maximum(q_cmd - hi, 0.0)) * broken  # how far each broken limit pulls
        binding = np.argmax(pull, axis=0).tolist()
        broken_l, measure, limit = broken.T.tolist(), measure.T.tolist(), limit.T.tolist()
        ok_l, stop_l, cmd_l, out_l = direct_ok.tolist(), stop_ok.tolist(), q_cmd.tolist(), q_out.tolist()
        mode = "; rejected: braking this cycle" if self.envelope.on_violation is OnViolation.REJECT else ""
        for i in changed:
            if not ok_l[i]:
                k = binding[i]
                check = _DIRECT[k]
                reason = f"{_NAMES[k]} {measure[i][k]:.6g} {_UNITS[k]} beyond {limit[i][k]:.6g}"
                others = [_NAMES[m] for m in range(len(_DIRECT)) if broken_l[i][m] and m != k]
                if others:
                    reason += f" (also {', '.join(others)})"
            elif not stop_l[i]:
                check, reason = Check.STOP_DISTANCE, "could not have braked inside the position limits from there"
            else:
                check = cart_checks[0] if cart_checks else Check.STOP_DISTANCE
                reason = "held back with the whole arm by " + ", ".join(c.value for c in cart_checks)
            recs.append(self._violation(check, Level.WARNING, i, cmd_l[i], out_l[i], reason + mode))

    def _commit(self, q_out: np.ndarray, mem: Memory, h: float, g: float | None, e: float | None,
                diffs: tuple[np.ndarray, np.ndarray] | None, tcp: np.ndarray | None) -> None:
        v, a = diffs if diffs is not None else backward_differences(q_out, mem.q, mem.v, mem.a, h)[:2]
        q_lo, q_hi, allowance = mem.q_lo, mem.q_hi, mem.allowance
        if (q_lo < self.limits.q_min).any() or (q_hi > self.limits.q_max).any():
            # Started outside: shrink the widened limits to where the arm can still brake to.
            plan = self._plan_for(h, mem)
            ext = braking_extent(q_out, v, a, h, plan.a, plan.j)
            q_lo = _frozen(np.minimum(self.limits.q_min, np.maximum(q_lo, ext.q_low)))
            q_hi = _frozen(np.maximum(self.limits.q_max, np.minimum(q_hi, ext.q_high)))
        if self.cartesian.enabled:
            tcp = self.cartesian.tcp_position(q_out) if tcp is None else tcp
            if allowance:
                now = self.cartesian.pose_excess(q_out)
                allowance = {c: min(x, now.get(c, 0.0)) for c, x in allowance.items() if min(x, now.get(c, 0.0)) > 0.0}
        self._memory = Memory(q=_frozen(q_out.copy()), v=_frozen(v), a=_frozen(a), q_lo=q_lo, q_hi=q_hi, tcp=tcp,
                              allowance=allowance, gripper=g, gripper_effort=e)

    def _latch(self, check: Check, reason: str, recs: list[Violation] | None) -> None:
        """Latch the e-stop (the first reason is kept); ``recs=None`` logs the record at once."""
        rec = self._violation(check, Level.EMERGENCY, None, math.nan, math.nan, f"e-stop: {reason}")
        if recs is None:
            self._log.append(rec)
        else:
            recs.append(rec)
        if self._estop is None:
            self._estop = rec

    def _record(self, recs: list[Violation], stopping: bool) -> None:
        # A stop that has reached rest repeats the same records every cycle: log them once.
        at_rest = stopping and self._memory is not None and self._memory.at_rest
        for r in recs:
            if not (at_rest and r.check in self._held):
                self._log.append(r)
        self._held = {r.check for r in recs} if at_rest else set()

    def _violation(self, check: Check, level: Level, joint: int | None, original: float, safe: float, reason: str) -> Violation:
        name = None if joint is None else self.model.joint_names[joint]
        return Violation(self.cycle, check, level, joint, name, float(original), float(safe), reason)
