"""Glue for the ``optimize`` stage: params -> candidates built -> judged -> one selected.

Data flow::

    policy (latest:train) ──► baseline: torch eager fp32 ──► parity outputs, latency, success
          │                                                        ▲ same observations, same seeds
          └─► for each candidate: build_chain(steps) ──► worker ───┘
                                                          └─► row (status, error, latency, success ...)
    rows ──► select_candidate(budgets) ──► artifacts/selected/  (or the gate fails the run)

The parity observations come from the held-out (validation) episodes of the policy's training
dataset; calibration observations from its training episodes; the two never overlap.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vla_kit.errors import ArtifactError, InputError, RegistryError
from vla_kit.optimize.judge import (
    JudgeConfig,
    WorkerResult,
    action_error,
    artifact_size_bytes,
    measure_in_worker,
    paired_difference,
    save_observations,
)
from vla_kit.optimize.select import Budgets, explain_selection, select_candidate
from vla_kit.optimize.techniques import OptimizeContext, Step, build_chain, chain_key, get_technique, parse_step, write_derived
from vla_kit.policy.artifact import CHECKSUMS_FILE, POLICY_FILE, resolve_artifact_dir, sha256_file, verify_artifact
from vla_kit.policy.backends import get_backend
from vla_kit.policy.load import thread_options
from vla_kit.policy.spec import PolicySpec
from vla_kit.sim.dataset import Dataset, GenerationParams, split_episodes
from vla_kit.types import Observation

__all__ = ["Candidate", "OptimizeResult", "parse_candidates", "dataset_observations", "run_optimize", "BASELINE"]

BASELINE = "eager-fp32"  # the reference every candidate is compared with: the input artifact, torch eager


@dataclass(frozen=True)
class Candidate:
    """A named chain of steps, run with ``backend`` (``None`` = the backend its artifact records)."""

    name: str
    steps: tuple[Step, ...] = ()
    backend: str | None = None

    def describe(self) -> str:
        """``onnx -> ort-int8-static(method=entropy)``, or ``(input artifact)``."""
        chain = " -> ".join(s.describe() for s in self.steps) or "(input artifact)"
        return chain + (f" @ {self.backend}" if self.backend else "")


def parse_candidates(raw: Sequence[Mapping[str, Any]], where: str = "optimize.candidates") -> list[Candidate]:
    """Candidates from params (``[{name, steps, backend}]``), every step and backend checked.

    Raises:
        InputError / RegistryError: a duplicate or reserved name, an unknown technique or backend,
            or bad technique options; the message names the list position.
    """
    out: list[Candidate] = []
    seen = {BASELINE}
    for i, item in enumerate(raw):
        here = f"{where}[{i}]"
        name = str(item.get("name", ""))
        if not name or name in seen:
            raise InputError(f"{here}.name", f"{name!r} is empty, reserved or used twice (names must be unique; {BASELINE!r} is the baseline)")
        seen.add(name)
        raw_steps = item.get("steps") or []
        if not isinstance(raw_steps, (list, tuple)):
            raise InputError(f"{here}.steps", f"expected a list of steps, e.g. [onnx, ort-int8-dynamic], got {raw_steps!r}")
        try:
            steps = tuple(parse_step(s, f"{here}.steps[{j}]") for j, s in enumerate(raw_steps))
            backend = item.get("backend") or None
            if backend is not None:
                get_backend(backend)
        except RegistryError as exc:
            raise InputError(here, str(exc)) from None
        out.append(Candidate(name, steps, backend))
    return out


def dataset_observations(dataset: Dataset, *, split: str, count: int, seed: int) -> list[Observation]:
    """``count`` observations spread evenly over the validation or training episodes' frames.

    Args:
        split: ``"val"`` (held out from training: parity) or ``"train"`` (calibration).

    Raises:
        InputError: the split has no frames.
    """
    train_idx, val_idx = split_episodes(dataset, 0.1, seed)
    idx = val_idx if split == "val" else train_idx
    if len(idx) == 0:
        raise InputError("dataset", f"the {split} split has no frames; record more episodes")
    pick = idx[np.linspace(0, len(idx) - 1, min(count, len(idx))).round().astype(int)]
    images, states, text = dataset.images("front"), dataset.states(), dataset.instructions()
    return [Observation(images={"front": images[i]}, instruction=text[i], proprio=states[i]) for i in pick]


def _precision(spec: PolicySpec) -> str:
    names = " ".join(step.technique for step in spec.lineage)
    for tag in ("int8", "fp16", "bf16"):
        if tag in names:
            return tag
    return "fp32"


def inference_flops(spec: PolicySpec) -> float:
    """Floating-point operations of one batch-1 forward pass of ``spec.model`` (multiply-add = 2).

    Counted by torch's FlopCounterMode in training mode (dropout is 0, so the arithmetic is the
    inference arithmetic; eval mode would take a fused kernel the counter does not see).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vla_kit.policy.model import build_model

    c = spec.model
    model = build_model(c, seed=0).train()
    images = torch.zeros(1, c.num_cameras, c.image_height, c.image_width, c.channels, dtype=torch.uint8)
    ids = torch.ones(1, c.max_tokens, dtype=torch.int64)
    mask = torch.ones(1, c.max_tokens, dtype=torch.bool)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images, ids, mask, torch.zeros(1, c.proprio_dim))
    return float(counter.get_total_flops())


