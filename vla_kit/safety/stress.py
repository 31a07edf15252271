"""Stress a safety layer with adversarial commands and count what reaches the robot.

The loop the stress test and ``benchmarks/safety_filter.py`` share: draw commands from
:class:`~vla_kit.safety.adversary.AdversarialCommands`, filter each one, assume the robot follows
what was sent, and judge the sent stream independently of the layer — the
:class:`~vla_kit.safety.monitor.StreamMonitor` (position, step, velocity, acceleration, jerk by
backward differences), a braking-reach check (a stop inside the position limits is still
possible) every ``stop_check_every`` commands, and the envelope's Cartesian keep-in data (TCP and
elbow boxes, half-spaces, tool cone) evaluated on the forward kinematics. A latched e-stop is
reset once the arm rests, and the stream carries on from there.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from vla_kit.robots.kinematics import Kinematics
from vla_kit.safety.adversary import AdversarialCommands
from vla_kit.safety.braking import braking_extent
from vla_kit.safety.envelope import CartesianParams
from vla_kit.safety.layer import SafetyLayer
from vla_kit.safety.monitor import StreamMonitor
from vla_kit.safety.state import RobotState

__all__ = ["run_stress", "outside_cartesian"]


def outside_cartesian(kin: Kinematics, cart: CartesianParams) -> bool:
    """Whether the TCP or elbow is outside a keep-in box or half-space, or the tool outside its cone."""
    tcp, elbow = kin.tcp_position, kin.elbow_position
    for box, point in ((cart.tcp_box, tcp), (cart.elbow_box, elbow)):
        if box is not None and (np.any(point < box.min) or np.any(point > box.max)):
            return True
    for plane in cart.planes:
        n = np.asarray(plane.normal)
        if n @ tcp < plane.offset or n @ elbow < plane.offset:
            return True
    return cart.tool_cone_deg is not None and float(np.degrees(np.arccos(np.clip(-kin.tool_z[2], -1.0, 1.0)))) > cart.tool_cone_deg


def run_stress(layer: SafetyLayer, q0: np.ndarray, n: int, seed: int, *, stop_check_every: int = 50) -> Counter:
    """Feed ``n`` adversarial commands through ``layer`` from rest at ``q0``.

    Returns:
        Counts: ``commands``, ``intervened``, ``estops`` (latched and reset), ``violations`` (the
        monitor's), ``not_stoppable``, ``cartesian`` (commands outside a Cartesian keep-in limit,
        checked when the envelope has any), and one count per :class:`Level` name.
    """
    env = layer.envelope
    lim, dt = env.limits, env.period
    cart = env.cartesian
    check_cartesian = cart.tcp_box is not None or cart.elbow_box is not None or bool(cart.planes) or cart.tool_cone_deg is not None
    q = np.asarray(q0, dtype=np.float64).copy()
    monitor = StreamMonitor(env, q)
    source = AdversarialCommands(lim, dt, np.random.default_rng(seed))
    counts: Counter = Counter({k: 0 for k in ("commands", "intervened", "estops", "violations", "not_stoppable", "cartesian")})
    while counts["commands"] < n:
        cmd, new_segment = source.next(q)
        if new_segment and source.toggle_reduced:
            layer.set_reduced(not layer.reduced)
        d = layer.filter(cmd, RobotState(q=q), dt)
        q = d.command_sent
        monitor.observe(q, dt)
        counts["commands"] += 1
        counts["intervened"] += d.intervened
        counts[d.level.name] += 1
        if check_cartesian:
            counts["cartesian"] += outside_cartesian(layer.model.forward(q), cart)
        if counts["commands"] % stop_check_every == 0:
            ext = braking_extent(monitor.q, monitor.v, monitor.a, dt, lim.a_max, lim.j_max)
            counts["not_stoppable"] += int(np.any(ext.q_high > lim.q_max) or np.any(ext.q_low < lim.q_min))
        if layer.estop_latched and layer.memory.at_rest:
            counts["estops"] += 1
            layer.reset_estop()
            counts["violations"] += monitor.report.total  # keep what the old monitor saw
            monitor = StreamMonitor(env, q)  # the layer restarts from rest here too
    counts["violations"] += monitor.report.total
    return counts
