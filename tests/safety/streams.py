"""Helpers shared by the safety tests: build a layer, drive it with a command stream, watch the output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from vla_kit.robots import get_robot_model
from vla_kit.safety import Decision, Envelope, RobotState, SafetyLayer, StreamMonitor
from vla_kit.safety.braking import braking_extent

PANDA_HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
UR5_HOME = np.array([0.0, -1.2, 1.2, -1.5, -1.57, 0.0])


def home(robot: str) -> np.ndarray:
    return (PANDA_HOME if robot == "panda" else UR5_HOME).copy()


def make_layer(cfg: dict[str, Any] | None = None) -> tuple[SafetyLayer, Envelope]:
    env = Envelope.from_dict(cfg or {}, "test")
    return SafetyLayer(env, get_robot_model(env.robot)), env


@dataclass
class Run:
    """What a stream produced: sent positions, decisions, and the monitor's verdict."""

    sent: list[np.ndarray] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    monitor: StreamMonitor | None = None
    not_stoppable: int = 0  # states from which the arm could not have braked inside its limits


def drive(layer: SafetyLayer, env: Envelope, commands: Iterable[Any], q_start: np.ndarray, dt: float | None = None,
          check_stop: bool = True) -> Run:
    """Feed ``commands`` with the measured state = the last sent position.

    A command is an array, a JointCommand, or a callable ``f(last_sent) -> command`` for streams
    that react to what the layer let through (as a policy in closed loop does).
    """
    dt = env.period if dt is None else dt
    run = Run(monitor=StreamMonitor(env, q_start))
    lim = env.limits
    measured = np.array(q_start, dtype=np.float64)
    for cmd in commands:
        if callable(cmd):
            cmd = cmd(measured)
        d = layer.filter(cmd, RobotState(q=measured), dt)
        run.sent.append(d.command_sent)
        run.decisions.append(d)
        run.monitor.observe(d.command_sent, dt)
        if check_stop:
            # Independent of the layer's own search: from what was sent, can the arm still stop inside?
            m = run.monitor
            ext = braking_extent(m.q, m.v, m.a, dt, lim.a_max, lim.j_max)
            if not (np.all(ext.q_high <= lim.q_max) and np.all(ext.q_low >= lim.q_min)):
                run.not_stoppable += 1
        measured = d.command_sent
    return run


def brake_out(layer: SafetyLayer, env: Envelope, run: Run, dt: float | None = None, limit: int = 5000) -> int:
    """E-stop the layer and keep filtering until it rests; returns the number of cycles it took."""
    dt = env.period if dt is None else dt
    layer.estop("test: brake out")
    for k in range(limit):
        d = layer.filter(run.sent[-1], RobotState(q=run.sent[-1]), dt)
        run.sent.append(d.command_sent)
        run.decisions.append(d)
        run.monitor.observe(d.command_sent, dt)
        if layer.memory.at_rest:
            return k + 1
    raise AssertionError("the controlled stop did not reach rest")
