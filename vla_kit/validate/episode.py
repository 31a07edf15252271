"""One guarded episode: policy -> faults -> joint targets -> safety layer -> simulated arm, every cycle.

The loop runs at the physics rate (240 Hz, :class:`~vla_kit.robots.sim_arm.SimArm`). Each control
step (``control_dt``, 24 cycles) it either queries the policy on a fresh frame or executes the next
row of the current chunk; the row becomes one joint target per cycle; each target goes through
:meth:`SafetyLayer.filter` with the measured state and the cycle's timestamp, and what the layer
sends is what the arm gets. A scenario (:class:`~vla_kit.safety.scenarios.Scenario`) corrupts the
pieces upstream of the layer: the frame, the instruction, the policy's rows, the state reads, the
timing of commands, the workspace.

The loop has two guards of its own, as a deployed loop must:

* it never queries the policy on a frame older than ``max_frame_age`` (a frozen camera), and
* when no fresh row is available (a slow policy, a refused frame, a policy that raised), it keeps
  sending the last target **with its old timestamp**, so the layer's command watchdog sees the
  stall rather than the loop hiding it.

Everything that happened is kept per cycle in an :class:`EpisodeTrace` for the judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vla_kit.errors import VlaKitError
from vla_kit.robots.models import get_robot_model
from vla_kit.robots.sim_arm import SimArm
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.layer import SafetyLayer
from vla_kit.safety.perturb import perturb_image
from vla_kit.safety.scenarios import Scenario
from vla_kit.safety.state import JointCommand, RobotState
from vla_kit.sim.env import TabletopEnv
from vla_kit.sim.layout import COLOURS
from vla_kit.sim.runner import Policy
from vla_kit.types import ActionChunk, ActionSpace, Observation

__all__ = ["EpisodeTrace", "HumanWalk", "run_guarded_episode", "sim_envelope", "with_obstacle", "obstacle_for"]



@dataclass(frozen=True)
class HumanWalk:
    """A person (a point at chest height) walking up to the table, lingering, and walking away.

    Positions in m, base frame; speed in m/s (ISO 13855's 1.6 m/s by default).
    """

    start: tuple[float, float, float] = (2.2, -1.2, 1.1)
    stop: tuple[float, float, float] = (0.6, -0.4, 0.7)  # leaning over the table's corner, ~0.4 m from the arm
    speed: float = 1.6
    enter_at: float = 0.1  # s after the episode starts
    linger: float = 1.0  # s at the stop point

    def position(self, t: float) -> np.ndarray:
        a, b = np.asarray(self.start), np.asarray(self.stop)
        walk = float(np.linalg.norm(b - a)) / self.speed
        s = t - self.enter_at
        if s <= 0.0:
            f = 0.0
        elif s < walk:
            f = s / walk
        elif s < walk + self.linger:
            f = 1.0
        else:
            f = max(0.0, 1.0 - (s - walk - self.linger) / walk)
        return a + f * (b - a)


@dataclass
class EpisodeTrace:
    """Per-cycle record of one guarded episode (arrays have one row per cycle).

    Attributes:
        seed, colour, instruction: the episode. envelope: the limits the layer applied.
        success: the task predicate held at some control step.
        steps: control steps executed; cycles: control cycles run.
        dt: cycle period (s).
        q0: measured joints when the layer started (the audit's start at rest).
        t: cycle end times (s). q_cmd, q_sent, q_meas: ``(N, 7)`` rad.
        level: ``(N,)`` :class:`Level` values. intervened, estop: ``(N,)`` bool.
        checks: ``(N,)`` tuples of the checks the layer recorded that cycle.
        cmd_age: ``(N,)`` s between the command's timestamp and the state's.
        state_valid: ``(N,)`` bool. missed: ``(N,)`` consecutive invalid reads so far.
        human_distance, protective: ``(N,)`` m, NaN without a person: from the pose last sent (what
            the layer knows) and the protective separation distance ``S_p`` of the motion under way.
        human_distance_measured: ``(N,)`` m, the same from the measured pose.
        injected: fault kind -> ``(N,)`` bool, the cycles the fault was present at the layer
            (``stale_frame``: at the loop, the camera's newest frame older than ``max_frame_age``).
        robot_faults: cycles a non-finite command reached the arm (it holds then).
        policy_errors: messages of policy calls that raised.
        max_frame_age: s, the loop's frame-age limit (its camera guard).
        camera_age: ``(N,)`` s, the age of the newest frame the camera offered when the cycle began
            (a frozen camera's frame ages; a live one's is 0).
        frame_age: ``(N,)`` s, the age, when the policy was queried, of the frame behind the row
            the cycle executed; NaN where the loop held its last target (no row).
    """

    seed: int
    colour: str
    instruction: str
    dt: float
    q0: np.ndarray
    envelope: Envelope
    success: bool = False
    steps: int = 0
    cycles: int = 0
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    q_cmd: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    q_sent: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    q_meas: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))
    level: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    intervened: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    estop: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    checks: list[tuple[str, ...]] = field(default_factory=list)
    cmd_age: np.ndarray = field(default_factory=lambda: np.zeros(0))
    state_valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    missed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    human_distance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    human_distance_measured: np.ndarray = field(default_factory=lambda: np.zeros(0))
    protective: np.ndarray = field(default_factory=lambda: np.zeros(0))
    injected: dict[str, np.ndarray] = field(default_factory=dict)
    robot_faults: int = 0
    policy_errors: list[str] = field(default_factory=list)
    max_frame_age: float = math.inf
    camera_age: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_age: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def received(self) -> np.ndarray:
        """The positions the arm actually got, ``(N, 7)``: where a non-finite command arrived, the arm
        held its previous target (``q0`` before the first)."""
        held = np.array(self.q_sent, dtype=np.float64, copy=True)
        for i in np.flatnonzero(~np.isfinite(held).all(axis=1)):
            held[i] = held[i - 1] if i else self.q0
        return held


class _Recorder:
    """Appends one cycle at a time; :meth:`finish` turns the lists into the trace's arrays."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {k: [] for k in (
            "t", "q_cmd", "q_sent", "q_meas", "level", "intervened", "estop", "checks", "cmd_age", "state_valid",
            "missed", "human_distance", "human_distance_measured", "protective", "camera_age", "frame_age")}
        self.injected: dict[str, list[bool]] = {k: [] for k in ("non_finite", "stale", "late", "state_lost", "stale_frame")}

    def add(self, **row: object) -> None:
        for k, v in row.items():
            self.rows[k].append(v)

    def finish(self, trace: EpisodeTrace) -> EpisodeTrace:
        r = self.rows
        n = len(r["t"])
        trace.cycles = n
        trace.t = np.asarray(r["t"], dtype=np.float64)
        for k in ("q_cmd", "q_sent", "q_meas"):
            setattr(trace, k, np.asarray(r[k], dtype=np.float64).reshape(n, -1))
        trace.level = np.asarray(r["level"], dtype=np.int8)
        trace.intervened = np.asarray(r["intervened"], dtype=bool)
        trace.estop = np.asarray(r["estop"], dtype=bool)
        trace.checks = r["checks"]
        trace.cmd_age = np.asarray(r["cmd_age"], dtype=np.float64)
        trace.state_valid = np.asarray(r["state_valid"], dtype=bool)
        trace.missed = np.asarray(r["missed"], dtype=np.int32)
        trace.human_distance = np.asarray(r["human_distance"], dtype=np.float64)
        trace.human_distance_measured = np.asarray(r["human_distance_measured"], dtype=np.float64)
        trace.protective = np.asarray(r["protective"], dtype=np.float64)
        trace.camera_age = np.asarray(r["camera_age"], dtype=np.float64)
        trace.frame_age = np.asarray(r["frame_age"], dtype=np.float64)
        trace.injected = {k: np.asarray(v, dtype=bool) for k, v in self.injected.items()}
        return trace


def _instruction(scenario: Scenario, env: TabletopEnv) -> str:
    if scenario.instruction is None:
        return env.spec.instruction
    colour = env.spec.colour
    other = next(c for c in COLOURS if c != colour)
    return scenario.instruction.format(colour=colour, other=other)


def run_guarded_episode(
    env: TabletopEnv,
    policy: Policy,
    envelope: Envelope,
    scenario: Scenario,
    *,
    seed: int,
    task: str = "reach",
    execute_steps: int = 4,
    max_steps: int | None = None,
    max_frame_age: float = 0.15,
    human: HumanWalk | None = None,
    smoothing: float = 15.0,
) -> EpisodeTrace:
    """Run one episode of ``scenario`` on ``env`` through a fresh :class:`SafetyLayer`.

    Args:
        env: the simulated tabletop; reset here with ``seed`` and ``task``.
        policy: ``policy(obs) -> ActionChunk`` in ``EE_DELTA`` space.
        envelope: the limits, for the Panda, with ``dt`` equal to the physics step
            (:func:`sim_envelope`); the ``obstacle`` scenario adds its sphere to them.
        scenario: what to inject.
        seed: episode seed (layout, target colour).
        task: task family.
        execute_steps: chunk rows executed before querying again.
        max_steps: control-step budget (default: the task's).
        max_frame_age: s; the loop refuses to query the policy on an older frame.
        human: the person's walk for ``scenario.human`` (default :class:`HumanWalk()`).
        smoothing: natural frequency (rad/s) of the loop's command smoother (:class:`Smoother`).

    Returns:
        The :class:`EpisodeTrace`.
    """
    arm = SimArm(env)
    dt = arm.period
    if not math.isclose(envelope.period, dt, rel_tol=1e-9):
        raise VlaKitError(f"the envelope's period is {envelope.period:g} s; the simulated arm cycles at {dt:g} s (use sim_envelope)")
    env.reset(seed=seed, task=task, images=False)
    if scenario.obstacle:
        centre, radius = obstacle_for(env)
        env.scene.add_marker(centre, radius)
        envelope = with_obstacle(envelope, centre, radius)
    layer = SafetyLayer(envelope, get_robot_model(envelope.robot))
    arm.begin_episode()
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset()
    instruction = _instruction(scenario, env)
    walk = (human or HumanWalk()) if scenario.human else None
    rng = np.random.default_rng([int(seed), 0x5AFE])
    trace = EpisodeTrace(seed=int(seed), colour=env.spec.colour, instruction=instruction, dt=dt, q0=arm.measure(),
                         envelope=envelope, max_frame_age=float(max_frame_age))
    rec = _Recorder()
    fault = scenario.action_fault
    budget = env.max_steps if max_steps is None else max_steps
    wd = layer.envelope.watchdog
    sep = layer.separation

    t = 0.0
    rows: list[np.ndarray] = []
    stall_steps = 0  # control steps the command stream stalls (a late policy)
    frozen_row: np.ndarray | None = None
    last_row: np.ndarray | None = None
    frame_cache: tuple[np.ndarray, float, int] | None = None  # a frozen camera's frame, its timestamp and capture cycle
    chunk_age = math.nan  # age of the frame the current chunk was computed from, when the policy got it
    last_stamp = 0.0
    last_gripper: float | None = 0.0
    latency_fired = False
    prev_sent, prev_v, prev_a = trace.q0.copy(), np.zeros(7), np.zeros(7)
    smoother = Smoother(trace.q0, dt, smoothing)

    for step in range(budget):
        # ---- the policy side: a fresh chunk when the current one is used up
        late = False
        frozen_cam = scenario.stale_frames
        now = len(rec.rows["t"])  # cycles so far: this step's first cycle (the loop's clock; t = now * dt)
        if frozen_cam is not None and step == frozen_cam.start:
            frame_cache = _frame(env, scenario, t, now, None, rng)  # the camera freezes on this frame
        if stall_steps > 0:
            stall_steps -= 1
            late = True
        elif not rows:
            frame, stamp, shot = _frame(env, scenario, t, now, frame_cache, rng)
            age = (now - shot) * dt  # counted in cycles, as the per-cycle camera age below: the same float at the limit
            if age <= max_frame_age:  # else refused: no rows, the loop holds and the command ages
                obs = Observation(images={"front": frame}, instruction=instruction, proprio=env.proprio(), timestamp=stamp)
                try:
                    chunk = policy(obs)
                    if not isinstance(chunk, ActionChunk) or chunk.space is not ActionSpace.EE_DELTA:
                        raise VlaKitError(f"policy returned {type(chunk).__name__}, not an EE_DELTA ActionChunk")
                    rows = [r.copy() for r in chunk.actions[:execute_steps]]
                    chunk_age = age  # of the frame the policy was given
                except (VlaKitError, ValueError) as exc:  # a policy that refuses its input: the loop stalls, safely
                    trace.policy_errors.append(f"step {step}: {exc}")
                    rows = []
                spike = scenario.latency_spike
                if spike is not None and not latency_fired and step >= spike.start and rows:
                    latency_fired = True
                    stall_steps = max(1, math.ceil(spike.seconds / env.config.control_dt)) - 1
                    late = True
        frozen_since = None if frame_cache is None else frame_cache[2]  # the camera during this step's cycles
        if frozen_cam is not None and step + 1 >= frozen_cam.start + frozen_cam.length:
            frame_cache = None

        # ---- one row -> joint targets for this step's cycles
        if rows and not late:
            row = rows.pop(0)
            if fault is not None:
                if fault.active(step) and frozen_row is None:
                    frozen_row = last_row
                row = fault.apply(step, row, frozen_row)
            last_row = row
            targets, gripper = arm.plan(row)
            stamps = t + dt * np.arange(arm.substeps)  # generated as each cycle starts: fresh
            fresh = True
            row_age = chunk_age
        else:
            targets = np.repeat(prev_sent[None, :], arm.substeps, axis=0)
            gripper = last_gripper
            stamps = np.full(arm.substeps, last_stamp)
            fresh = False
            row_age = math.nan
        stale = scenario.stale_command
        delayed = stale is not None and stale.start <= step < stale.start + stale.length and fresh
        if delayed:
            stamps = stamps - stale.seconds

        if fresh:
            targets = smoother.follow(targets)
        # ---- the cycles: layer -> arm
        for k in range(arm.substeps):
            cycle = len(rec.rows["t"])
            drop = scenario.dropped_state
            lost = drop is not None and drop.start * arm.substeps <= cycle < drop.start * arm.substeps + drop.cycles
            q_meas = arm.measure()
            people = None if walk is None else walk.position(t)[None, :]
            state = RobotState(q=None if lost else q_meas, stamp=t, valid=not lost, humans=people)
            cmd = JointCommand(q=targets[k], gripper=gripper, stamp=float(stamps[k]))
            dec = layer.filter(cmd, state, dt)
            sent = np.asarray(dec.command_sent, dtype=np.float64)
            sendable = bool(np.isfinite(sent).all())
            if sendable:
                arm.send(sent, dec.gripper_sent if dec.gripper_sent is not None else last_gripper)
            else:
                trace.robot_faults += 1  # a real controller would fault; the sim arm holds its last target
            arm.tick()
            t = (cycle + 1) * dt
            age = float(t - dt - stamps[k])
            rec.injected["non_finite"].append(not np.isfinite(targets[k]).all())
            rec.injected["stale"].append(delayed and abs(age) > wd.command_timeout)
            rec.injected["late"].append(not fresh and not delayed and abs(age) > wd.command_timeout and late)
            rec.injected["state_lost"].append(lost and layer.missed_reads >= wd.max_missed_state_reads)
            camera_age = 0.0 if frozen_since is None else (cycle - frozen_since) * dt
            rec.injected["stale_frame"].append(camera_age > max_frame_age)
            dist = dist_meas = sp = math.nan
            if people is not None and sep is not None:
                # What the layer could know when the cycle began: the person now, the arm where it
                # was last sent, and S_p of the motion already under way (its one-cycle reaction is
                # part of the reaction time T_r). The measured arm is kept too: S_p's Z_r term must
                # cover how far it lags what was sent.
                dist = sep.measure(people, prev_sent)[0]
                dist_meas = sep.measure(people, q_meas)[0]
                sp = sep.distance_bound(sep.robot_terms(prev_v, prev_a, dt))
            if sendable:  # the last finite command: what the arm holds and what a stall repeats
                v = (sent - prev_sent) / dt
                prev_a, prev_v, prev_sent = (v - prev_v) / dt, v, sent
            rec.add(t=t, q_cmd=targets[k], q_sent=sent, q_meas=q_meas, level=int(dec.level), intervened=dec.intervened,
                    estop=dec.estop_latched, checks=tuple(dict.fromkeys(r.check.value for r in dec.violations)),
                    cmd_age=age, state_valid=not lost, missed=layer.missed_reads, human_distance=dist, human_distance_measured=dist_meas,
                    protective=sp, camera_age=camera_age, frame_age=row_age)
        if fresh:
            last_stamp = float(stamps[-1])
            last_gripper = gripper if math.isfinite(gripper) else last_gripper
        trace.steps = step + 1
        if env.success():
            trace.success = True
            break
        mem = layer.memory
        if layer.estop_latched and mem is not None and mem.at_rest:
            break  # stopped and latched: nothing more happens until someone resets it
    return rec.finish(trace)


class Smoother:
    """The loop's command generator: a critically damped second-order filter on the joint targets.

    The IK path of a policy row is piecewise linear in joint space: its velocity jumps at every
    row, which no arm can follow and every rate limiter clamps. Real controllers put a smoothing
    interpolator between a 10 Hz policy and a 1 kHz robot; this is the simplest honest one,
    ``q'' = w^2 (r - q) - 2 w q'``, integrated per cycle. It knows nothing of the envelope, so a
    fault upstream (a spike, NaN) still reaches the layer as a violent command: NaN stays NaN
    and the filter is not advanced by it.

    Args:
        q0: the start (at rest), rad. dt: cycle period, s. omega: natural frequency, rad/s.
    """

    def __init__(self, q0: np.ndarray, dt: float, omega: float) -> None:
        self.q = np.asarray(q0, dtype=np.float64).copy()
        self.v = np.zeros_like(self.q)
        self.dt, self.omega = dt, omega

    def follow(self, reference: np.ndarray) -> np.ndarray:
        """One smoothed target per reference row (rows with NaN come out as NaN)."""
        w, h = self.omega, self.dt
        out = np.empty_like(reference)
        for i, r in enumerate(reference):
            if not np.isfinite(r).all():
                out[i] = np.nan
                continue
            a = w * w * (r - self.q) - 2.0 * w * self.v
            self.v = self.v + a * h
            self.q = self.q + self.v * h
            out[i] = self.q
        return out


def _frame(env: TabletopEnv, scenario: Scenario, t: float, cycle: int, cache: tuple[np.ndarray, float, int] | None,
           rng: np.random.Generator) -> tuple[np.ndarray, float, int]:
    """The camera frame the loop receives now, its timestamp and capture cycle (a frozen camera
    repeats an old one)."""
    if cache is not None:
        return cache
    frame = env.scene.render_front()
    if scenario.image is not None:
        frame = perturb_image(scenario.image, frame, rng)
    return frame, t, cycle


def obstacle_for(env: TabletopEnv) -> tuple[np.ndarray, float]:
    """The keep-out sphere of the ``obstacle`` scenario: 12 cm above the target cube, 5 cm radius."""
    cube = env.state().cube_positions[env.spec.colour]
    return cube + np.array([0.0, 0.0, 0.12]), 0.05


def sim_envelope(envelope: Envelope) -> Envelope:
    """The same limits at the simulated arm's period (one physics step): rates stay, ``dt`` changes.

    ``max_step`` given per nominal cycle scales with the period, as the layer scales it anyway.
    """
    data = envelope.model_dump()
    data["dt"] = SimArm.period
    return Envelope.from_dict(data, "<sim envelope>")


def with_obstacle(envelope: Envelope, centre: np.ndarray, radius: float) -> Envelope:
    """The envelope plus one keep-out sphere."""
    data = envelope.model_dump()
    data["obstacles"]["spheres"] = [*data["obstacles"]["spheres"], {"centre": [float(v) for v in centre], "radius": float(radius)}]
    return Envelope.from_dict(data, "<obstacle scenario>")
