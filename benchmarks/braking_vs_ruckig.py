"""The layer's braking law against Ruckig's time-optimal stop (the weighing the safety issue asks for).

    .venv/bin/python benchmarks/braking_vs_ruckig.py                  # 20 000 states, about 30 s
    .venv/bin/python benchmarks/braking_vs_ruckig.py --states 100000 --json out.json

Ruckig (jerk-limited online trajectory generation, a test extra: ``pip install -e '.[test]'``)
computes the time-optimal continuous stop from a joint state ``(v, a)`` under ``a_max`` and
``j_max``. For random states over realistic limits (100 Hz .. 2 kHz, A 1..30 rad/s^2, J 50..20000
rad/s^3, |v| <= 3 rad/s) and for the Panda envelope at 1 kHz, it reports

* how much later than that optimum (from the parabola through the last three positions) the law
  reaches rest, in control cycles;
* where it stops, against the optimum's stop position (mrad);
* the separation bound ``S_s`` (:func:`vla_kit.safety.braking.stopping_bound`) over the furthest
  a stop goes, the law's or the optimum's from any continuous state through the last three
  positions (``continuous_states``; >= 1 is required, how far above 1 is the price of the
  bound), and how often the discrete law's own bound (``braking_reach_bound``) falls short;
* Ruckig's stop sampled at the control period, in backward differences after the layer's last
  positions: the jerk of its first cycles against the limit, started from the parabola through
  those positions and, naively, from ``v`` as the velocity now;
* the cost of one 7-joint stop: Ruckig's ``calculate`` (joints not synchronised, as the layer's
  stop) from Python, against the layer's closed form inside compiled code (where it runs, in the
  cycle's one compiled call; no per-call dispatch counted).

Nothing is asserted (``tests/safety/test_braking_ruckig.py`` holds the bounds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from numba import njit

from vla_kit.safety import Envelope
from vla_kit.safety.braking import braking_reach_bound, continuous_states, stopping_bound
from vla_kit.safety.kernels import brake_accel_1, braking_extent_1

try:
    import ruckig
except ImportError:  # pragma: no cover - the message is the point
    sys.exit("benchmarks/braking_vs_ruckig.py needs ruckig: pip install -e '.[test]' (or pip install ruckig)")

PERIODS = np.array([0.0005, 0.001, 0.002, 0.004, 0.008, 0.01])


@njit(cache=True)
def law_stop(v: float, a: float, h: float, a_max: float, j_max: float) -> tuple[int, float, float]:
    """Run the braking law to rest: (cycles, stop position, furthest excursion) from position 0.

    Rest is as in the braking tests: velocity rounding noise of 1e-15 of the start counts as rest
    (the layer itself works on sent positions and lands exactly)."""
    q, far, n, v0 = 0.0, 0.0, 0, abs(v)
    while not (abs(v) <= 1e-15 * (1.0 + v0) and abs(a) <= 1e-12 * a_max) and n < 10_000_000:
        alpha = brake_accel_1(v, a, h, a_max, j_max)
        v += h * alpha
        a = alpha
        q += h * v
        far = max(far, abs(q))
        n += 1
    return n, q, far


class Oracle:
    """Ruckig's time-optimal stop for one joint (velocity interface to v = a = 0)."""

    def __init__(self) -> None:
        self.otg, self.inp, self.traj = ruckig.Ruckig(1), ruckig.InputParameter(1), ruckig.Trajectory(1)
        self.inp.control_interface = ruckig.ControlInterface.Velocity
        self.inp.target_velocity, self.inp.target_acceleration = [0.0], [0.0]
        self.inp.max_velocity = [1e3]

    def stop(self, v: float, a: float, a_max: float, j_max: float) -> tuple[float, float, float]:
        """(duration s, stop position, furthest excursion) from position 0."""
        self.inp.current_position, self.inp.current_velocity, self.inp.current_acceleration = [0.0], [v], [a]
        self.inp.max_acceleration, self.inp.max_jerk = [a_max], [j_max]
        result = self.otg.calculate(self.inp, self.traj)
        if result != ruckig.Result.Working:
            raise RuntimeError(f"ruckig refused v={v!r}, a={a!r}, A={a_max!r}, J={j_max!r}: {result}")
        ext = self.traj.position_extrema[0]
        return self.traj.duration, self.traj.at_time(self.traj.duration)[0][0], max(abs(ext.min), abs(ext.max))

    def sampled_jerk(self, v_now: float, v: float, a: float, h: float, a_max: float, j_max: float, cycles: int = 4) -> float:
        """Largest |jerk| by backward differences over the first ``cycles`` of Ruckig's stop from
        ``(v_now, a)`` sampled at ``h``, after the two positions before it that give the layer's
        state ``(v, a)``, over the limit."""
        duration = self.stop(v_now, a, a_max, j_max)[0]
        t = np.minimum(np.arange(1, cycles + 1) * h, duration)
        q = [self.traj.at_time(float(ti))[0][0] for ti in t]
        hist = np.array([-2.0 * h * v + h * h * a, -h * v, 0.0] + q)  # q_{-2}, q_{-1}, q_0 consistent with (v, a)
        return float(np.abs(np.diff(hist, 3) / h**3).max()) / j_max


