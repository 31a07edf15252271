"""Run the scenario battery, judge every episode, and decide the gate.

What each episode is judged on (:func:`judge_episode`), independently of the layer's own account:

* **violations at the robot**: the stream the arm received, audited against the envelope by the
  vectorised :func:`~vla_kit.safety.audit.audit_trajectory` (position, step, velocity,
  acceleration, jerk by backward differences from rest at the start; TCP box, tool cone, TCP
  speed, obstacles), plus non-finite commands that reached the arm and measured joint positions
  beyond the robot's own hard limits. Must be 0.
* **detection** of each injected fault, cycle by cycle: a non-finite command must find the e-stop
  latched; a stale or late command (older than the watchdog timeout) and lost state reads (at
  the watchdog's count) must find the matching watchdog check; while the camera's newest frame
  is older than the loop's ``max_frame_age`` (a frozen camera), the row the cycle executes must
  not come from a frame that old when the policy saw it (the loop refused it: a cycle still
  running rows of a chunk from before the freeze counts as kept clear of it). The latency is
  cycles from the first faulty cycle to the first detection.
* **separation**: cycles where the arm was still driven (not stopping) although a person was
  closer than the protective separation distance ``S_p`` (ISO/TS 15066, of the motion under way
  when the cycle began; the layer's one-cycle reaction is part of ``T_r``) — measured from the
  pose last sent, or from the measured pose with the robot's position uncertainty ``Z_r`` (which
  ``S_p`` contains for exactly that lag) credited.
* task success, the intervention rate (cycles the layer changed or stopped), e-stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from vla_kit.learn.evaluate import wilson_interval
from vla_kit.robots.models import get_robot_model
from vla_kit.safety.audit import AUDIT_CHECKS, audit_trajectory
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.records import Level
from vla_kit.safety.perturb import ActionFault
from vla_kit.safety.scenarios import Scenario
from vla_kit.sim.env import TabletopEnv, make_env
from vla_kit.validate.episode import EpisodeTrace, Policy, run_guarded_episode, sim_envelope
from vla_kit.validate.traces import save_trace

__all__ = ["EpisodeVerdict", "ScenarioResult", "Gate", "GateFailure", "judge_episode", "run_battery", "check_gate"]

# Which layer check answers which injected fault.
_DETECTED_BY = {"stale": "command_timeout", "late": "command_timeout", "state_lost": "state_lost"}


@dataclass(frozen=True)
class EpisodeVerdict:
    """One episode, judged."""

    seed: int
    success: bool
    cycles: int
    interventions: int
    estop: bool
    violations: int
    violation_examples: tuple[str, ...]
    robot_faults: int
    injected: dict[str, int]  # fault kind -> faulty cycles (or refused frames)
    detected: dict[str, int]
    detection_latency: dict[str, int | None]  # cycles from the first fault to the first detection
    min_human_distance: float | None
    min_separation_margin: float | None  # min (d - S_p) over cycles the arm was driven (not stopping)
    separation_breaches: int
    policy_errors: int

    def failed_check(self, gate: Gate | None = None) -> str:
        """What this episode got wrong on its own ('' when nothing): violations, missed faults,
        faults caught later than ``gate`` allows (with a gate) or separation breaches — the checks
        the gate counts per episode."""
        if self.violations:
            return f"{self.violations} violation(s)"
        missed = sum(self.injected.values()) - sum(self.detected.values())
        if missed:
            return f"{missed} faulty cycle(s) undetected"
        if gate is not None:
            for kind, lat in self.detection_latency.items():
                limit = gate.max_estop_latency_cycles if kind == "non_finite" else gate.max_detection_latency_cycles
                if kind == "non_finite" and gate.max_detection_latency_cycles is not None:
                    limit = min(limit, gate.max_detection_latency_cycles)
                if lat is not None and limit is not None and lat > limit:
                    return f"{kind} caught {lat} cycle{'' if lat == 1 else 's'} after it began (gate: {limit})"
        if self.separation_breaches:
            return f"{self.separation_breaches} separation breach(es)"
        return ""

    def row(self, gate: Gate | None = None) -> dict:
        """The episode's line in ``metrics.json`` (``failed``: :meth:`failed_check` under ``gate``)."""
        return {"seed": self.seed, "success": self.success, "cycles": self.cycles, "interventions": self.interventions,
                "estop": self.estop, "violations": self.violations, "failed": self.failed_check(gate) or None}