@dataclass
class OptimizeResult:
    """Everything the stage shows and records."""

    rows: list[dict[str, Any]]
    latency_samples: dict[str, list[float]]
    errors: dict[str, np.ndarray]  # candidate -> |candidate - baseline| per action element
    selected: str | None
    reasons: dict[str, list[str]]
    explanation: str
    selected_dir: Path | None = None
    judge: JudgeConfig = field(default_factory=JudgeConfig)

    def table(self):
        """The candidate table as a DataFrame (one row per candidate, baseline first)."""
        import pandas as pd

        cols = ["name", "chain", "backend", "precision", "status", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
                "speedup", "throughput_obs_per_s", "success_rate", "success_diff_pp", "success_diff_ci_low_pp",
                "success_diff_ci_high_pp", "action_error_mean", "action_error_max", "action_cosine", "size_mib",
                "peak_memory_mib", "build_s", "achieved_gflops", "roofline_efficiency"]
        return pd.DataFrame([{c: r.get(c) for c in cols} for r in self.rows])

    def metrics(self) -> dict[str, Any]:
        """What ``metrics.json`` records: the whole table, the selection and the headline ratios."""
        base = self.rows[0]["latency_p50_ms"]
        ok = [r for r in self.rows if r["status"] == "ok" and r["name"] != BASELINE and math.isfinite(r["latency_p50_ms"])]
        kept = [r for r in ok if r.get("success_drop_pp") is not None and r["success_drop_pp"] <= 2.0]
        return {
            "candidates": self.rows,
            "selected": self.selected,
            "baseline_latency_ms": base,
            "best_speedup": max((base / r["latency_p50_ms"] for r in ok), default=None),
            "best_speedup_within_2pp": max((base / r["latency_p50_ms"] for r in kept), default=None),
            "selection_reasons": self.reasons,
        }


def _skip_reason(candidate: Candidate) -> str | None:
    for step in candidate.steps:
        why = get_technique(step.technique).unavailable()
        if why:
            return f"{step.technique}: {why}"
    if candidate.backend:
        why = getattr(get_backend(candidate.backend), "unavailable", lambda: None)()
        if why:
            return f"backend {candidate.backend}: {why}"
    return None


