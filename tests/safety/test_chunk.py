"""Validating a predicted action chunk before any of it executes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.safety import Check, Level, RobotState
from vla_kit.safety.chunk import ChunkVerdict, StepAction

from tests.safety.streams import PANDA_HOME, make_layer

DT = 0.001


def _smooth_chunk(q0: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    t = np.arange(start + 1, start + n + 1) * DT
    s = 0.2 * (1.0 - np.cos(2 * np.pi * 0.5 * t)) ** 2 / 4.0
    return q0 + s[:, None] * np.linspace(1.0, -1.0, 7)


def test_an_in_limit_chunk_is_accepted_and_the_layer_is_left_untouched():
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    before = (layer.cycle, layer.memory, len(layer.log))
    report = layer.validate_chunk(_smooth_chunk(PANDA_HOME, 16), RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.ACCEPT and report.ok and report.first_intervention is None
    assert [s.action for s in report.steps] == [StepAction.PASS] * 16 and all(s.deviation == 0.0 for s in report.steps)
    assert (layer.cycle, layer.memory, len(layer.log)) == before


def test_the_chunk_report_is_what_filter_would_do():
    layer, _ = make_layer()
    chunk = PANDA_HOME + np.linspace(0.0, 0.02, 12)[:, None] * np.eye(7)[1]  # a ramp too steep from rest
    report = layer.validate_chunk(chunk, RobotState(q=PANDA_HOME), DT)
    q = PANDA_HOME
    for step, target in zip(report.steps, chunk):
        d = layer.filter(target, RobotState(q=q), DT)
        assert np.array_equal(step.command_sent, d.command_sent) and step.level is d.level
        q = d.command_sent


def test_a_chunk_that_needs_clamping_says_which_step_and_which_checks():
    layer, env = make_layer()
    chunk = np.repeat(PANDA_HOME[None, :], 8, axis=0)
    chunk[3:, 0] += 5 * env.limits.max_step[0]  # a jump at step 3
    report = layer.validate_chunk(chunk, RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.CLAMP and report.ok and report.first_intervention == 3
    step = report.steps[3]
    assert step.action is StepAction.CLAMP and step.level is Level.WARNING and step.deviation > 0
    assert Check.JERK in step.checks and "step 3" in report.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_anywhere_rejects_the_whole_chunk_without_running_it(bad):
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    chunk = _smooth_chunk(PANDA_HOME, 10)
    chunk[7, 4] = bad
    report = layer.validate_chunk(chunk, RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.REJECT and not report.ok and "step(s) 7" in report.reason
    assert all(s.action is StepAction.NOT_RUN for s in report.steps)
    assert report.steps[7].checks == (Check.NON_FINITE,) and report.steps[6].checks == ()
    assert not layer.estop_latched  # judging a chunk never latches the live layer


def test_an_absurd_jump_rejects_the_chunk_as_a_stop():
    layer, env = make_layer()
    chunk = np.repeat(PANDA_HOME[None, :], 6, axis=0)
    chunk[2:, 2] += 20 * env.limits.max_step[2]
    report = layer.validate_chunk(chunk, RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.REJECT and report.steps[2].action is StepAction.STOP
    assert Check.ABSURD_STEP in report.steps[2].checks and not layer.estop_latched


def test_reject_mode_reports_rejected_steps():
    layer, env = make_layer({"on_violation": "reject"})
    chunk = np.repeat(PANDA_HOME[None, :], 4, axis=0)
    chunk[1:, 0] += 3 * env.limits.max_step[0]
    report = layer.validate_chunk(chunk, RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.CLAMP and report.steps[1].action is StepAction.REJECT


def test_a_latched_layer_rejects_any_chunk():
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    layer.estop()
    report = layer.validate_chunk(_smooth_chunk(PANDA_HOME, 4), RobotState(q=PANDA_HOME), DT)
    assert report.verdict is ChunkVerdict.REJECT and report.steps[0].action is StepAction.STOP


@pytest.mark.parametrize("bad", [np.zeros((4, 6)), np.zeros(7), np.zeros((0, 7)), [["a"] * 7]])
def test_a_malformed_chunk_is_an_input_error(bad):
    layer, _ = make_layer()
    with pytest.raises(InputError, match="chunk"):
        layer.validate_chunk(bad, RobotState(q=PANDA_HOME), DT)


def test_validating_chunks_between_cycles_changes_nothing_the_live_layer_sends():
    """A layer that validates a chunk (clamping, Cartesian searches, a person, another dt) before
    every cycle sends the same bits, levels and records as a twin that never validates: the fork
    shares the envelope's constants but none of what a cycle writes (scratch rows, the search hint)."""
    cfg = {"cartesian": {"tcp_box": {"min": [-0.2, -0.5, 0.1], "max": [0.75, 0.5, 1.0]}, "tcp_speed_max": 1.0,
                         "tcp_speed_max_reduced": 0.25, "tool_cone_deg": 60.0},
           "obstacles": {"spheres": [{"centre": [0.6, 0.45, 0.3], "radius": 0.1}]}, "separation": {"enabled": True}}
    live, env = make_layer(cfg)
    twin, _ = make_layer(cfg)
    rng = np.random.default_rng(3)
    person = np.array([[1.6, 0.8, 0.9]])
    push = 5 * env.limits.max_step * np.where(np.arange(7) % 2, 1.0, -1.0)
    q = PANDA_HOME.copy()
    for k in range(400):
        state = RobotState(q=q, humans=person)
        chunk = q + push * rng.uniform(-1.0, 1.5, (8, 7))
        report = live.validate_chunk(chunk, state, DT if k % 3 else 2 * DT)
        assert len(report.steps) == 8
        target = q + push if k % 50 < 40 else q  # long clamped stretches, then rest
        a, b = live.filter(target, state, DT), twin.filter(target, state, DT)
        assert np.array_equal(a.command_sent, b.command_sent) and a.level is b.level and a.violations == b.violations, k
        q = a.command_sent
    assert live.log == twin.log and live.cycle == twin.cycle == 400