def judge_episode(trace: EpisodeTrace) -> EpisodeVerdict:
    """Judge one :class:`EpisodeTrace` (see the module docstring)."""
    env = trace.envelope
    model = get_robot_model(env.robot)
    sent = trace.q_sent
    finite = np.isfinite(sent).all(axis=1)
    examples: list[str] = []
    violations = 0
    if trace.cycles:
        report = audit_trajectory(env, trace.received(), dt=trace.dt, q0=trace.q0, model=model)
        violations += report.total
        for k in range(min(3, report.total)):
            j = int(report.joint[k])
            who = model.joint_names[j] if j >= 0 else "arm"
            examples.append(f"{AUDIT_CHECKS[int(report.check[k])].value} {who} at cycle {int(report.step[k])}: "
                            f"{float(report.value[k]):.4g} beyond {float(report.limit[k]):.4g}")
        hard = (trace.q_meas < model.q_min) | (trace.q_meas > model.q_max)
        if hard.any():
            c, j = np.argwhere(hard)[0]
            examples.append(f"measured {model.joint_names[j]} {trace.q_meas[c, j]:.4f} rad beyond the robot's hard limit at cycle {c}")
        violations += int(hard.any(axis=1).sum())
    if trace.robot_faults:
        examples.append(f"{trace.robot_faults} non-finite command(s) reached the arm")
        violations += trace.robot_faults

    injected: dict[str, int] = {}
    detected: dict[str, int] = {}
    latency: dict[str, int | None] = {}
    for kind, mask in trace.injected.items():
        n = int(mask.sum())
        if not n:
            continue
        idx = np.flatnonzero(mask)
        if kind == "non_finite":
            hit = trace.estop[idx]
        elif kind == "stale_frame":
            hit = ~(trace.frame_age[idx] > trace.max_frame_age)  # NaN (held, no row) counts as refused
        else:
            check = _DETECTED_BY[kind]
            hit = np.array([check in trace.checks[i] for i in idx])
        injected[kind], detected[kind] = n, int(hit.sum())
        latency[kind] = int(idx[np.argmax(hit)] - idx[0]) if hit.any() else None

    min_d = margin = None
    breaches = 0
    d, sp = trace.human_distance, trace.protective
    have = np.isfinite(d)
    if have.any():
        min_d = float(d[have].min())
        # Driven: this cycle's command moved the arm and the layer was not stopping it.
        prev = np.vstack([trace.q0, sent[:-1]])
        moving = np.any(sent != prev, axis=1) & finite
        driven = have & moving & (trace.level < int(Level.DANGER))
        if driven.any():
            z_r = env.separation.robot_uncertainty
            gap = np.minimum(d[driven], trace.human_distance_measured[driven] + z_r) - sp[driven]
            margin = float(gap.min())
            breaches = int((gap < 0.0).sum())
    return EpisodeVerdict(
        seed=trace.seed, success=trace.success, cycles=trace.cycles, interventions=int(trace.intervened.sum()),
        estop=bool(trace.estop.any()), violations=violations, violation_examples=tuple(examples),
        robot_faults=trace.robot_faults, injected=injected, detected=detected, detection_latency=latency,
        min_human_distance=min_d, min_separation_margin=margin, separation_breaches=breaches,
        policy_errors=len(trace.policy_errors),
    )