def _short(message: str, limit: int = 300) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def run_optimize(
    policy: str | Path,
    candidates: Sequence[Candidate],
    *,
    dataset: Dataset,
    judge: JudgeConfig,
    budgets: Budgets,
    workdir: Path,
    selected_dir: Path | None = None,
    parity_frames: int = 64,
    calibration_frames: int = 64,
    finetune_steps: int = 200,
    seed: int = 0,
    peaks: Mapping[str, float] | None = None,
    log: Callable[[str], None] = print,
) -> OptimizeResult:
    """Build, judge and select. Candidate faults become rows; only an unusable input raises.

    Args:
        policy: the input artifact (or a run folder holding one); its checksums are verified first.
        candidates: what to build (the baseline is added in front).
        dataset: the policy's training dataset (parity, calibration, fine-tuning, distillation).
        judge: how every candidate is measured.
        budgets: the selection rule.
        workdir: where candidate artifacts are built (one folder each).
        selected_dir: where the winner is copied as a complete artifact (None = nowhere).
        parity_frames, calibration_frames: observations for action error / static calibration.
        finetune_steps: gradient steps of fine-tunes and distillation.
        seed: seeds techniques and the observation choice.
        peaks: host peaks from the survey (``fp32_gflops``, ``bf16_gflops``, ``int8_gops``) for
            roofline efficiency; None leaves it empty.
        log: one-line progress messages.

    Raises:
        ArtifactError / ChecksumMismatchError: the input artifact is missing or altered.
    """
    source = resolve_artifact_dir(policy)
    spec = verify_artifact(source)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    parity = dataset_observations(dataset, split="val", count=parity_frames, seed=seed)
    calibration = dataset_observations(dataset, split="train", count=calibration_frames, seed=seed)
    parity_path = save_observations(workdir / "parity.npz", parity)
    ctx = OptimizeContext(calibration=calibration, dataset_root=dataset.root, seed=seed, threads=judge.threads,
                          finetune_steps=finetune_steps, log=lambda m: log(f"    {m}"))
    rows: list[dict[str, Any]] = []
    samples: dict[str, list[float]] = {}
    errors: dict[str, np.ndarray] = {}
    artifacts: dict[str, Path] = {}
    base_outputs: np.ndarray | None = None
    base_success: list[bool] = []
    built: dict[tuple[str, ...], tuple[Path, float]] = {}  # chain prefixes already built, shared by the candidates

    for cand in [Candidate(BASELINE, (), "torch"), *candidates]:
        log(f"[{len(rows) + 1}/{len(candidates) + 1}] {cand.name}: {cand.describe()}")
        row: dict[str, Any] = {"name": cand.name, "chain": cand.describe(), "backend": cand.backend or "", "status": "ok",
                               "latency_p50_ms": math.nan, "size_bytes": 0, "threads": judge.threads}
        rows.append(row)
        skip = _skip_reason(cand)
        if skip:
            row["status"] = f"skipped: {_short(skip)}"
            log(f"    {row['status']}")
            continue
        t0 = time.perf_counter()
        try:
            folder = build_chain(cand.steps, source, workdir / cand.name, ctx, built) if cand.steps else source
            cspec = verify_artifact(folder)
        except Exception as exc:  # noqa: BLE001 - a failed build is a row, the run goes on
            row["status"] = f"error: {_short(f'{type(exc).__name__}: {exc}')}"
            row["build_s"] = round(time.perf_counter() - t0, 2)
            log(f"    {row['status']}")
            continue
        # the whole chain's cost, shared prefixes included: what building this candidate alone takes
        row["build_s"] = round(built[chain_key(cand.steps)][1] if cand.steps else 0.0, 2)
        backend = cand.backend or cspec.backend
        size = artifact_size_bytes(folder)
        row.update(backend=backend, precision=_precision(cspec), size_bytes=size, size_mib=size / 2**20, artifact=str(folder))
        res: WorkerResult = measure_in_worker(folder, parity_path, workdir / f"{cand.name}.outputs.npy", judge,
                                              load_options={"backend": backend, **thread_options(backend, judge.threads)},
                                              run_closed_loop=True)
        if res.error:
            if not rows[1:]:  # the baseline itself: nothing can be compared with it
                raise ArtifactError(source, f"the baseline ({cand.describe()}) could not be measured: {res.error}")
            row["status"] = f"error: {_short(res.error)}"
            log(f"    {row['status']}")
            continue
        outputs = np.load(res.outputs_path)
        samples[cand.name] = res.latency_ms
        row.update(
            latency_p50_ms=res.percentile(50), latency_p90_ms=res.percentile(90), latency_p99_ms=res.percentile(99),
            throughput_obs_per_s=res.throughput_obs_per_s, peak_memory_mib=res.peak_memory_mib, load_s=res.load_s,
            successes=int(sum(res.episode_success)), episodes=len(res.episode_success),
            success_rate=float(np.mean(res.episode_success)) if res.episode_success else math.nan,
        )
        flops = inference_flops(cspec)
        row["gflop_per_inference"] = flops / 1e9
        row["achieved_gflops"] = flops / 1e9 / (row["latency_p50_ms"] / 1e3)
        peak_key = {"int8": "int8_gops", "bf16": "bf16_gflops"}.get(row["precision"], "fp32_gflops")
        if peaks and peaks.get(peak_key):
            row["roofline_efficiency"] = row["achieved_gflops"] / float(peaks[peak_key])
        if base_outputs is None:
            base_outputs, base_success = outputs, list(res.episode_success)
            row.update(action_error_mean=0.0, action_error_max=0.0, action_cosine=1.0, speedup=1.0, success_diff_pp=0.0,
                       success_diff_ci_low_pp=0.0, success_diff_ci_high_pp=0.0, success_drop_pp=0.0)
            log(f"    p50 {row['latency_p50_ms']:.2f} ms, success {row['successes']}/{row['episodes']}")
            continue
        err = action_error(outputs, base_outputs)
        errors[cand.name] = np.abs(outputs.astype(np.float64) - base_outputs).ravel() if err["finite"] else np.array([])
        row.update(action_error_mean=err["mean_abs"], action_error_max=err["max_abs"], action_cosine=err["cosine"],
                   speedup=rows[0]["latency_p50_ms"] / row["latency_p50_ms"])
        if not err["finite"] or err["mean_abs"] > budgets.max_action_error:
            row["status"] = "failed-parity"
        if base_success and res.episode_success:
            pd_ = paired_difference(base_success, res.episode_success)
            row.update(success_diff_pp=100 * pd_["diff"], success_diff_ci_low_pp=100 * pd_["ci_low"],
                       success_diff_ci_high_pp=100 * pd_["ci_high"], success_drop_pp=-100 * pd_["diff"] + 0.0)
        artifacts[cand.name] = folder
        log(f"    {row['status']}: p50 {row['latency_p50_ms']:.2f} ms ({row['speedup']:.2f}x), error {err['mean_abs']:.3g}, "
            f"success {row['successes']}/{row['episodes']}")

    selected, reasons = select_candidate(rows, budgets)
    explanation = explain_selection(rows, selected, reasons, budgets)
    out_dir = None
    if selected is not None and selected_dir is not None:
        won = next(r for r in rows if r["name"] == selected)
        out_dir = _publish(artifacts.get(selected, source), Path(selected_dir), backend=won["backend"])
    return OptimizeResult(rows, samples, errors, selected, reasons, explanation, out_dir, judge)


