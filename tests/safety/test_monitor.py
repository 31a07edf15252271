"""The independent stream monitor: it must see every kind of violation, and nothing in a clean stream."""

from __future__ import annotations

import math

import numpy as np

from vla_kit.safety import Check, Envelope, StreamMonitor

ENV = Envelope.from_dict({})
LIM, DT = ENV.limits, ENV.period
MID = (LIM.q_min + LIM.q_max) / 2


def test_a_stream_standing_still_is_clean():
    mon = StreamMonitor(ENV, MID)
    for _ in range(10):
        assert mon.observe(MID, DT) == []
    assert mon.report.total == 0 and mon.report.samples == 10


def test_each_limit_is_seen_by_backward_differences():
    jerk_step = MID + np.eye(7)[0] * DT**3 * LIM.j_max[0] * 1.5  # jerk only (1.5x), from rest
    mon = StreamMonitor(ENV, MID)
    assert mon.observe(jerk_step, DT) == [Check.JERK]
    mon = StreamMonitor(ENV, MID)
    assert set(mon.observe(MID + 0.01, DT)) == {Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK}
    mon = StreamMonitor(Envelope.from_dict({"enabled": True}), LIM.q_max + 1e-12)  # start just outside, at rest
    assert mon.observe(LIM.q_max + 1e-12, DT) == [Check.POSITION]
    assert mon.report.first[Check.POSITION] == 0 and mon.report.worst[Check.POSITION] > 0


def test_nan_counts_as_a_violation_of_everything():
    mon = StreamMonitor(ENV, MID)
    bad = MID.copy()
    bad[2] = math.nan
    assert set(mon.observe(bad, DT)) == {Check.POSITION, Check.MAX_STEP, Check.VELOCITY, Check.ACCELERATION, Check.JERK}
    assert mon.report.violations[Check.JERK] == 1


def test_a_longer_cycle_allows_a_proportionally_longer_step():
    mon = StreamMonitor(Envelope.from_dict({"joints": {"max_step": 0.001, "j_max": 3000}}), MID)
    step = MID + np.eye(7)[0] * 0.0015
    assert Check.MAX_STEP not in mon.observe(step, 2 * DT)
