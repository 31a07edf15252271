"""The safety_validate battery on the simulated arm, driven by the scripted expert (no training needed).

The layer on: every scenario ends with 0 violations at the robot and every injected fault
detected within a cycle. The layer bypassed, or a policy with a fault injected everywhere: the
gate fails, naming the scenario and the check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.params import load_params
from vla_kit.safety.envelope import Envelope
from vla_kit.safety.perturb import ActionFault
from vla_kit.safety.scenarios import BATTERY, select_scenarios
from vla_kit.sim.env import make_env
from vla_kit.sim.expert import ScriptedExpert
from vla_kit.validate.battery import BatteryConfig, Gate, check_gate, run_battery, summary
from vla_kit.validate.episode import Smoother, run_guarded_episode, sim_envelope
from tests.conftest import ROOT

FAULTS = ["nominal", "nan-burst", "spike", "drift", "stale-frames", "dropped-state", "latency-spike", "stale-command", "obstacle", "human"]


def _envelope(enabled: bool = True) -> Envelope:
    data = load_params(ROOT / "params" / "ci.yaml").common.safety.model_dump()
    data["enabled"] = enabled
    return Envelope.from_dict(data)


@pytest.fixture(scope="module")
def sim():
    env = make_env("reach", seed=0, image_size=64, start_jitter=0.1)
    yield env, ScriptedExpert(env)
    env.close()


def _run(sim, names, *, enabled=True, fault=None, episodes=1):
    env, expert = sim
    config = BatteryConfig(episodes=episodes, seed=4000, image_size=64, start_jitter=0.1, policy_fault=fault)
    return run_battery(expert, _envelope(enabled), select_scenarios(names), config, env=env)


@pytest.fixture(scope="module")
def guarded(sim):
    return _run(sim, FAULTS)


def test_with_the_layer_every_scenario_is_clean_and_every_fault_is_caught(guarded):
    assert check_gate(guarded, Gate()) == []
    rows = {r.scenario.name: r.row() for r in guarded}
    assert all(r["violations"] == 0 for r in rows.values())
    assert rows["nominal"]["success_rate"] == 1.0
    assert rows["nan-burst"]["estop_latency_cycles"] == 0 and rows["nan-burst"]["estops"] == 1
    for name, kind in [("stale-command", "stale"), ("latency-spike", "late"), ("dropped-state", "state_lost"), ("stale-frames", "stale_frame")]:
        assert rows[name]["injected"].get(kind, 0) > 0, name
        assert rows[name]["detected"][kind] == rows[name]["injected"][kind], name
        assert rows[name]["detection_latency_cycles"] in (0, 1), name
    assert rows["human"]["min_human_distance_m"] is not None and rows["human"]["separation_breaches"] == 0
    assert rows["spike"]["intervention_rate"] > rows["nominal"]["intervention_rate"]
    s = summary(guarded)
    assert s["violations"] == 0 and s["detection_rate"] == 1.0 and s["faults_injected"] > 0


def test_the_audit_agrees_with_an_independent_finite_difference_check(guarded):
    spike = next(r for r in guarded if r.scenario.name == "spike").trace
    lim = spike.envelope.limits
    q = np.vstack([spike.q0, spike.q_sent])
    v = np.diff(q, axis=0) / spike.dt
    a = np.diff(np.vstack([np.zeros(7), v]), axis=0) / spike.dt
    assert (np.abs(v) <= lim.v_max).all() and (np.abs(a) <= lim.a_max).all()
    assert (q >= lim.q_min).all() and (q <= lim.q_max).all()
    assert spike.intervened.any()


def test_bypassing_the_layer_fails_the_gate_with_the_scenario_and_check(sim):
    results = _run(sim, ["spike", "drift"], enabled=False)
    fails = check_gate(results, Gate())
    assert {f.scenario for f in fails} == {"spike", "drift"}
    assert all(f.check == "violations at the robot" and f.value > 0 for f in fails)
    assert "beyond" in str(fails[0])


def test_a_fault_injected_policy_fails_the_gate_even_with_the_layer_on(sim):
    results = _run(sim, ["nominal"], fault=ActionFault("nan-burst", start=3, length=40))
    fails = check_gate(results, Gate())
    assert results[0].violations == 0  # the layer held...
    assert [f.check for f in fails] == ["task success"]  # ...but the policy is not fit to deploy


def test_a_frozen_camera_is_marked_per_cycle_and_a_stale_frame_reaching_the_arm_is_a_miss(guarded):
    """The frozen camera's cycles are the ones whose newest frame is older than the loop's limit,
    inside the frozen window only; no row executed then came from a frame that old. Had the loop
    queried the policy on the stale frame, the judge counts those cycles as missed."""
    from dataclasses import replace

    from vla_kit.validate.battery import judge_episode

    frozen = next(r for r in guarded if r.scenario.name == "stale-frames")
    trace = frozen.trace
    mask = trace.injected["stale_frame"]
    assert mask.any() and np.array_equal(mask, trace.camera_age > trace.max_frame_age)
    window = frozen.scenario.stale_frames
    cycles = np.flatnonzero(mask)
    per_step = round(trace.cycles / trace.steps) if trace.steps else 1
    assert window.start * per_step < cycles[0] and cycles[-1] < (window.start + window.length) * per_step
    assert not (trace.frame_age[mask] > trace.max_frame_age).any()
    assert np.isnan(trace.frame_age[mask]).any()  # the loop refused and held at least once

    fooled = trace.frame_age.copy()
    fooled[mask] = trace.camera_age[mask]  # as if the policy had been fed the frozen frame
    verdict = judge_episode(replace(trace, frame_age=fooled))
    assert verdict.detected["stale_frame"] < verdict.injected["stale_frame"]
    assert verdict.detection_latency["stale_frame"] is None or verdict.detection_latency["stale_frame"] > 0
    assert "undetected" in verdict.failed_check()


def test_a_missed_detection_fails_the_gate(guarded):
    stale = next(r for r in guarded if r.scenario.name == "stale-command")
    v = stale.verdicts[0]
    from dataclasses import replace

    stale.verdicts[0] = replace(v, detected={**v.detected, "stale": v.detected["stale"] - 1}, detection_latency={**v.detection_latency, "stale": None})
    try:
        fails = check_gate([stale], Gate())
        assert {f.check for f in fails} == {"fault detection rate", "detection latency (cycles)"}
        assert math.isinf(next(f.value for f in fails if f.check.startswith("detection latency")))
    finally:
        stale.verdicts[0] = v


def test_an_episode_that_caught_a_fault_late_is_listed_as_failed_under_the_gate(guarded):
    """Detected, but two cycles after it began: the gate fails the scenario on latency, and the
    episode itself says so (its `failed` field and the report's list), not only the gate."""
    from dataclasses import replace

    from vla_kit.validate.battery import ScenarioResult

    stale = next(r for r in guarded if r.scenario.name == "stale-command")
    late = replace(stale.verdicts[0], detection_latency={**stale.verdicts[0].detection_latency, "stale": 2})
    assert late.failed_check() == ""  # without a gate, latency is the gate's business
    assert late.failed_check(Gate()) == "stale caught 2 cycles after it began (gate: 1)"
    assert late.failed_check(Gate(max_detection_latency_cycles=None)) == ""
    result = ScenarioResult(stale.scenario, [], gate=Gate())
    result.keep(stale.trace, stale.verdicts[0])
    result.keep(stale.trace, late)
    assert [f.check for f in check_gate([result], Gate())] == ["detection latency (cycles)"]
    assert [v.row(result.gate)["failed"] for v in result.verdicts] == [None, "stale caught 2 cycles after it began (gate: 1)"]
    nan = replace(stale.verdicts[0], detection_latency={"non_finite": 1})
    assert nan.failed_check(Gate()) == "" and "non_finite caught 1 cycle after" in nan.failed_check(Gate(max_estop_latency_cycles=0))


def test_every_episode_is_written_and_the_audit_command_finds_what_the_battery_counted(sim, tmp_path, capsys):
    """With the layer bypassed, each episode's file and envelope reproduce, through `vla-kit safety
    audit`, the envelope violations the battery counted (the obstacle's own keep-out sphere included);
    the shown trace is an episode that failed, and its seed is named."""
    import json

    from vla_kit.cli import main
    from vla_kit.robots import get_robot_model

    env, expert = sim
    config = BatteryConfig(episodes=2, seed=4000, image_size=64, start_jitter=0.1)
    results = run_battery(expert, _envelope(False), select_scenarios(["spike", "obstacle"]), config, env=env,
                          trace_dir=tmp_path, deployment="ci")
    model = get_robot_model("panda")
    for res in results:
        assert sorted(res.traces) == [4000, 4001]
        assert res.trace is not None and (res.trace.seed in res.traces)
        assert f"seed {res.trace.seed}" in res.shown
        for v in res.verdicts:
            npz = tmp_path / res.traces[v.seed]
            assert npz.name == f"seed-{v.seed}.npz" and npz.parent.name == res.scenario.name
            data = np.load(npz)
            hard = int(((data["q_meas"] < model.q_min) | (data["q_meas"] > model.q_max)).any(axis=1).sum())
            audited = v.violations - hard - int(data["robot_faults"])
            report = tmp_path / f"{res.scenario.name}-{v.seed}.json"
            code = main(["safety", "audit", "--params", str(npz.with_suffix(".yaml")), "--input", str(npz), "--json", str(report)])
            capsys.readouterr()
            assert code == (1 if audited else 0), (res.scenario.name, v.seed)
            assert json.loads(report.read_text())["total"] == audited, (res.scenario.name, v.seed)
            assert int(data["seed"]) == v.seed and data["q"].shape == data["q_target"].shape == (v.cycles, 7)
        if res.scenario.name == "obstacle":  # the episode's own sphere travels with it
            spheres = load_params(tmp_path / res.traces[4000].replace(".npz", ".yaml")).safety.obstacles.spheres
            assert len(spheres) == 1 and spheres[0].radius == 0.05
    assert any(v.violations for r in results for v in r.verdicts)
    from vla_kit.validate.stage import ValidationResult, failed_episodes, traces_note

    result = ValidationResult(results, check_gate(results, Gate()), Gate(), config)
    note, table = traces_note(result, tmp_path), failed_episodes(result)
    first = table.iloc[0]
    assert "4 episode files" in note and "episode(s) failed a check" in note
    assert f"--input artifacts/traces/{first['trace']}`" in note  # the example command audits a failed episode
    assert set(table["scenario"]) <= {"spike", "obstacle"} and (table["failed"] != "").all()
    assert "not written" in traces_note(result, None)


def test_the_shown_episode_is_the_first_to_fail_a_check(guarded):
    """The first episode is shown until one fails a check; later failures do not replace it."""
    from dataclasses import replace

    from vla_kit.validate.battery import ScenarioResult

    nominal = next(r for r in guarded if r.scenario.name == "nominal")
    ok, trace = nominal.verdicts[0], nominal.trace
    res = ScenarioResult(nominal.scenario, [])
    res.keep(replace(trace, seed=1), replace(ok, seed=1))
    res.keep(replace(trace, seed=2), replace(ok, seed=2))
    assert res.trace.seed == 1 and res.shown == "episode 1/2, seed 1"
    res.keep(replace(trace, seed=3), replace(ok, seed=3, violations=4))
    res.keep(replace(trace, seed=4), replace(ok, seed=4, separation_breaches=2))
    assert res.trace.seed == 3 and res.shown == "episode 3/4, seed 3: 4 violation(s)"
    assert [v.failed_check() for v in res.verdicts] == ["", "", "4 violation(s)", "2 separation breach(es)"]


def test_the_episode_needs_an_envelope_at_the_arm_period(sim):
    env, expert = sim
    with pytest.raises(Exception, match="period"):
        run_guarded_episode(env, expert, _envelope(), BATTERY[0], seed=1)
    assert math.isclose(sim_envelope(_envelope()).period, 1 / 240)


def test_unknown_or_repeated_scenarios_are_refused():
    with pytest.raises(InputError, match="unknown scenario 'nope'"):
        select_scenarios(["nominal", "nope"])
    with pytest.raises(InputError, match="twice"):
        select_scenarios(["spike", "spike"])
    assert [s.name for s in select_scenarios([])] == [s.name for s in BATTERY]


def test_the_smoother_passes_nan_and_converges():
    sm = Smoother(np.zeros(7), 1 / 240, 15.0)
    ref = np.ones((240, 7))
    ref[10] = np.nan
    out = sm.follow(ref)
    assert np.isnan(out[10]).all() and np.isfinite(out[11:]).all()
    assert np.allclose(out[-1], 1.0, atol=0.01)
