"""Optimize-stage speedup: every candidate against PyTorch eager fp32, in one run, same threads.

Target (issue #4): the best candidate that keeps closed-loop success within 2 pp of the baseline
is >= 2.5x faster than eager fp32 at batch 1 on the CI machine class (2 cores, AVX-512 VNNI); the
long-term goal is >= 4x. Each candidate's achieved GFLOP/s is also put against this host's GEMM
peaks measured in the same run (roofline efficiency: how far a batch-1 policy is from the
hardware's best case).

All ratios come from one process, interleaved candidate by candidate, so a noisy shared machine
shifts every number together. Candidates are measured in fresh worker processes (see
vla_kit.optimize.judge).

Usage:
  .venv/bin/python benchmarks/optimize_speedup.py --policy outputs/demo/<train run> [--episodes 40]
      [--threads 1] [--params params/demo.yaml] [--json OUT]
Without --policy it uses the newest successful train run of the params file's deployment.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from vla_kit.optimize.judge import JudgeConfig
from vla_kit.optimize.select import Budgets
from vla_kit.optimize.stage import dataset_for_policy, parse_candidates, run_optimize
from vla_kit.params import load_params
from vla_kit.policy.artifact import resolve_artifact_dir, verify_artifact
from vla_kit.profile.peaks import measure_peaks
from vla_kit.reports.archive import latest_run

TARGET, GOAL, KEEP_PP = 2.5, 4.0, 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/demo.yaml", help="candidates and deployment come from its optimize section")
    ap.add_argument("--policy", help="artifact or train run folder (default: latest:train of the deployment)")
    ap.add_argument("--outputs", default="outputs")
    ap.add_argument("--episodes", type=int, default=None, help="closed-loop episodes per candidate (default: params)")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (default: params)")
    ap.add_argument("--latency-iters", type=int, default=None)
    ap.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = ap.parse_args()

    params = load_params(args.params)
    cfg = params.section("optimize")
    deployment = params.common.deployment
    policy = Path(args.policy) if args.policy else latest_run(Path(args.outputs), deployment, "train").path
    spec = verify_artifact(resolve_artifact_dir(policy))
    ds = dataset_for_policy(spec, dataset=cfg.dataset, deployment=deployment)
    gen = ds.info["generation"]
    threads = args.threads or cfg.threads
    print(f"measuring host peaks ({threads} thread(s)) ...", flush=True)
    peaks = measure_peaks(sizes=[256, 512], repeats=3, min_sample_ms=10, bandwidth_mib=128, bandwidth_repeats=2, threads=threads, devices=["cpu"]).for_device("cpu")
    judge = JudgeConfig(threads=threads, warmup=cfg.warmup, latency_iters=args.latency_iters or cfg.latency_iters,
                        throughput_batch=cfg.throughput_batch, throughput_iters=cfg.throughput_iters, tasks=tuple(gen["tasks"]),
                        colours=tuple(gen["colours"]), image_size=gen["image_size"], start_jitter=gen["start_jitter"],
                        control_dt=gen["control_dt"], eval_episodes=args.episodes or cfg.eval_episodes, eval_seed=cfg.eval_seed,
                        execute_steps=cfg.execute_steps, timeout_s=cfg.worker_timeout_s)
    budgets = Budgets(max_success_drop_pp=KEEP_PP, max_action_error=cfg.max_action_error)
    with tempfile.TemporaryDirectory() as work:
        result = run_optimize(policy, parse_candidates(cfg.candidates), dataset=ds, judge=judge, budgets=budgets, workdir=Path(work),
                              finetune_steps=cfg.finetune_steps, parity_frames=cfg.parity_frames, calibration_frames=cfg.calibration_frames,
                              seed=params.common.seed, peaks=peaks, log=lambda m: print(m, flush=True))
    rows = result.rows
    base = rows[0]
    print()
    print(f"policy {policy}  threads {threads}  episodes {judge.eval_episodes}  host peaks: "
          + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items() if v))
    w = max(len(r["name"]) for r in rows) + 2
    print(f"{'candidate':<{w}}{'status':<16}{'p50 ms':>8}{'p99 ms':>8}{'speedup':>9}{'success':>9}{'Δ pp [95% CI]':>20}{'GFLOP/s':>9}{'of peak':>9}")
    for r in rows:
        status = r["status"] if len(r["status"]) <= 15 else r["status"][:14] + "…"
        if not math.isfinite(r.get("latency_p50_ms", math.nan)):
            print(f"{r['name']:<{w}}{status:<16}")
            continue
        ci = f"{r.get('success_diff_pp', 0):+.0f} [{r.get('success_diff_ci_low_pp', 0):+.0f}, {r.get('success_diff_ci_high_pp', 0):+.0f}]"
        eff = r.get("roofline_efficiency")
        print(f"{r['name']:<{w}}{status:<16}{r['latency_p50_ms']:>8.2f}{r['latency_p99_ms']:>8.2f}{r['speedup']:>8.2f}x"
              f"{100 * r['success_rate']:>8.0f}%{ci:>20}{r['achieved_gflops']:>9.1f}{'' if eff is None else f'{100 * eff:.1f}%':>9}")
    m = result.metrics()
    kept = m["best_speedup_within_2pp"]
    verdict = "MET" if kept and kept >= TARGET else "NOT MET"
    print(f"\nbest speedup keeping success within {KEEP_PP:g} pp: {kept or 0:.2f}x (target >= {TARGET}x: {verdict}; goal {GOAL}x); "
          f"baseline p50 {base['latency_p50_ms']:.2f} ms; selected under these budgets: {result.selected}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": threads, "peaks": peaks, **m}, indent=2, default=str) + "\n")
    return 0 if verdict == "MET" else 1


if __name__ == "__main__":
    sys.exit(main())