def _publish(folder: Path, target: Path, *, backend: str) -> Path:
    """Copy the winner to ``target`` (temp + rename) and verify it there.

    A winner measured on another backend than its artifact records (a backend-only candidate such
    as ``{steps: [], backend: torch-compile}``) is published as a child of it that records that
    backend, with a lineage step ``backend`` naming its parent, so whatever loads the selection
    (safety_validate, deploy) runs what was measured.
    """
    spec = verify_artifact(folder)
    if backend and backend != spec.backend:
        def copy_files(into: Path) -> None:  # every file but the spec and checksums, which the child writes anew
            shutil.copytree(folder, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns(POLICY_FILE, CHECKSUMS_FILE))

        write_derived(folder, spec, target, ("backend", {"backend": backend}), copy_files, overwrite=True, backend=backend)
        verify_artifact(target)
        return target
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    verify_artifact(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def parent_sha256(policy: str | Path) -> str:
    """sha256 of an artifact's ``checksums.json`` (what lineage entries record as ``parent_sha256``)."""
    return sha256_file(resolve_artifact_dir(policy) / CHECKSUMS_FILE)


def dataset_params_of(spec: PolicySpec) -> GenerationParams:
    """The generation parameters of the dataset a policy was trained on (from its provenance).

    Raises:
        InputError: the artifact does not say (a policy trained outside vla_kit): pass ``dataset``.
    """
    raw = (spec.provenance or {}).get("dataset")
    if not isinstance(raw, dict):
        raise InputError("optimize.dataset", "the policy's provenance names no dataset; set optimize.dataset to a recorded dataset folder")
    try:
        return GenerationParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    except (TypeError, InputError) as exc:
        raise InputError("optimize.dataset", f"the policy's provenance dataset entry is unusable ({exc}); set optimize.dataset") from None



def dataset_for_policy(spec: PolicySpec, *, dataset: str, deployment: str, progress=None) -> Dataset:
    """The dataset to judge and fine-tune with: ``dataset`` if given, else the one the policy was
    trained on, reused from the deployment's cache or recorded again (same params, same bytes)."""
    from vla_kit.learn.stage import dataset_folder
    from vla_kit.sim.dataset import load_dataset, record_dataset

    if dataset:
        return load_dataset(dataset)
    gen = dataset_params_of(spec)
    return record_dataset(dataset_folder(gen, deployment), gen, progress=progress)