def sample(rng: np.random.Generator, n: int, envelope: Envelope | None) -> np.ndarray:
    """Rows (h, A, J, v, a): random limits, or the envelope's joints at its period."""
    if envelope is None:
        h = rng.choice(PERIODS, n)
        a_max, j_max = rng.uniform(1.0, 30.0, n), rng.uniform(50.0, 20000.0, n)
        v = rng.uniform(-3.0, 3.0, n)
    else:
        lim = envelope.limits
        j = rng.integers(0, lim.a_max.size, n)
        h = np.full(n, envelope.period)
        a_max, j_max, v = lim.a_max[j], lim.j_max[j], rng.uniform(-1.0, 1.0, n) * lim.v_max[j]
    return np.column_stack([h, a_max, j_max, v, rng.uniform(-1.0, 1.0, n) * a_max])


def compare(rows: np.ndarray, oracle: Oracle) -> dict[str, np.ndarray]:
    late, where, cover, short, naive, parabola = [], [], [], [], [], []
    for h, a_max, j_max, v, a in rows:
        v_now = v + 0.5 * h * a  # the parabola through the last three positions
        duration, x_stop, _ = oracle.stop(v_now, a, a_max, j_max)
        n, q_stop, law_far = law_stop(v, a, h, a_max, j_max)
        travel, _, _ = stopping_bound(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
        discrete, _ = braking_reach_bound(np.array(v), np.array(a), h, np.array(a_max), np.array(j_max))
        furthest = max(oracle.stop(vc, ac, a_max, j_max)[2] for vc, ac in continuous_states(v, a, h, a_max, j_max))
        late.append(n - duration / h)
        where.append(1e3 * (q_stop - x_stop))
        cover.append(float(travel) / max(furthest, law_far))
        short.append(float(discrete) < furthest)
        naive.append(oracle.sampled_jerk(v, v, a, h, a_max, j_max))
        parabola.append(oracle.sampled_jerk(v_now, v, a, h, a_max, j_max))
    return {k: np.array(x) for k, x in (("late", late), ("where", where), ("cover", cover), ("short", short),
                                        ("naive", naive), ("parabola", parabola))}


def cost(rows: np.ndarray, repeat: int = 2000) -> tuple[float, float]:
    """Microseconds per 7-joint stop: Ruckig's calculate from Python, and the closed form
    (braking_extent_1 for 7 joints) timed inside compiled code."""
    otg, inp, traj = ruckig.Ruckig(7), ruckig.InputParameter(7), ruckig.Trajectory(7)
    inp.control_interface, inp.synchronization = ruckig.ControlInterface.Velocity, ruckig.Synchronization.No
    inp.target_velocity, inp.target_acceleration, inp.max_velocity = [0.0] * 7, [0.0] * 7, [1e3] * 7
    sets = np.ascontiguousarray(rows[: 7 * (len(rows) // 7)].reshape(-1, 7, 5)[:repeat])
    args = [(s[:, 3].tolist(), s[:, 4].tolist(), s[:, 1].tolist(), s[:, 2].tolist()) for s in sets]
    t0 = time.perf_counter()
    for v, a, a_max, j_max in args:
        inp.current_position, inp.current_velocity, inp.current_acceleration = [0.0] * 7, v, a
        inp.max_acceleration, inp.max_jerk = a_max, j_max
        otg.calculate(inp, traj)
    t_ruckig = (time.perf_counter() - t0) / len(args)
    extents(sets, 1)  # compile outside the clock
    rounds = 20
    t0 = time.perf_counter()
    extents(sets, rounds)
    return t_ruckig * 1e6, (time.perf_counter() - t0) / (rounds * len(sets)) * 1e6


@njit(cache=True)
def extents(sets: np.ndarray, rounds: int) -> float:
    """Where the law takes each joint of every 7-joint set, ``rounds`` times over (one call)."""
    far = 0.0
    for _ in range(rounds):
        for s in range(sets.shape[0]):
            for i in range(sets.shape[1]):
                row = sets[s, i]
                _, lo, hi, _, _ = braking_extent_1(0.0, row[3], row[4], row[0], row[1], row[2])
                far = max(far, hi - lo)
    return far


def summary(name: str, r: dict[str, np.ndarray]) -> dict:
    pct = lambda x: {"min": float(x.min()), "median": float(np.median(x)), "p99_9": float(np.percentile(x, 99.9)), "max": float(x.max())}
    out = {"states": int(r["late"].size), "late_cycles": pct(r["late"]), "stop_offset_mrad": pct(r["where"]),
           "S_s_over_furthest": pct(r["cover"]), "discrete_bound_short": float(r["short"].mean()),
           "sampled_jerk_over_limit_parabola": pct(r["parabola"]), "sampled_jerk_over_limit_naive": pct(r["naive"])}
    f = lambda d: f"{d['min']:+.2f} / {d['median']:+.2f} / {d['p99_9']:+.2f} / {d['max']:+.2f}"
    print(f"\n{name}: {out['states']} states   (min / median / p99.9 / max)")
    print(f"  law reaches rest later than the optimum, cycles   {f(out['late_cycles'])}")
    print(f"  law's stop - optimum's stop, mrad                 {f(out['stop_offset_mrad'])}")
    c = out["S_s_over_furthest"]
    print(f"  S_s bound / furthest stop, law or continuous      {c['min']:.3f} / {c['median']:.3f} / {c['p99_9']:.2f} / {c['max']:.2f}"
          "   (>= 1 required)")
    print(f"  discrete-only bound below a continuous stop       {100 * out['discrete_bound_short']:.2f} % of states")
    p, n = out["sampled_jerk_over_limit_parabola"], out["sampled_jerk_over_limit_naive"]
    print(f"  Ruckig's stop sampled at dt, first 4 cycles' jerk / limit by backward differences: from the parabola's "
          f"state {p['max']:.2f} max; taking v as the velocity now {n['median']:.2f} median, {n['max']:.2f} max")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=20_000, help="random states per scenario (default 20 000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = parser.parse_args()
    rng, oracle = np.random.default_rng(args.seed), Oracle()
    law_stop(1.0, 0.0, 0.001, 10.0, 5000.0)  # compile before anything is timed
    results = {}
    for name, env in (("random limits, 100 Hz .. 2 kHz", None), ("Panda envelope, 1 kHz", Envelope.from_dict({}, "benchmark"))):
        results[name] = summary(name, compare(sample(rng, args.states, env), oracle))
    us_ruckig, us_law = cost(sample(rng, 14_000, None))
    print(f"\none 7-joint stop: Ruckig calculate from Python {us_ruckig:.2f} us, the layer's closed form in compiled code "
          f"{us_law:.3f} us ({us_ruckig / us_law:.0f}x)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"scenarios": results, "us_per_7_joint_stop": {"ruckig": us_ruckig, "closed_form": us_law}}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
