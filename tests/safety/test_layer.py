"""The safety layer's behaviour, one failure mode per test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.errors import InputError, SafetyError
from vla_kit.robots import get_robot_model
from vla_kit.safety import Check, Envelope, JointCommand, Level, RobotState, SafetyLayer

from tests.safety.streams import PANDA_HOME, brake_out, drive, home, make_layer

DT = 0.001


def _smooth(q0: np.ndarray, n: int, amplitude: float = 0.2, hz: float = 0.5) -> list[np.ndarray]:
    """An in-limit stream that starts at rest: q0 + A (1 - cos wt)^2 / 4 on every joint."""
    t = np.arange(1, n + 1) * DT
    s = amplitude * (1.0 - np.cos(2 * np.pi * hz * t)) ** 2 / 4.0
    return [q0 + x * np.linspace(1.0, -1.0, q0.shape[0]) for x in s]


def _moving(layer, env, n=300, speed=0.5):
    """Drive joint 0 up to ``speed`` (rad/s), each command one step ahead of the last sent; return the run."""
    step = np.eye(7)[0] * speed * DT
    return drive(layer, env, [lambda last: last + step] * n, PANDA_HOME)


def test_in_limit_command_is_returned_bit_identical():
    layer, env = make_layer()
    cmds = _smooth(PANDA_HOME, 400)
    run = drive(layer, env, cmds, PANDA_HOME)
    for cmd, d in zip(cmds, run.decisions):
        assert np.array_equal(d.command_sent, cmd) and d.command_sent.tobytes() == cmd.tobytes()
        assert not d.intervened and d.violations == () and d.level <= Level.CAUTION
    assert layer.log == []


def test_a_float32_command_is_widened_exactly():
    layer, env = make_layer()
    cmd = PANDA_HOME.astype(np.float32)
    d = layer.filter(cmd, RobotState(q=cmd.astype(np.float64)), DT)
    assert d.command_sent.dtype == np.float64 and np.array_equal(d.command_sent, cmd.astype(np.float64))


def test_the_sent_command_is_a_read_only_copy():
    layer, _ = make_layer()
    cmd = PANDA_HOME.copy()
    d = layer.filter(cmd, RobotState(q=PANDA_HOME), DT)
    assert d.command_sent is not cmd
    with pytest.raises(ValueError):
        d.command_sent[0] = 1.0


def test_first_cycle_starts_from_rest_at_the_measured_state():
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    mem = layer.memory
    assert np.array_equal(mem.q, PANDA_HOME) and mem.at_rest


def test_a_step_from_rest_is_clamped_to_the_jerk_limit_and_logged():
    layer, env = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    cmd = PANDA_HOME + 1e-4
    d = layer.filter(cmd, RobotState(q=PANDA_HOME), DT)
    assert d.intervened and d.level is Level.WARNING
    np.testing.assert_allclose(d.command_sent - PANDA_HOME, DT**3 * env.limits.j_max, rtol=1e-6)
    recs = [r for r in d.violations if r.joint is not None]
    assert [r.joint for r in recs] == list(range(7))
    for r in recs:
        assert r.check is Check.JERK and r.original == cmd[r.joint] and r.safe == d.command_sent[r.joint]
        assert r.joint_name == f"panda_joint{r.joint + 1}" and "jerk" in r.reason and "also acceleration" in r.reason
    assert layer.log[-7:] == recs


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_command_latches_the_estop(bad):
    layer, env = make_layer()
    run = _moving(layer, env)
    cmd = run.sent[-1].copy()
    cmd[3] = bad
    d = layer.filter(cmd, RobotState(q=run.sent[-1]), DT)
    assert d.level is Level.EMERGENCY and d.estop_latched and d.violations[0].check is Check.NON_FINITE
    assert np.isfinite(d.command_sent).all()
    # Latched: a perfectly good command afterwards still brakes.
    d2 = layer.filter(d.command_sent, RobotState(q=d.command_sent), DT)
    assert d2.level is Level.EMERGENCY and d2.intervened


def test_nan_gripper_latches_the_estop():
    layer, _ = make_layer()
    d = layer.filter(JointCommand(q=PANDA_HOME, gripper=math.nan), RobotState(q=PANDA_HOME), DT)
    assert d.estop_latched and d.violations[0].check is Check.NON_FINITE


def test_absurd_step_latches_the_estop():
    layer, env = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    cmd = PANDA_HOME + 11 * env.limits.max_step * np.eye(7)[2]
    d = layer.filter(cmd, RobotState(q=PANDA_HOME), DT)
    assert d.estop_latched and d.violations[0].check is Check.ABSURD_STEP and "joint 2" in d.violations[0].reason
    assert np.array_equal(d.command_sent, PANDA_HOME)  # from rest, the controlled stop is standing still


def test_a_large_but_not_absurd_step_is_only_clamped():
    layer, env = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    d = layer.filter(PANDA_HOME + 9 * env.limits.max_step, RobotState(q=PANDA_HOME), DT)
    assert not d.estop_latched and d.level is Level.WARNING


def test_a_smooth_stream_the_layer_holds_back_is_clamped_not_absurd():
    # Commands that run ahead of what the layer lets through (acceleration-limited from rest) end
    # up far beyond 10 max steps from the last sent position, but never jump: clamp, no e-stop.
    layer, env = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    step = 0.9 * env.limits.max_step
    q = PANDA_HOME.copy()
    for _ in range(150):
        q = q + step
        d = layer.filter(q, RobotState(q=PANDA_HOME), DT)
        assert not d.estop_latched and d.intervened
    assert (np.abs(q - d.command_sent) > 10 * env.limits.max_step).all()
    jump = q + 11 * env.limits.max_step * np.eye(7)[1]  # a jump in the stream itself still is absurd
    d = layer.filter(jump, RobotState(q=PANDA_HOME), DT)
    assert d.estop_latched and d.violations[0].check is Check.ABSURD_STEP


@pytest.mark.parametrize("bad", [np.zeros(6), np.zeros((7, 1)), ["a"] * 7])
def test_malformed_command_raises_input_error_and_latches_the_estop(bad):
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    with pytest.raises(InputError, match="command.q"):
        layer.filter(bad, RobotState(q=PANDA_HOME), DT)
    assert layer.estop_latched and layer.log[-1].check is Check.NON_FINITE


def test_software_estop_is_honoured_within_one_cycle_and_latched_until_reset():
    layer, env = make_layer()
    run = _moving(layer, env)
    assert layer.memory.v[0] > 0.4
    layer.estop("operator pressed stop")
    d = layer.filter(run.sent[-1] + 0.0004, RobotState(q=run.sent[-1]), DT)
    assert d.level is Level.EMERGENCY and d.estop_latched and "operator pressed stop" in d.violations[0].reason
    assert layer.memory.v[0] < run.monitor.v[0]  # already slowing down in that same cycle
    run.monitor.observe(d.command_sent, DT)
    run.sent.append(d.command_sent)
    cycles = brake_out(layer, env, run)
    assert run.monitor.report.total == 0  # the ramp kept every limit
    assert layer.estop_latched and cycles < 500
    rest = layer.memory.q
    d = layer.filter(rest + 0.001, RobotState(q=rest), DT)
    assert np.array_equal(d.command_sent, rest) and d.estop_latched  # still latched: standing still


@pytest.mark.parametrize("speed", [1e-9, 1e-6, 1e-3, 0.3])
def test_a_stop_next_to_zero_radians_reaches_exact_rest(speed):
    # Near q = 0 float64 resolves tiny speeds, so rounding left by the landing step is not
    # swallowed by the position's ulp as it is elsewhere; rest must still be exact (v = a = 0).
    layer, env = make_layer()
    start = PANDA_HOME.copy()
    start[0] = 0.0
    step = np.eye(7)[0] * speed * DT
    run = drive(layer, env, [lambda last: last + step] * 40, start)
    cycles = brake_out(layer, env, run)
    assert layer.memory.at_rest and cycles < 60 and run.monitor.report.total == 0
    layer.reset_estop()


def test_reset_estop_while_still_braking_is_refused():
    layer, env = make_layer()
    run = _moving(layer, env)
    layer.estop()
    layer.filter(run.sent[-1], RobotState(q=run.sent[-1]), DT)
    with pytest.raises(SafetyError, match="still braking"):
        layer.reset_estop()


def test_after_reset_the_layer_restarts_from_rest_at_the_measured_state():
    layer, env = make_layer()
    run = _moving(layer, env)
    brake_out(layer, env, run)
    layer.reset_estop()
    measured = layer.memory.q + 1e-5  # the arm settled a little off the last command
    cmd = measured.copy()
    d = layer.filter(cmd, RobotState(q=measured), DT)
    assert not d.estop_latched and np.array_equal(d.command_sent, cmd) and not d.intervened


def test_a_held_stop_is_logged_once_not_every_cycle():
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    layer.estop()
    for _ in range(50):
        layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    assert len(layer.log) <= 3


@pytest.mark.parametrize("dt", [0.0, -0.001, math.nan, math.inf, -math.inf])
def test_invalid_dt_latches_the_estop_and_brakes_at_the_nominal_period(dt):
    layer, env = make_layer()
    run = _moving(layer, env)
    d = layer.filter(run.sent[-1] + 0.0005, RobotState(q=run.sent[-1]), dt)
    assert d.estop_latched and d.level is Level.EMERGENCY and d.violations[0].check is Check.INVALID_DT
    run.monitor.observe(d.command_sent, env.period)  # the stop is valid at the nominal period
    assert run.monitor.report.total == 0


def test_a_dt_too_short_for_float64_latches_the_estop():
    layer, _ = make_layer()
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), 1e-9)
    assert d.estop_latched and d.violations[0].check is Check.INVALID_DT and "too short" in d.violations[0].reason


def test_a_late_cycle_is_noted_but_keeps_the_limits_at_its_own_dt():
    layer, env = make_layer()
    run = _moving(layer, env)
    d = layer.filter(run.sent[-1] + 0.0008, RobotState(q=run.sent[-1]), 0.0018)
    assert d.level is Level.WARNING and any(r.check is Check.CYCLE_OVERRUN for r in d.violations)
    run.monitor.observe(d.command_sent, 0.0018)
    assert run.monitor.report.total == 0


def test_a_cycle_longer_than_the_command_timeout_brakes():
    layer, env = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    d = layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), 0.5)
    assert d.level is Level.DANGER and not d.estop_latched and Check.CYCLE_OVERRUN in [r.check for r in d.violations]


def test_a_stale_command_triggers_a_controlled_stop_that_ends_when_commands_are_fresh():
    layer, env = make_layer({"watchdog": {"command_timeout": 0.05}})
    layer.filter(JointCommand(q=PANDA_HOME, stamp=0.0), RobotState(q=PANDA_HOME, stamp=0.0), DT)
    d = layer.filter(JointCommand(q=PANDA_HOME, stamp=0.0), RobotState(q=PANDA_HOME, stamp=0.2), DT)
    assert d.level is Level.DANGER and d.violations[0].check is Check.COMMAND_TIMEOUT and not d.estop_latched
    d = layer.filter(JointCommand(q=PANDA_HOME, stamp=0.2), RobotState(q=PANDA_HOME, stamp=0.21), DT)
    assert d.level is Level.SAFE


def test_a_command_stamped_in_the_future_is_not_trusted():
    layer, _ = make_layer({"watchdog": {"command_timeout": 0.05}})
    d = layer.filter(JointCommand(q=PANDA_HOME, stamp=10.0), RobotState(q=PANDA_HOME, stamp=0.0), DT)
    assert d.violations[0].check is Check.COMMAND_TIMEOUT


def test_missed_state_reads_stop_the_arm_after_n_in_a_row():
    layer, env = make_layer({"watchdog": {"max_missed_state_reads": 3}})
    run = _moving(layer, env)
    q = run.sent[-1]
    levels = []
    for _ in range(3):
        d = layer.filter(q, RobotState(q=None, valid=False), DT)
        levels.append(d.level)
        q = d.command_sent
    assert levels[:2] != [Level.DANGER, Level.DANGER] and levels[2] is Level.DANGER
    assert d.violations[0].check is Check.STATE_LOST and layer.missed_reads == 3


def test_a_non_finite_measurement_counts_as_a_missed_read():
    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    bad = PANDA_HOME.copy()
    bad[0] = math.nan
    d = layer.filter(PANDA_HOME, RobotState(q=bad), DT)
    assert layer.missed_reads == 1 and d.violations[0].check is Check.STATE_LOST


def test_without_any_valid_state_the_layer_refuses_to_start():
    layer, _ = make_layer()
    with pytest.raises(SafetyError, match="no valid robot state"):
        layer.filter(PANDA_HOME, None, DT)


def test_reject_mode_brakes_instead_of_clamping():
    layer, env = make_layer({"on_violation": "reject"})
    run = drive(layer, env, _smooth(PANDA_HOME, 300), PANDA_HOME)  # in limits: goes through, moving
    assert not any(d.intervened for d in run.decisions) and not layer.memory.at_rest
    d = layer.filter(run.sent[-1] + 0.01, RobotState(q=run.sent[-1]), DT)
    assert d.level is Level.WARNING and not d.estop_latched
    assert all("rejected" in r.reason for r in d.violations if r.joint is not None)
    speed_before = np.abs(run.sent[-1] - run.sent[-2])
    moving = speed_before > 0
    assert np.all(np.abs(d.command_sent - run.sent[-1])[moving] < speed_before[moving])  # every moving joint brakes
    # The next in-limit command goes through again: reject does not latch.
    nxt = d.command_sent + (d.command_sent - run.sent[-1])
    assert not layer.filter(nxt, RobotState(q=d.command_sent), DT).estop_latched


def test_velocity_is_bounded_near_the_position_limit_so_the_joint_stops_in_time():
    layer, env = make_layer()
    q_max = env.limits.q_max[0]
    push = np.eye(7)[0] * env.limits.max_step[0] * 5
    run = drive(layer, env, [lambda last: last + push] * 4000, PANDA_HOME)
    q0 = np.array([s[0] for s in run.sent])
    assert run.monitor.report.total == 0 and run.not_stoppable == 0
    assert q0.max() <= q_max and q0[-1] > q_max - 1e-3  # it got right up to the limit
    assert layer.memory.at_rest  # and stopped there
    assert np.abs(np.diff(q0)).max() / DT > 0.99 * env.limits.v_max[0]  # at full speed on the way


def test_gripper_target_and_effort_are_clamped_and_logged():
    layer, _ = make_layer({"gripper": {"max_effort": 40.0}})
    d = layer.filter(JointCommand(q=PANDA_HOME, gripper=1.5, gripper_effort=100.0), RobotState(q=PANDA_HOME), DT)
    assert d.gripper_sent == 1.0 and d.gripper_effort_sent == 40.0 and d.intervened
    assert {r.check for r in d.violations} == {Check.GRIPPER, Check.GRIPPER_EFFORT}
    d = layer.filter(JointCommand(q=PANDA_HOME, gripper=0.3, gripper_effort=10.0), RobotState(q=PANDA_HOME), DT)
    assert (d.gripper_sent, d.gripper_effort_sent, d.intervened) == (0.3, 10.0, False)


def test_during_a_stop_the_gripper_holds_its_last_command():
    layer, _ = make_layer()
    layer.filter(JointCommand(q=PANDA_HOME, gripper=0.8), RobotState(q=PANDA_HOME), DT)
    layer.estop()
    d = layer.filter(JointCommand(q=PANDA_HOME, gripper=0.0), RobotState(q=PANDA_HOME), DT)
    assert d.gripper_sent == 0.8


def test_a_disabled_envelope_passes_commands_but_still_stops_on_nan():
    layer, env = make_layer({"enabled": False})
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    cmd = PANDA_HOME + 0.05
    d = layer.filter(cmd, RobotState(q=PANDA_HOME), DT)
    assert np.array_equal(d.command_sent, cmd) and d.level is Level.CAUTION and not d.intervened
    d = layer.filter(np.full(7, math.nan), RobotState(q=PANDA_HOME), DT)
    assert d.estop_latched and np.isfinite(d.command_sent).all()


def test_starting_outside_the_envelope_only_allows_motion_back_inside():
    layer, env = make_layer()
    start = PANDA_HOME.copy()
    start[0] = env.limits.q_max[0] + 0.03  # inside the robot's range, outside the envelope's margin
    out_step, in_step = np.eye(7)[0] * 1e-4, np.eye(7)[0] * -5e-4
    run = drive(layer, env, [lambda last: last + out_step] * 200, start, check_stop=False)
    assert max(s[0] for s in run.sent) == start[0]
    assert run.decisions[0].violations[0].check is Check.POSITION
    run2 = drive(layer, env, [lambda last: last + in_step] * 3000, run.sent[-1], check_stop=False)
    assert run2.sent[-1][0] < env.limits.q_max[0]
    assert np.array_equal(layer.memory.q_hi, env.limits.q_max)  # back inside: the widened limit is gone


def test_tracking_error_beyond_the_limit_is_a_warning():
    layer, _ = make_layer({"watchdog": {"max_tracking_error": 0.01}})
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    off = PANDA_HOME + np.eye(7)[4] * 0.05
    d = layer.filter(PANDA_HOME, RobotState(q=off), DT)
    rec = next(r for r in d.violations if r.check is Check.TRACKING_ERROR)
    assert rec.level is Level.WARNING and rec.joint == 4


def test_the_log_keeps_only_the_newest_records():
    layer, _ = make_layer({"log_capacity": 5})
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    for k in range(4):
        layer.filter(PANDA_HOME + 1e-3, RobotState(q=PANDA_HOME), DT)
    assert len(layer.log) == 5 and layer.log[-1].cycle == 5


def test_an_envelope_for_another_robot_is_refused():
    env = Envelope.from_dict({"robot": "ur5"})
    with pytest.raises(SafetyError, match="'ur5'.*'panda'"):
        SafetyLayer(env, get_robot_model("panda"))


def test_ur5_limits_hold_too():
    layer, env = make_layer({"robot": "ur5"})
    q0 = home("ur5")
    cmds = [q0 + 0.05 * np.sin(0.05 * k) * np.ones(6) + 0.02 * (-1) ** k for k in range(600)]
    run = drive(layer, env, cmds, q0)
    assert run.monitor.report.total == 0 and run.not_stoppable == 0


def test_a_joint_in_its_limits_that_could_not_stop_is_blamed_on_its_stop_distance():
    """Coasting at constant speed towards the position limit meets every direct limit until the
    joint could no longer brake in time: its record names the stop, with the command and what was sent."""
    layer, env = make_layer()
    start = PANDA_HOME.copy()
    start[0] = env.limits.q_max[0] - 0.05
    run = drive(layer, env, [lambda last: last + np.eye(7)[0] * 0.5 * DT] * 400, start)
    stops = [(d, r) for d in run.decisions for r in d.violations if r.check is Check.STOP_DISTANCE and r.joint is not None]
    assert stops and run.monitor.report.total == 0
    for d, r in stops:
        assert r.joint == 0 and r.joint_name == "panda_joint1" and r.level is Level.WARNING
        assert r.safe == d.command_sent[0] and r.original > r.safe
        assert r.reason == "could not have braked inside the position limits from there"


def test_per_joint_records_read_like_records_with_their_reason_formatted():
    """Per-joint reasons are formatted when read; the records compare, hash and pickle by their text."""
    import pickle

    layer, _ = make_layer()
    layer.filter(PANDA_HOME, RobotState(q=PANDA_HOME), DT)
    d = layer.filter(PANDA_HOME + 1e-4, RobotState(q=PANDA_HOME), DT)
    r = d.violations[0]
    assert r.reason.startswith("jerk ") and " rad/s^3 beyond " in r.reason
    back = pickle.loads(pickle.dumps(r))
    assert back == r and hash(back) == hash(r) and back.reason == r.reason and isinstance(tuple.__getitem__(back, 7), str)
    assert "reason='jerk" in repr(r)