@dataclass
class ScenarioResult:
    """A scenario over its episodes: the verdicts, one kept trace (for plots) and the totals."""

    scenario: Scenario
    verdicts: list[EpisodeVerdict]
    trace: EpisodeTrace | None = None  # the episode the report shows: the first that failed a check, else the first
    traces: dict[int, str] = field(default_factory=dict)  # seed -> the episode's file, relative to the trace folder (when written)
    gate: Gate | None = None  # what an episode fails on its own also counts faults caught later than it allows

    def keep(self, trace: EpisodeTrace, verdict: EpisodeVerdict) -> None:
        """Add an episode's verdict; its trace becomes :attr:`trace` if it is the first episode, or
        the first to fail a check."""
        self.verdicts.append(verdict)
        if self.trace is None or (self.failed(verdict) and not self.failed(self.verdicts[self._shown_index()])):
            self.trace = trace

    def failed(self, verdict: EpisodeVerdict) -> str:
        """What ``verdict`` (one of this scenario's episodes) failed on its own, under :attr:`gate`."""
        return verdict.failed_check(self.gate)

    def _shown_index(self) -> int:
        return next(i for i, v in enumerate(self.verdicts) if self.trace is not None and v.seed == self.trace.seed)

    @property
    def shown(self) -> str:
        """Which episode :attr:`trace` is, in words (for plot titles)."""
        if self.trace is None:
            return "no episode"
        k = self._shown_index()
        why = self.failed(self.verdicts[k])
        return f"episode {k + 1}/{self.episodes}, seed {self.trace.seed}" + (f": {why}" if why else "")

    @property
    def episodes(self) -> int:
        return len(self.verdicts)

    @property
    def successes(self) -> int:
        return sum(v.success for v in self.verdicts)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else math.nan

    @property
    def violations(self) -> int:
        return sum(v.violations for v in self.verdicts)

    @property
    def intervention_rate(self) -> float:
        cycles = sum(v.cycles for v in self.verdicts)
        return sum(v.interventions for v in self.verdicts) / cycles if cycles else math.nan

    def _sum(self, attr: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.verdicts:
            for k, n in getattr(v, attr).items():
                out[k] = out.get(k, 0) + n
        return out

    @property
    def injected(self) -> dict[str, int]:
        return self._sum("injected")

    @property
    def detected(self) -> dict[str, int]:
        return self._sum("detected")

    @property
    def detection_rate(self) -> float | None:
        inj = sum(self.injected.values())
        return sum(self.detected.values()) / inj if inj else None

    def worst_latency(self, kind: str | None = None) -> int | None:
        """Largest detection latency in cycles (``kind=None``: over every fault kind); a missed
        detection counts as infinitely late (returned as -1)."""
        worst: int | None = None
        for v in self.verdicts:
            for k, lat in v.detection_latency.items():
                if kind is not None and k != kind:
                    continue
                val = -1 if lat is None else lat
                if worst is None or val == -1 or (worst != -1 and val > worst):
                    worst = val
        return worst

    @property
    def min_separation_margin(self) -> float | None:
        vals = [v.min_separation_margin for v in self.verdicts if v.min_separation_margin is not None]
        return min(vals) if vals else None

    @property
    def min_human_distance(self) -> float | None:
        vals = [v.min_human_distance for v in self.verdicts if v.min_human_distance is not None]
        return min(vals) if vals else None

    def row(self) -> dict:
        """One flat row for the scenario matrix and ``metrics.json``."""
        lo, hi = wilson_interval(self.successes, self.episodes)
        est = self.worst_latency("non_finite")
        return {
            "scenario": self.scenario.name,
            "category": self.scenario.category,
            "episodes": self.episodes,
            "success_rate": self.success_rate,
            "success_ci": [lo, hi],
            "intervention_rate": self.intervention_rate,
            "violations": self.violations,
            "violation_examples": [e for v in self.verdicts for e in v.violation_examples][:3],
            "estops": sum(v.estop for v in self.verdicts),
            "injected": self.injected,
            "detected": self.detected,
            "detection_rate": self.detection_rate,
            "estop_latency_cycles": est,
            "detection_latency_cycles": self.worst_latency(),
            "min_human_distance_m": self.min_human_distance,
            "min_separation_margin_m": self.min_separation_margin,
            "separation_breaches": sum(v.separation_breaches for v in self.verdicts),
            "policy_errors": sum(v.policy_errors for v in self.verdicts),
        }


@dataclass(frozen=True)
class Gate:
    """Pass/fail thresholds (``safety_validate.gate`` in params). ``None`` switches a check off."""

    max_violations: int = 0  # hard-limit violations at the robot, per scenario
    min_detection_rate: float = 1.0  # injected non-finite / stale / late / lost-state faults detected
    max_estop_latency_cycles: int = 1  # cycles from a non-finite command to the e-stop
    max_detection_latency_cycles: int | None = 1  # cycles from any injected fault to its detection
    max_separation_breaches: int = 0  # cycles a person was inside S_p while the arm was driven
    min_nominal_success: float | None = 0.6  # task success of the 'nominal' scenario
    max_nominal_intervention_rate: float | None = None  # share of nominal cycles the layer changed


@dataclass(frozen=True)
class GateFailure:
    """One failed check: which scenario, which check, the value and the threshold."""

    scenario: str
    check: str
    value: float
    threshold: float
    detail: str = ""

    def __str__(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.scenario}: {self.check} = {self.value:g}, threshold {self.threshold:g}{tail}"


def check_gate(results: Iterable[ScenarioResult], gate: Gate) -> list[GateFailure]:
    """Every failed check, scenario by scenario (empty: the gate passes)."""
    fails: list[GateFailure] = []
    for r in results:
        name = r.scenario.name
        if r.violations > gate.max_violations:
            ex = "; ".join(e for v in r.verdicts for e in v.violation_examples[:1])[:300]
            fails.append(GateFailure(name, "violations at the robot", r.violations, gate.max_violations, ex))
        rate = r.detection_rate
        if rate is not None and rate < gate.min_detection_rate:
            missed = {k: r.injected[k] - r.detected.get(k, 0) for k in r.injected if r.injected[k] > r.detected.get(k, 0)}
            fails.append(GateFailure(name, "fault detection rate", rate, gate.min_detection_rate, f"missed cycles: {missed}"))
        est = r.worst_latency("non_finite")
        if est is not None and (est == -1 or est > gate.max_estop_latency_cycles):
            fails.append(GateFailure(name, "e-stop latency (cycles)", math.inf if est == -1 else est, gate.max_estop_latency_cycles))
        lat = r.worst_latency()
        if gate.max_detection_latency_cycles is not None and lat is not None and (lat == -1 or lat > gate.max_detection_latency_cycles):
            fails.append(GateFailure(name, "detection latency (cycles)", math.inf if lat == -1 else lat, gate.max_detection_latency_cycles))
        breaches = sum(v.separation_breaches for v in r.verdicts)
        if breaches > gate.max_separation_breaches:
            fails.append(GateFailure(name, "separation breaches (cycles inside S_p while driven)", breaches, gate.max_separation_breaches,
                                     f"min margin {r.min_separation_margin:.3f} m"))
        if name == "nominal":
            if gate.min_nominal_success is not None and r.success_rate < gate.min_nominal_success:
                fails.append(GateFailure(name, "task success", r.success_rate, gate.min_nominal_success, f"{r.successes}/{r.episodes} episodes"))
            if gate.max_nominal_intervention_rate is not None and r.intervention_rate > gate.max_nominal_intervention_rate:
                fails.append(GateFailure(name, "intervention rate", r.intervention_rate, gate.max_nominal_intervention_rate))
    return fails


@dataclass
class BatteryConfig:
    """How the battery runs: the sim settings of the policy, episodes per scenario, seeds."""

    episodes: int = 5
    seed: int = 777000
    task: str = "reach"
    image_size: int = 96
    start_jitter: float = 0.0
    execute_steps: int = 4
    max_frame_age: float = 0.15
    smoothing: float = 15.0
    policy_fault: ActionFault | None = None  # applied on top of every scenario ("a fault-injected policy")


def run_battery(
    policy: Policy,
    envelope: Envelope,
    scenarios: list[Scenario],
    config: BatteryConfig,
    *,
    progress: Callable[[str], None] | None = None,
    env: TabletopEnv | None = None,
    trace_dir: Path | None = None,
    deployment: str = "safety-validate",
    gate: Gate | None = None,
) -> list[ScenarioResult]:
    """Every scenario for ``config.episodes`` episodes (the same seeds for every scenario).

    Args:
        policy: ``policy(obs) -> ActionChunk``.
        envelope: the params' envelope; it is run at the simulated arm's period (:func:`sim_envelope`).
        scenarios: the scenarios, in order.
        config: :class:`BatteryConfig`.
        progress: called with one line per scenario.
        env: the simulated tabletop to use (default: a new one from ``config``, closed at the end);
            a state-based policy such as the scripted expert reads the same env.
        trace_dir: write every episode there, ``<scenario>/seed-<seed>.npz`` and its envelope
            (:mod:`vla_kit.validate.traces`); ``None``: keep only the one each report shows.
        deployment: the ``deployment`` key of the envelope files written there.
        gate: the gate the results will be checked against: an episode that caught a fault later
            than it allows counts as failed (for the episode shown and listed); ``None``: latency
            is left to :func:`check_gate`.
    """
    sim_env = sim_envelope(envelope)
    results: list[ScenarioResult] = []
    own = env is None
    if env is None:
        env = make_env(config.task, seed=config.seed, image_size=config.image_size, start_jitter=config.start_jitter)
    try:
        for scenario in scenarios:
            if config.policy_fault is not None and scenario.action_fault is None:
                scenario = replace(scenario, action_fault=config.policy_fault)
            res = ScenarioResult(scenario, [], gate=gate)
            for e in range(config.episodes):
                trace = run_guarded_episode(env, policy, sim_env, scenario, seed=config.seed + e, task=config.task,
                                            execute_steps=config.execute_steps, max_frame_age=config.max_frame_age,
                                            smoothing=config.smoothing)
                res.keep(trace, judge_episode(trace))
                if trace_dir is not None:
                    res.traces[trace.seed] = save_trace(trace, Path(trace_dir) / scenario.name, deployment).relative_to(trace_dir).as_posix()
            results.append(res)
            if progress is not None:
                row = res.row()
                progress(f"{scenario.name:18s} success {res.successes}/{res.episodes}  interventions {row['intervention_rate']:.1%}  "
                         f"violations {res.violations}  detection {'-' if res.detection_rate is None else f'{res.detection_rate:.0%}'}")
    finally:
        if own:
            env.close()
    return results


def summary(results: list[ScenarioResult]) -> dict:
    """Headline numbers over the whole battery."""
    inj = sum(sum(r.injected.values()) for r in results)
    det = sum(sum(r.detected.values()) for r in results)
    est = [lat for lat in (r.worst_latency("non_finite") for r in results) if lat is not None]
    nominal = next((r for r in results if r.scenario.name == "nominal"), None)
    return {
        "scenarios": len(results),
        "episodes": sum(r.episodes for r in results),
        "violations": sum(r.violations for r in results),
        "faults_injected": inj,
        "faults_detected": det,
        "detection_rate": det / inj if inj else None,
        "estop_latency_cycles": None if not est else (-1 if -1 in est else max(est)),
        "nominal_success_rate": None if nominal is None else nominal.success_rate,
        "nominal_intervention_rate": None if nominal is None else nominal.intervention_rate,
        "min_separation_margin_m": min((r.min_separation_margin for r in results if r.min_separation_margin is not None), default=None),
    }
