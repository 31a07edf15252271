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

from vla_kit.safety import RobotState, StreamMonitor
from vla_kit.safety.adversary import AdversarialCommands
from vla_kit.safety.braking import braking_extent

from tests.safety.streams import make_layer

CARTESIAN = {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}, "tcp_speed_max": 1.0, "tcp_speed_max_reduced": 0.25,
             "tool_cone_deg": 60.0}


def stress(cfg: dict, n: int, seed: int) -> dict[str, int]:
    layer, env = make_layer(cfg)
    lim, dt = env.limits, env.period
    rng = np.random.default_rng(seed)
    q = (lim.q_min + lim.q_max) / 2
    if env.robot == "panda":
        q = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
    monitor = StreamMonitor(env, q)
    counts = {"commands": 0, "intervened": 0, "estops": 0, "not_stoppable": 0, "cartesian": 0, "violations": 0}
    box = cfg.get("cartesian", {}).get("tcp_box")
    source = AdversarialCommands(lim, dt, rng)
    while counts["commands"] < n:
        cmd, new_segment = source.next(q)
        if new_segment and source.toggle_reduced:
            layer.set_reduced(not layer.reduced)
        d = layer.filter(cmd, RobotState(q=q), dt)
        q = d.command_sent
        monitor.observe(q, dt)
        counts["commands"] += 1
        counts["intervened"] += d.intervened
        if box is not None:  # the TCP never leaves its box, the tool never leaves its cone
            kin = layer.model.forward(q)
            p = kin.tcp_position
            counts["cartesian"] += int(np.any(p < box["min"]) or np.any(p > box["max"]))
            counts["cartesian"] += int(np.degrees(np.arccos(-kin.tool_z[2])) > cfg["cartesian"]["tool_cone_deg"])
        if counts["commands"] % 50 == 0:
            ext = braking_extent(monitor.q, monitor.v, monitor.a, dt, lim.a_max, lim.j_max)
            counts["not_stoppable"] += int(np.any(ext.q_high > lim.q_max) or np.any(ext.q_low < lim.q_min))
        if layer.estop_latched and layer.memory.at_rest:
            counts["estops"] += 1
            layer.reset_estop()
            counts["violations"] += monitor.report.total  # keep what the old monitor saw
            monitor = StreamMonitor(env, q)  # the layer restarts from rest here too
    counts["violations"] += monitor.report.total
    return counts


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
