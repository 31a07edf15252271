"""The safety layer: the last word between a policy's joint targets and the robot.

``SafetyLayer(envelope, robot_model).filter(command, state, dt)`` returns a :class:`Decision`.
What it guarantees, at a fixed ``dt`` and from rest at the first measured state:

* the sent positions satisfy the envelope's position, max-step, velocity, acceleration and jerk
  limits **by backward differences at dt**, bit for bit (every output is re-checked exactly);
* after every cycle a jerk-limited stop inside the position limits is still possible, and the
  layer's own controlled stop is that stop (:mod:`vla_kit.safety.braking`);
* with Cartesian limits on, a TCP or elbow that starts inside its box and half-spaces never
  leaves them, link capsules that start clear of the obstacles stay clear, braking included,
  and the tool stays in its cone (given the kinematic model; :mod:`vla_kit.safety.cartesian`);
  the TCP speed limit is met as fast as the joint limits allow;
* with separation monitoring on, a person inside the protective separation distance forces
  reduced speed or a protective stop (:mod:`vla_kit.safety.separation`);
* a command that is in limits — every joint limit, a feasible stop from it, every Cartesian
  check — is sent unchanged (same float64 bits);
* NaN/inf, absurd steps, a bad ``dt`` and the software e-stop latch the e-stop in the same
  cycle; stale commands, lost state reads and people too close brake without latching.
  Interventions are logged.

If ``dt`` varies from cycle to cycle the stop certificate of the previous cycle may not hold at
the new ``dt``; positions are still kept inside their limits and any rate limit that cannot be
met is reported (``Check.INFEASIBLE``, level DANGER) rather than hidden.

Everything the layer remembers is explicit: :attr:`SafetyLayer.memory` (last sent position,
velocity, acceleration, effective limits), the e-stop latch, the missed-read counter, the
separation state and the log. The work of a cycle is split by responsibility: input faults and
the watchdog (:mod:`~vla_kit.safety.watchdog`), the limits (:mod:`~vla_kit.safety.enforce`),
people (:mod:`~vla_kit.safety.separation`); this module sequences them and keeps the state.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from vla_kit.errors import InputError, SafetyError
from vla_kit.robots.kinematics import RobotModel
from vla_kit.safety.braking import braking_extent
from vla_kit.safety.cartesian import CartesianGuard
from vla_kit.safety.checks import PlanLimits, backward_differences, plan_limits, step_limit
from vla_kit.safety.enforce import JointEnforcer
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.kernels import all_finite
from vla_kit.safety.records import Check, Decision, Level, Violation, level_of, violation_from_fields
from vla_kit.safety.separation import SeparationMonitor, SeparationVerdict
from vla_kit.safety.state import JointCommand, Memory, RobotState
from vla_kit.safety.watchdog import as_joints, clamp_gripper, describe_bad_joints, non_finite_or_absurd, watchdog_stops

if TYPE_CHECKING:
    from vla_kit.safety.chunk import ChunkReport

__all__ = ["SafetyLayer"]


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
        self._joint_names = robot_model.joint_names
        self.limits = envelope.limits
        self._nominal = envelope.period  # s, read every cycle: kept out of pydantic's private-attribute lookup
        self._late = self._nominal * (1.0 + envelope.dt_tolerance)  # s: a longer cycle is reported as an overrun
        self.cartesian = CartesianGuard(envelope, robot_model)
        self.separation = SeparationMonitor(envelope, robot_model) if envelope.separation.enabled else None
        self.cycle = 0  # filter() calls so far
        self.missed_reads = 0  # consecutive invalid state reads
        self.reduced = False  # reduced mode set by the user (lower TCP speed)
        self._memory: Memory | None = None
        self._estop: Violation | None = None  # the record that latched the e-stop
        self._resync = False  # restart from rest at the measured state on the next cycle
        self._plan_key: tuple | None = None
        self._plan: PlanLimits | None = None
        self._log: deque[Violation] = deque(maxlen=envelope.log_capacity)
        self._held: set[Check] = set()  # checks of the last stop-at-rest cycle: not logged again
        self._enforcer = JointEnforcer(envelope, self.cartesian)
        # A cheap pre-test for absurd steps, a hair under the factor; the ratio itself decides.
        self._absurd = envelope.joints.absurd_step_factor * self.limits.max_step * (1.0 - 1e-9)
        self._humans: np.ndarray | None = None  # the last person positions received
        self._humans_age = 0.0  # s since they were received
        self._sep_hold = False  # a protective stop for a person is being held
        self._sep_level = Level.SAFE  # the separation zone of the last cycle (records are logged on changes)
        self._frames: tuple[np.ndarray, np.ndarray] | None = None  # (last sent q, its forward kinematics) when known
        self._last_cmd: np.ndarray | None = None  # the last finite, non-absurd command (jumps are judged against it)

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

    def fork(self) -> "SafetyLayer":
        """A new layer in exactly this layer's state (memory, latches, counters), with an empty log.

        What the fork is fed does not touch this layer: :meth:`validate_chunk` runs on one.
        """
        other = SafetyLayer.__new__(SafetyLayer)
        other.__dict__.update(self.__dict__)  # the envelope, the guard and the monitor, the state: immutable or replaced per cycle
        other._log = deque(maxlen=self.envelope.log_capacity)
        other._held = set(self._held)
        other._enforcer = self._enforcer.fork()  # scratch buffers and the search hint are its own
        return other

    def validate_chunk(self, chunk: np.ndarray, state: RobotState | None, dt: float) -> "ChunkReport":
        """Judge a whole predicted action chunk before any of it executes (see :mod:`vla_kit.safety.chunk`)."""
        from vla_kit.safety.chunk import validate_chunk

        return validate_chunk(self, chunk, state, dt)

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
        make = self._violation
        env = self.envelope
        cmd = command if isinstance(command, JointCommand) else None
        q_cmd = self._joints(command if cmd is None else cmd.q, "command.q")
        measured = self._read_state(state, recs)
        if self._memory is None or self._resync:
            if measured is None:
                raise SafetyError("no valid robot state yet: the safety layer needs one to start from")
            self._memory, self._resync, self._held = self._start(measured, recs), False, set()
            self._last_cmd = None
        mem = self._memory
        h, plan = self._period(dt, mem, recs)
        fault = non_finite_or_absurd(cmd, q_cmd, mem, env, self._absurd, env.enabled and self._estop is None, self._last_cmd)
        if fault is not None:
            self._latch(*fault, recs)
        else:
            self._last_cmd = q_cmd.copy()
        stops = watchdog_stops(cmd, state, measured, mem, h, self.missed_reads, env, recs, make)
        sep = None if self.separation is None else self._separate(state, mem, h, plan, recs, stops)
        reduced = self.reduced or (sep is not None and sep.reduce)
        v = a = frames = None
        enf = self._enforcer
        if self._estop is not None or stops:
            if self._estop is not None and not any(r.level is Level.EMERGENCY for r in recs):
                est = self._estop
                recs.append(make(est.check, Level.EMERGENCY, None, math.nan, math.nan,
                                 f"latched since cycle {est.cycle} ({est.reason}): controlled stop"))
            q_out, v, a = enf.verify(enf.brake(mem, plan, h), mem, plan, h, recs, make)
            level = Level.EMERGENCY if self._estop is not None else Level.DANGER
        elif not env.enabled:
            q_out, level = q_cmd, Level.CAUTION
        else:
            out = enf.enforce(q_cmd, mem, plan, h, reduced=reduced, recs=recs, make=make, cycle=self.cycle)
            q_out, level, v, a, frames = out.q, out.level, out.v, out.a, out.frames
            if q_out is not q_cmd and v is None:
                q_checked = q_out
                q_out, v, a = enf.verify(q_out, mem, plan, h, recs, make)
                frames = frames if q_out is q_checked else None
        stopping = self._estop is not None or bool(stops)
        g_out, e_out = (mem.gripper, mem.gripper_effort) if stopping else clamp_gripper(cmd, env, recs, make)
        if recs:
            level = max(level, max(map(level_of, recs)))
        if sep is not None and sep.level > level:
            level = sep.level
        sent = _frozen(q_out.copy() if q_out is q_cmd else q_out)
        self._commit(sent, mem, h, g_out, e_out, v, a, frames)
        if recs:
            self._record(recs, stopping)
        elif self._held:
            self._held = set()
        intervened = stopping or q_out is not q_cmd or any(r.level >= Level.WARNING for r in recs)
        # Positional, in Decision's field order (a keyword call costs a microsecond more per cycle).
        return Decision(sent, level, tuple(recs), intervened, g_out, e_out, self._estop is not None, reduced,
                        None if sep is None else sep.distance)

    # ------------------------------------------------------------------ inputs and timing

    def _joints(self, q: object, what: str) -> np.ndarray:
        arr = as_joints(q, self.model.dof)
        if arr is None:
            self._latch(Check.NON_FINITE, f"malformed {what}", None)
            raise InputError(what, describe_bad_joints(q, self.model.dof, self.model.name))
        return arr

    def _read_state(self, state: RobotState | None, recs: list[Violation]) -> np.ndarray | None:
        if state is None or not state.valid or state.q is None:
            self.missed_reads += 1
            return None
        q = self._joints(state.q, "state.q")
        if not all_finite(q):
            self.missed_reads += 1
            recs.append(self._violation(Check.STATE_LOST, Level.CAUTION, None, math.nan, math.nan, "non-finite measured state ignored"))
            return None
        self.missed_reads = 0
        return q

    def _start(self, measured: np.ndarray, recs: list[Violation]) -> Memory:
        """Memory at rest at the measured state; limits widened to include a start outside them."""
        lim = self.limits
        q = measured.copy()
        below, above = q < lim.q_min, q > lim.q_max
        q_lo = _frozen(np.minimum(lim.q_min, q)) if below.any() else lim.q_min
        q_hi = _frozen(np.maximum(lim.q_max, q)) if above.any() else lim.q_max
        for i in np.flatnonzero(below | above):
            recs.append(self._violation(Check.POSITION, Level.WARNING, int(i), q[i], q[i],
                                        "started outside the envelope: only motion back inside is allowed"))
        tcp, allowance = None, {}
        if self.cartesian.enabled:
            tcp = self.cartesian.tcp_position(q)
            allowance = {c: x for c, x in self.cartesian.pose_excess(q).items() if x > 0.0}
            for c, x in allowance.items():
                recs.append(self._violation(c, Level.WARNING, None, x, x, "started outside this Cartesian limit: it may only shrink"))
        return Memory(q=_frozen(q), v=_frozen(np.zeros_like(q)), a=_frozen(np.zeros_like(q)), q_lo=q_lo, q_hi=q_hi, tcp=tcp,
                      allowance=allowance)

    def _period(self, dt: float, mem: Memory, recs: list[Violation]) -> tuple[float, PlanLimits]:
        key = self._plan_key
        if type(dt) is float and key is not None and dt == key[0] and dt <= self._late and mem.q_lo is key[1] \
                and mem.q_hi is key[2] and self._plan is not None:
            return dt, self._plan  # the steady state: the period of the last cycle, on time, same limits
        nominal = self._nominal
        valid = isinstance(dt, (int, float, np.floating)) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0.0
        h = float(dt) if valid else nominal
        if not valid:
            self._latch(Check.INVALID_DT, f"dt = {dt!r} is not a finite positive period; braking at the nominal {nominal:g} s", recs)
        elif h > self._late:
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
        key = self._plan_key
        if key is None or h != key[0] or mem.q_lo is not key[1] or mem.q_hi is not key[2]:
            self._plan_key = (h, mem.q_lo, mem.q_hi)
            self._plan = plan_limits(self.limits, h, self._nominal, mem.q_lo, mem.q_hi)
            if self._plan is not None:
                self._enforcer.prepare(self._plan, step_limit(self.limits, h, self._nominal), h)
        return self._plan

    # ------------------------------------------------------------------ people

    def _separate(self, state: RobotState | None, mem: Memory, h: float, plan: PlanLimits, recs: list[Violation],
                  stops: list[Check]) -> SeparationVerdict | None:
        """Speed-and-separation monitoring for this cycle; appends a stop demand when needed."""
        humans = None if state is None else state.humans
        if humans is not None:
            self._humans, self._humans_age = humans, 0.0
        elif self._humans is None:
            return None
        else:
            self._humans_age += h
        mon = self.separation
        timeout = self.envelope.separation.data_timeout
        if self._humans_age > timeout:
            verdict = mon.stale(self._humans_age, timeout)
        else:
            known = self._frames
            hold = self._sep_hold  # whether the arm is at rest matters only to a stop being held
            verdict = mon.assess(self._humans, mem.q, mem.v, mem.a, h, holding=hold, at_rest=hold and mem.at_rest,
                                 a_max=plan.a, j_max=plan.j, frames=known[1] if known is not None and known[0] is mem.q else None)
        self._sep_hold = verdict.stop
        if verdict.stop:
            stops.append(Check.SEPARATION)
        if verdict.level != self._sep_level:  # log zone changes, not every cycle spent in a zone
            limit = verdict.protective if verdict.stop else verdict.reduced_zone
            recs.append(self._violation(Check.SEPARATION, verdict.level, None, verdict.distance, limit, verdict.reason))
            self._sep_level = verdict.level
        return verdict

    # ------------------------------------------------------------------ bookkeeping

    def _commit(self, q_out: np.ndarray, mem: Memory, h: float, g: float | None, e: float | None,
                v: np.ndarray | None, a: np.ndarray | None, frames: np.ndarray | None) -> None:
        if v is None:
            v, a = backward_differences(q_out, mem.q, mem.v, mem.a, h)[:2]
        lim = self.limits
        q_lo, q_hi, allowance = mem.q_lo, mem.q_hi, mem.allowance
        if q_lo is not lim.q_min or q_hi is not lim.q_max:
            # Started outside: shrink the widened limits to where the arm can still brake to.
            plan = self._plan_for(h, mem)
            ext = braking_extent(q_out, v, a, h, plan.a, plan.j)
            q_lo = np.minimum(lim.q_min, np.maximum(q_lo, ext.q_low))
            q_hi = np.maximum(lim.q_max, np.minimum(q_hi, ext.q_high))
            q_lo = _frozen(q_lo) if (q_lo < lim.q_min).any() else lim.q_min
            q_hi = _frozen(q_hi) if (q_hi > lim.q_max).any() else lim.q_max
        self._frames = None if frames is None else (q_out, frames)  # the forward kinematics of what was sent, when known
        tcp = None
        if self.cartesian.enabled:
            tcp = self.cartesian.tcp_position(q_out) if frames is None else frames[-1, :3, 3]
            if allowance:
                now = self.cartesian.pose_excess(q_out)
                allowance = {c: min(x, now.get(c, 0.0)) for c, x in allowance.items() if min(x, now.get(c, 0.0)) > 0.0}
        v.setflags(write=False)
        a.setflags(write=False)
        self._memory = Memory(q_out, v, a, q_lo, q_hi, tcp, allowance, g, e)  # positional, in field order

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
        if not (stopping and self._memory is not None and self._memory.at_rest):
            self._log.extend(recs)
            if self._held:
                self._held = set()
            return
        self._log.extend(r for r in recs if r.check not in self._held)
        self._held = {r.check for r in recs}

    def _violation(self, check: Check, level: Level, joint: int | None, original: float, safe: float,
                   reason: str | tuple) -> Violation:
        name = None if joint is None else self._joint_names[joint]
        return violation_from_fields((self.cycle, check, level, joint, name, float(original), float(safe), reason))
