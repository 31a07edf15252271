"""Judging a candidate: the same inputs, the same episode seeds, the same clock for every one.

For each candidate artifact a fresh worker process loads the policy with its backend,
then measures, in this order:

1. **outputs** on the held-out parity observations (written back for the action-error check);
2. **latency**: ``predict`` at batch 1 after a warm-up, ``latency_iters`` samples, p50/p90/p99;
3. **throughput**: ``predict_batch`` at ``throughput_batch``;
4. **peak memory**: the worker's peak resident set above what it held before loading the policy;
5. **closed-loop success** on the baseline's episode seeds (skipped when parity already failed).

A fresh process per candidate means one candidate's threads, allocator state or crash (a
segfaulting engine) cannot colour another's numbers: a dead worker becomes ``error: ...`` and the
stage goes on. The thread count is set in the worker before anything runs and recorded.

The main process compares outputs with the baseline's (:func:`action_error`) and success with
the baseline's, episode by episode (:func:`paired_difference`, Newcombe's interval for a
difference of paired proportions).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vla_kit.learn.evaluate import wilson_interval
from vla_kit.types import Observation

__all__ = [
    "JudgeConfig",
    "WorkerResult",
    "save_observations",
    "load_observations",
    "measure_in_worker",
    "action_error",
    "paired_difference",
    "artifact_size_bytes",
]


@dataclass(frozen=True)
class JudgeConfig:
    """How every candidate is measured (one config per optimize run).

    Attributes:
        threads: intra-op threads every backend runs with (recorded; results depend on it).
        warmup: ``predict`` calls before timing starts.
        latency_iters: timed batch-1 calls.
        throughput_batch: batch size of the throughput measurement.
        throughput_iters: timed batches.
        tasks, colours, image_size, start_jitter, control_dt: the closed-loop episodes (from the
            training dataset's generation parameters).
        eval_episodes: closed-loop episodes per candidate (0 = skip closed loop).
        eval_seed: first episode seed; candidate and baseline see the same seeds.
        execute_steps: chunk steps executed before re-planning.
        timeout_s: wall-clock budget per worker; past it the candidate is an error.
    """

    threads: int = 1
    warmup: int = 10
    latency_iters: int = 100
    throughput_batch: int = 16
    throughput_iters: int = 5
    tasks: tuple[str, ...] = ("reach",)
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    image_size: int = 96
    start_jitter: float = 0.0
    control_dt: float = 0.1
    eval_episodes: int = 8
    eval_seed: int = 12345
    execute_steps: int = 4
    timeout_s: float = 1800.0


@dataclass
class WorkerResult:
    """What one worker measured. ``error`` is set (and the rest may be empty) when it failed."""

    backend: str = ""
    threads: int = 0
    load_s: float = float("nan")
    latency_ms: list[float] = field(default_factory=list)
    throughput_obs_per_s: float = float("nan")
    peak_memory_mib: float = float("nan")
    outputs_path: str = ""
    episode_success: list[bool] = field(default_factory=list)
    episode_seeds: list[int] = field(default_factory=list)
    error: str = ""

    def percentile(self, q: float) -> float:
        """Latency percentile in ms (NaN when nothing was timed)."""
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else float("nan")


def save_observations(path: Path, observations: Sequence[Observation]) -> Path:
    """Write observations (one camera name set) to an ``.npz`` a worker can read back."""
    cameras = sorted(observations[0].images)
    arrays = {f"image.{c}": np.stack([o.images[c] for o in observations]) for c in cameras}
    arrays["proprio"] = np.stack([o.proprio for o in observations]).astype(np.float32)
    arrays["instruction"] = np.array([o.instruction for o in observations])
    np.savez(path, **arrays)
    return Path(path)


def load_observations(path: Path) -> list[Observation]:
    """Inverse of :func:`save_observations`."""
    with np.load(path, allow_pickle=False) as z:
        cams = {k.split(".", 1)[1]: z[k] for k in z.files if k.startswith("image.")}
        proprio, text = z["proprio"], z["instruction"]
    return [Observation(images={c: v[i] for c, v in cams.items()}, instruction=str(text[i]), proprio=proprio[i]) for i in range(len(text))]


def _proc_status_bytes(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc/self/status``, in bytes.

    ``VmHWM`` (the resident high-water mark) belongs to this process's address space, so it starts
    afresh in the worker; ``getrusage``'s ``ru_maxrss`` would carry the parent's peak across exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def _worker(artifact: str, observations: str, outputs: str, cfg: JudgeConfig, load_options: dict[str, Any], run_closed_loop: bool) -> WorkerResult:
    """Runs in the fresh process: everything is imported and set here."""
    import torch

    torch.set_num_threads(cfg.threads)
    os.environ["OMP_NUM_THREADS"] = str(cfg.threads)
    from vla_kit.policy import load_policy

    res = WorkerResult(threads=cfg.threads)
    obs = load_observations(Path(observations))
    rss_before = _proc_status_bytes("VmRSS")
    t0 = time.perf_counter()
    policy = load_policy(artifact, **load_options)
    res.load_s = time.perf_counter() - t0
    res.backend = policy.name
    chunks = np.stack([c.actions for c in policy.predict_batch(obs)]).astype(np.float32)
    normalised = policy.spec.normalization.action.normalize(chunks).astype(np.float32)
    np.save(outputs, normalised)
    for i in range(cfg.warmup):
        policy.predict(obs[i % len(obs)])
    samples = []
    for i in range(cfg.latency_iters):
        o = obs[i % len(obs)]
        t = time.perf_counter_ns()
        policy.predict(o)
        samples.append((time.perf_counter_ns() - t) / 1e6)
    res.latency_ms = samples
    batch = [obs[i % len(obs)] for i in range(cfg.throughput_batch)]
    policy.predict_batch(batch)
    t = time.perf_counter()
    for _ in range(cfg.throughput_iters):
        policy.predict_batch(batch)
    res.throughput_obs_per_s = cfg.throughput_batch * cfg.throughput_iters / (time.perf_counter() - t)
    peak = _proc_status_bytes("VmHWM")
    res.peak_memory_mib = max(0.0, (peak - rss_before) / 2**20)
    res.outputs_path = outputs
    if run_closed_loop and cfg.eval_episodes > 0:
        from vla_kit.learn.evaluate import evaluate_policy
        from vla_kit.sim.quiet import quiet_c_stdout

        with quiet_c_stdout():
            report = evaluate_policy(
                policy, tasks=list(cfg.tasks), colours=list(cfg.colours), episodes=cfg.eval_episodes, seed=cfg.eval_seed,
                execute_steps=cfg.execute_steps, image_size=cfg.image_size, control_dt=cfg.control_dt,
                start_jitter=cfg.start_jitter, keep_filmstrip=False,
            )
        res.episode_success = [e.success for e in report.episodes]
        res.episode_seeds = [e.seed for e in report.episodes]
    return res


def _guarded_worker(*args: Any) -> WorkerResult:
    try:
        return _worker(*args)
    except BaseException as exc:  # noqa: BLE001 - reported as the candidate's error, never raised past here
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" (at {Path(last.filename).name}:{last.lineno})" if last else ""
        return WorkerResult(error=f"{type(exc).__name__}: {exc}{where}")


def measure_in_worker(
    artifact: Path,
    observations: Path,
    outputs: Path,
    cfg: JudgeConfig,
    *,
    load_options: dict[str, Any] | None = None,
    run_closed_loop: bool = True,
) -> WorkerResult:
    """Measure one candidate in a fresh Python process; never raises for candidate faults.

    The worker is ``python -m vla_kit.optimize.judge REQUEST.json``: a plain subprocess, so it
    works the same from a script, a notebook kernel or the CLI, and a crash inside an engine
    only ends the worker.

    Args:
        artifact: the candidate's artifact folder.
        observations: the parity observations (:func:`save_observations`).
        outputs: where the worker writes its normalised chunks (``.npy``).
        cfg: the shared measurement config.
        load_options: ``load_policy`` keywords (``backend``, ``threads`` for ONNX Runtime ...).
        run_closed_loop: run the simulator episodes.

    Returns:
        The measurements, or a :class:`WorkerResult` whose ``error`` says what went wrong
        (exception text, a crashed worker with its last output lines, or the timeout).
    """
    outputs = Path(outputs)
    request = outputs.with_suffix(".request.json")
    result = outputs.with_suffix(".result.json")
    result.unlink(missing_ok=True)
    request.write_text(json.dumps({
        "artifact": str(artifact), "observations": str(observations), "outputs": str(outputs), "result": str(result),
        "cfg": asdict(cfg), "load_options": dict(load_options or {}), "run_closed_loop": run_closed_loop,
    }))
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.threads), "MKL_NUM_THREADS": str(cfg.threads)}
    try:
        proc = subprocess.run([sys.executable, "-m", "vla_kit.optimize.judge", str(request)], env=env,
                              capture_output=True, text=True, timeout=cfg.timeout_s)
    except subprocess.TimeoutExpired:
        return WorkerResult(error=f"timed out after {cfg.timeout_s:.0f} s")
    if not result.is_file():
        tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:])
        return WorkerResult(error=f"the worker process died (exit code {proc.returncode}): {tail or 'no output'}")
    data = json.loads(result.read_text())
    return WorkerResult(**data)


def _main(request_path: str) -> int:
    req = json.loads(Path(request_path).read_text())
    cfg = JudgeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in req["cfg"].items()})
    res = _guarded_worker(req["artifact"], req["observations"], req["outputs"], cfg, req["load_options"], req["run_closed_loop"])
    tmp = Path(req["result"] + ".tmp")
    tmp.write_text(json.dumps(asdict(res)))
    tmp.rename(req["result"])
    return 0


def action_error(candidate: np.ndarray, baseline: np.ndarray) -> dict[str, float]:
    """Candidate vs baseline chunks, both normalised ``[N, T, D]`` (units: the demonstrations' std).

    Returns:
        ``mean_abs``, ``max_abs``, and ``cosine`` (mean over observations of the cosine between
        the flattened chunks); ``finite`` is 0.0 when the candidate produced NaN or infinity.
    """
    if candidate.shape != baseline.shape:
        raise ValueError(f"candidate outputs have shape {candidate.shape}, baseline {baseline.shape}")
    if not np.all(np.isfinite(candidate)):
        return {"mean_abs": float("inf"), "max_abs": float("inf"), "cosine": float("nan"), "finite": 0.0}
    diff = np.abs(candidate.astype(np.float64) - baseline)
    a = candidate.reshape(len(candidate), -1).astype(np.float64)
    b = baseline.reshape(len(baseline), -1).astype(np.float64)
    cos = np.sum(a * b, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"mean_abs": float(diff.mean()), "max_abs": float(diff.max()), "cosine": float(cos.mean()), "finite": 1.0}


def paired_difference(baseline: Sequence[bool], candidate: Sequence[bool], z: float = 1.959963984540054) -> dict[str, float]:
    """Success difference ``candidate - baseline`` on the same episodes, with a 95 % interval.

    Newcombe (1998), method 10: Wilson intervals for each rate, combined with the (continuity-
    corrected) correlation of the paired outcomes. Paired episodes (same seeds) make the interval much narrower than two
    independent samples would.

    Returns:
        ``diff``, ``ci_low``, ``ci_high`` (fractions, -1..1), ``n``, and the discordant counts
        ``only_baseline`` / ``only_candidate``.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError(f"need two equally long non-empty outcome lists, got {len(baseline)} and {len(candidate)}")
    n = len(baseline)
    a = sum(1 for x, y in zip(baseline, candidate) if x and y)
    b = sum(1 for x, y in zip(baseline, candidate) if x and not y)
    c = sum(1 for x, y in zip(baseline, candidate) if not x and y)
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    # Newcombe's continuity-corrected correlation: A = ad - bc shrunk by n/2 when positive.
    big_a = a * d - b * c
    if denom == 0 or 0 <= big_a <= n / 2:
        phi = 0.0
    else:
        phi = (big_a - n / 2 if big_a > n / 2 else big_a) / math.sqrt(denom)
    delta = math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    eps = math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    diff = p2 - p1
    return {"diff": diff, "ci_low": max(-1.0, diff - delta), "ci_high": min(1.0, diff + eps), "n": n, "only_baseline": b, "only_candidate": c}


def artifact_size_bytes(folder: Path) -> int:
    """Bytes of the files a deployment ships: everything in the artifact folder."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
