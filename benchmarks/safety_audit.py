"""Throughput of the vectorised trajectory audit (``vla-kit safety audit``).

    .venv/bin/python benchmarks/safety_audit.py                    # 10^6 samples, about 10 s
    .venv/bin/python benchmarks/safety_audit.py --samples 200000 --json out.json

Audits a 7-DoF Panda trajectory (smooth motion with a sprinkling of violations: jumps, a NaN,
excursions past the position limits) against the joint envelope and against the envelope with
every Cartesian check on, and reports samples (commands) per second, best of ``--repeat``
runs. Target: >= 10^6 commands/s with the joint checks. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from vla_kit.safety import Envelope
from vla_kit.safety.audit import audit_trajectory

HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
CARTESIAN = {
    "cartesian": {
        "tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]},
        "elbow_box": {"min": [-0.4, -0.6, 0.2], "max": [0.6, 0.6, 1.1]},
        "planes": [{"normal": [0.0, 0.0, 1.0], "offset": 0.05}],
        "tcp_speed_max": 1.0,
        "tool_cone_deg": 60.0,
    },
    "obstacles": {"spheres": [{"centre": [0.6, 0.4, 0.3], "radius": 0.1}], "boxes": [{"min": [0.5, -0.6, 0.0], "max": [0.8, -0.4, 0.2]}]},
}
TARGET = 1e6  # commands per second, joint checks


def trajectory(n: int, seed: int = 0) -> np.ndarray:
    """A smooth 1 kHz trajectory from HOME with about one violation per 10^4 samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.001
    q = HOME + 0.3 * (1 - np.cos(2 * np.pi * 0.2 * t))[:, None] / 2 * np.linspace(1, -1, 7)
    bad = rng.choice(n - 1, size=max(n // 10_000, 1), replace=False) + 1
    q[bad, rng.integers(0, 7, bad.size)] += rng.choice([0.05, -0.05, np.nan], bad.size)
    return q


def measure(envelope: Envelope, q: np.ndarray, repeat: int) -> tuple[float, int]:
    """Best wall time (s) of ``repeat`` audits, and the violation count."""
    best, total = np.inf, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        report = audit_trajectory(envelope, q)
        best = min(best, time.perf_counter() - t0)
        total = report.total
    return best, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="trajectory length for the joint checks (default 10^6)")
    parser.add_argument("--cartesian-samples", type=int, default=200_000, help="trajectory length with Cartesian checks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; the best is reported")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = parser.parse_args()
    rows = []
    for name, cfg, n in (("joint checks", {}, args.samples), ("joint + Cartesian + obstacles", CARTESIAN, args.cartesian_samples)):
        env = Envelope.from_dict(cfg, "benchmark")
        q = trajectory(n)
        seconds, violations = measure(env, q, args.repeat)
        rows.append({"scenario": name, "samples": n, "violations": violations, "seconds": seconds, "commands_per_s": n / seconds})
    print(f"{'audit (Panda, 7 joints)':32s} {'samples':>10s} {'violations':>11s} {'seconds':>9s} {'commands/s':>12s}")
    for r in rows:
        print(f"{r['scenario']:32s} {r['samples']:>10d} {r['violations']:>11d} {r['seconds']:>9.3f} {r['commands_per_s']:>12.3g}")
    ratio = rows[0]["commands_per_s"] / TARGET
    print(f"joint checks: {ratio:.2f}x the target of {TARGET:.0e} commands/s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows, "target_commands_per_s": TARGET, "ratio": ratio}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
