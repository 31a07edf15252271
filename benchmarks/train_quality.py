"""Train-stage throughput and quality: data-generation frames/s, training samples/s, closed-loop success.

Issue #3 targets (not yet met, see README): tiny preset on params/ci.yaml-like data in <= 10 min on
2 cores with reach success >= 80 % over >= 60 unseen episodes and grounding >= 90 %.

Usage: .venv/bin/python benchmarks/train_quality.py [--episodes 160] [--steps 1500] [--threads 1] [--eval-episodes 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from vla_kit.learn import TrainConfig, evaluate_policy, grounding_test, train_policy
from vla_kit.sim.dataset import GenerationParams, record_dataset


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=160)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-episodes", type=int, default=60)
    ap.add_argument("--grounding-scenes", type=int, default=10)
    ap.add_argument("--start-jitter", type=float, default=0.1)
    ap.add_argument("--action-noise", type=float, default=0.01)
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args()
    out: dict = {"args": vars(a)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ds = record_dataset(Path(tmp) / "ds", GenerationParams(tasks=("reach",), colours=("red", "green", "blue", "yellow"), episodes=a.episodes,
                                                                seed=0, start_jitter=a.start_jitter, action_noise=a.action_noise))
        gen_s = time.perf_counter() - t0
        out["data_frames"] = ds.info["total_frames"]
        out["data_frames_per_s"] = ds.info["total_frames"] / gen_s
        res = train_policy(ds, TrainConfig(steps=a.steps, batch_size=a.batch_size, threads=a.threads, log_every=100, eval_every=500))
        out["train_samples_per_s"] = res.samples_per_s
        out["train_time_s"] = res.train_time_s
        out["final_train_loss"] = res.history[-1]["train_loss"]
        t1 = time.perf_counter()
        ev = evaluate_policy(res.policy(), tasks=["reach"], episodes=a.eval_episodes, seed=12345, start_jitter=a.start_jitter, keep_filmstrip=False)
        g = grounding_test(res.policy(), scenes=a.grounding_scenes, seed=12345 + a.eval_episodes, start_jitter=a.start_jitter)
        out["eval_time_s"] = time.perf_counter() - t1
        out["reach_success"] = ev.overall.rate
        out["reach_success_ci95"] = [ev.overall.ci_low, ev.overall.ci_high]
        out["grounding_accuracy"] = g.accuracy
        out["total_time_s"] = time.perf_counter() - t0
    for k, v in out.items():
        if k != "args":
            print(f"{k:<22} {v if not isinstance(v, float) else f'{v:.4g}'}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
