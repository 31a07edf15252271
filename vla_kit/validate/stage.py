"""The safety_validate stage: load the policy, run the battery through the layer, judge, gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vla_kit.safety.envelope import Envelope
from vla_kit.safety.perturb import ActionFault
from vla_kit.safety.scenarios import select_scenarios
from vla_kit.validate.battery import BatteryConfig, Gate, GateFailure, ScenarioResult, check_gate, run_battery, summary

__all__ = ["ValidationResult", "run_safety_validate", "policy_sim_settings", "describe_policy", "policy_line", "envelope_table",
           "traces_note", "failed_episodes"]


@dataclass
class ValidationResult:
    """The battery's results, the gate's verdict and what the report records."""

    results: list[ScenarioResult]
    failures: list[GateFailure]
    gate: Gate
    config: BatteryConfig
    policy: dict[str, Any] = field(default_factory=dict)  # which artifact was validated (describe_policy)

    @property
    def passed(self) -> bool:
        return not self.failures

    def rows(self) -> list[dict]:
        return [r.row() for r in self.results]

    def metrics(self) -> dict[str, Any]:
        """Everything for ``metrics.json``: headline numbers, the verdict and one row per scenario."""
        out = summary(self.results)
        out.update({
            "gate_passed": self.passed,
            "gate_failures": [str(f) for f in self.failures],
            "episodes_per_scenario": self.config.episodes,
            "eval_seed": self.config.seed,
            "task": self.config.task,
            "policy_fault": None if self.config.policy_fault is None else self.config.policy_fault.kind,
            "policy": self.policy,
            "scenario_results": self.rows(),
            "episode_results": [{"scenario": r.scenario.name, **v.row(r.gate), "trace": r.traces.get(v.seed)}
                                for r in self.results for v in r.verdicts],
        })
        return out

    def failed_focus(self) -> ScenarioResult | None:
        """The first scenario the gate failed that has a trace (its shown episode is the failing one)."""
        failed = {f.scenario for f in self.failures}
        return next((r for r in self.results if r.scenario.name in failed and r.trace is not None), None)

    def focus(self, category: str) -> ScenarioResult | None:
        """The scenario of ``category`` where the layer did most (for the trajectory plots)."""
        pool = [r for r in self.results if r.scenario.category == category and r.trace is not None]
        return max(pool, key=lambda r: r.intervention_rate, default=None)


def traces_note(result: ValidationResult, trace_dir: Path | None) -> str:
    """Markdown: where the episode files are, how to audit one, and whether any episode failed."""
    failed = sum(bool(r.failed(v)) for r in result.results for v in r.verdicts)
    verdict = (f"**{failed} episode(s) failed a check**, listed below." if failed
               else "No episode failed a check (violations, undetected or late-caught faults, separation breaches).")
    files = [rel for r in result.results for rel in r.traces.values()]
    if trace_dir is None or not files:
        return verdict + " Episode files were not written (`safety_validate.save_traces: false`)."
    size = sum((Path(trace_dir) / rel).stat().st_size for rel in files)
    failing = [r.traces[v.seed] for r in result.results for v in r.verdicts if r.failed(v) and v.seed in r.traces]
    stem = "artifacts/traces/" + (failing or files)[0].removesuffix(".npz")  # the example: a failed episode when there is one
    return (f"{len(files)} episode files in `artifacts/traces/<scenario>/seed-<seed>.npz` ({size / 2**20:.1f} MiB), each with "
            f"its envelope as a params file. Audit one again from the run folder:\n\n"
            f"`vla-kit safety audit --params {stem}.yaml --input {stem}.npz`\n\n{verdict}")


def failed_episodes(result: ValidationResult):
    """The episodes that failed a check on their own (scenario, seed, what failed, file), or ``None``."""
    import pandas as pd

    rows = [{"scenario": r.scenario.name, "seed": str(v.seed), "failed": r.failed(v), "success": v.success,  # a seed is a name, not a quantity
             "interventions": v.interventions, "trace": r.traces.get(v.seed, "—")}
            for r in result.results for v in r.verdicts if r.failed(v)]
    return pd.DataFrame(rows) if rows else None


def policy_sim_settings(spec: Any) -> dict[str, Any]:
    """Image size, start jitter and task family the policy was trained with (from its policy.json)."""
    trained = (spec.provenance or {}).get("dataset", {})
    tasks = trained.get("tasks") or ["reach"]
    return {"image_size": int(spec.cameras.height), "start_jitter": float(trained.get("start_jitter", 0.0)),
            "task": "reach" if "reach" in tasks else tasks[0]}


def describe_policy(policy_dir: str | Path) -> dict[str, Any]:
    """Which artifact a report speaks for: folder, backend, how it was made (its lineage), and the
    sha256 of its ``checksums.json``, which names every byte of it (an optimised child also
    records its trained parent's).

    Raises:
        ArtifactError: the artifact is missing, malformed or fails its checksums.
    """
    from vla_kit.policy.artifact import resolve_artifact_dir, verify_artifact

    folder = resolve_artifact_dir(policy_dir)
    return _description(folder, verify_artifact(folder))


def _step(step: Any) -> str:
    """A lineage step in words: its technique, or ``run on <backend>`` for a backend-only selection."""
    return f"run on {step.options.get('backend')}" if step.technique == "backend" else step.technique


def _description(folder: Path, spec: Any) -> dict[str, Any]:
    from vla_kit.policy.artifact import CHECKSUMS_FILE, sha256_file

    return {
        "artifact": str(folder),
        "backend": spec.backend,
        "preset": spec.preset,
        "lineage": " -> ".join(["trained", *(_step(step) for step in spec.lineage)]),
        "checksums_sha256": sha256_file(folder / CHECKSUMS_FILE),
        "parent_sha256": spec.lineage[0].parent_sha256 if spec.lineage else None,
    }


def policy_line(info: dict[str, Any]) -> str:
    """One markdown line naming the validated artifact (from :func:`describe_policy`)."""
    parent = f"; trained parent `{info['parent_sha256'][:12]}`" if info.get("parent_sha256") else ""
    return (f"Policy under test: `{info['artifact']}` — backend **{info['backend']}**, {info['lineage']}"
            f" (preset {info['preset']}); checksums sha256 `{info['checksums_sha256'][:12]}`{parent}.")


def run_safety_validate(
    policy_dir: str | Path,
    envelope: Envelope,
    *,
    scenarios: list[str] | None = None,
    episodes: int = 5,
    seed: int = 777000,
    execute_steps: int = 4,
    max_frame_age: float = 0.15,
    smoothing: float = 15.0,
    policy_fault: str = "",
    gate: Gate | None = None,
    threads: int = 1,
    progress: Callable[[str], None] | None = None,
    trace_dir: str | Path | None = None,
    deployment: str = "safety-validate",
) -> ValidationResult:
    """Validate the policy artifact at ``policy_dir`` against ``envelope`` (see :mod:`vla_kit.validate`).

    ``policy_dir`` is a trained artifact or an optimised one (``latest:optimize/artifacts/selected``):
    it runs on the backend its ``policy.json`` records, with ``threads`` intra-op threads. With
    ``trace_dir`` every episode is written there for ``vla-kit safety audit``
    (:mod:`vla_kit.validate.traces`; ``deployment`` names the envelope files' deployment).

    Raises:
        ArtifactError: the artifact is missing, malformed or fails its checksums.
        InputError: an unknown scenario or fault name.
    """
    import torch

    from vla_kit.policy.artifact import resolve_artifact_dir, verify_artifact
    from vla_kit.policy.backends import get_backend
    from vla_kit.policy.load import thread_options

    torch.set_num_threads(threads)
    folder = resolve_artifact_dir(policy_dir)
    spec = verify_artifact(folder)
    policy = get_backend(spec.backend).load(folder, spec, **thread_options(spec.backend, threads))
    sim = policy_sim_settings(policy.spec)
    fault = ActionFault(policy_fault, start=3, length=40) if policy_fault else None
    config = BatteryConfig(episodes=episodes, seed=seed, task=sim["task"], image_size=sim["image_size"],
                           start_jitter=sim["start_jitter"], execute_steps=execute_steps, max_frame_age=max_frame_age,
                           smoothing=smoothing, policy_fault=fault)
    chosen = select_scenarios(scenarios)
    gate = gate or Gate()
    results = run_battery(policy.predict, envelope, chosen, config, progress=progress,
                          trace_dir=None if trace_dir is None else Path(trace_dir), deployment=deployment, gate=gate)
    return ValidationResult(results, check_gate(results, gate), gate, config, _description(folder, spec))


def envelope_table(envelope: Envelope):
    """The per-joint limits the layer enforces, as a table (rad, rad/s, rad/s², rad/s³)."""
    import pandas as pd

    from vla_kit.robots.models import get_robot_model

    lim = envelope.limits
    names = get_robot_model(envelope.robot).joint_names
    return pd.DataFrame({
        "joint": names,
        "q_min (rad)": np.round(lim.q_min, 4), "q_max (rad)": np.round(lim.q_max, 4),
        "v_max (rad/s)": lim.v_max, "a_max (rad/s²)": lim.a_max, "j_max (rad/s³)": lim.j_max,
    })
