"""Plain randomized stress: 10^5 commands through the layer, zero violations allowed.

The stream mixes what a policy really sends (smooth in-limit motion) with what a broken one
might (pushes past position limits, sign flips, noise, NaN, absurd jumps), on both robots and
with Cartesian limits on. Every output is monitored by backward differences (and, with Cartesian
limits, by forward kinematics); every 50th state is checked for a feasible stop; the e-stop is
reset whenever it has brought the arm to rest.
The 10^6-command version is ``benchmarks/safety_filter.py --stress 1000000``.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.safety.stress import run_stress

from tests.safety.streams import make_layer

CARTESIAN = {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}, "tcp_speed_max": 1.0, "tcp_speed_max_reduced": 0.25,
             "tool_cone_deg": 60.0}


def stress(cfg: dict, n: int, seed: int):
    layer, env = make_layer(cfg)
    q = (env.limits.q_min + env.limits.q_max) / 2
    if env.robot == "panda":
        q = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
    return run_stress(layer, q, n, seed)


@pytest.mark.parametrize(
    "cfg,n,seed",
    [
        ({"robot": "panda"}, 45_000, 1),
        ({"robot": "ur5"}, 25_000, 2),
        ({"robot": "panda", "on_violation": "reject"}, 10_000, 3),
        ({"robot": "panda", "cartesian": CARTESIAN}, 20_000, 4),
    ],
    ids=["panda-clamp", "ur5-clamp", "panda-reject", "panda-cartesian"],
)
def test_a_hundred_thousand_random_commands_produce_zero_violations(cfg, n, seed):
    counts = stress(cfg, n, seed)
    assert counts["violations"] == 0 and counts["not_stoppable"] == 0 and counts["cartesian"] == 0, counts
    assert counts["intervened"] > n // 10 and counts["estops"] > 0  # the stream really was adversarial
