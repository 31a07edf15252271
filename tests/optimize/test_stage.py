"""The optimize stage: candidates from params, each built and judged the same way, one selected.

Three layers, cheapest first: parsing (params files, candidate lists); the stage's bookkeeping with a
technique double and a scripted worker (``FakeWorker``: what each candidate "measured"), which
pins down how rows, parity, success drops and the selected artifact follow from measurements;
and one real run (ONNX export, int8, real workers and closed-loop episodes) shared by a module.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from vla_kit.errors import ChecksumMismatchError, InputError, ParamsError, VlaKitError
from vla_kit.learn.stage import dataset_folder
from vla_kit.optimize import TECHNIQUES, Technique, get_technique, register_technique, write_derived
from vla_kit.optimize import stage
from vla_kit.optimize.judge import JudgeConfig, WorkerResult, load_observations, paired_difference
from vla_kit.optimize.select import Budgets, select_candidate
from vla_kit.params import OptimizeParams, load_params
from vla_kit.policy import load_policy, verify_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, WEIGHTS_FILE, sha256_file
from vla_kit.policy.backends import get_backend
from vla_kit.reports.context import ENV_DEPLOYMENT_DIR
from vla_kit.sim.dataset import GenerationParams

# --- parse_candidates ------------------------------------------------------------------------


def test_candidates_parse_into_named_chains_with_validated_options():
    [a, b, c] = stage.parse_candidates([
        {"name": "ort", "steps": ["onnx"]},
        {"name": "static", "steps": ["onnx", {"ort-int8-static": {"method": "entropy"}}], "backend": "onnxruntime"},
        {"name": "as-is", "steps": [], "backend": ""},
    ])
    assert (a.name, a.describe()) == ("ort", "onnx")
    assert b.steps[1].options.method == "entropy"
    assert b.describe() == "onnx -> ort-int8-static(method=entropy) @ onnxruntime"
    assert c.backend is None and c.describe() == "(input artifact)"


@pytest.mark.parametrize("raw, where", [
    ([{"name": "a", "steps": ["onnx"]}, {"name": "a", "steps": ["bf16"]}], "optimize.candidates[1].name"),
    ([{"name": stage.BASELINE, "steps": ["onnx"]}], "optimize.candidates[0].name"),
    ([{"steps": ["onnx"]}], "optimize.candidates[0].name"),
])
def test_duplicate_reserved_or_missing_names_are_refused(raw, where):
    with pytest.raises(InputError) as info:
        stage.parse_candidates(raw)
    assert info.value.what == where and stage.BASELINE in str(info.value)


def test_an_unknown_technique_lists_the_available_ones():
    with pytest.raises(InputError) as info:
        stage.parse_candidates([{"name": "a", "steps": ["onnx", "ort-int9"]}])
    assert "'ort-int9'" in str(info.value)
    assert "available: " in str(info.value) and "ort-int8-dynamic" in str(info.value) and "bf16" in str(info.value)


@pytest.mark.parametrize("raw", [[{"name": "a", "steps": ["onnx", "ort-int9"]}], [{"name": "a", "steps": ["onnx"], "backend": "onnxrt"}]])
def test_an_unknown_technique_or_backend_names_its_position(raw):
    with pytest.raises(VlaKitError, match=r"optimize\.candidates\[0\]"):
        stage.parse_candidates(raw)


def test_bad_technique_options_name_candidate_step_and_option():
    with pytest.raises(InputError) as info:
        stage.parse_candidates([
            {"name": "ok", "steps": ["onnx"]},
            {"name": "a", "steps": ["onnx", {"ort-int8-static": {"methd": "entropy"}}]},
        ])
    assert info.value.what == "optimize.candidates[1].steps[1].ort-int8-static"
    assert "methd" in info.value.problem


def test_out_of_range_option_values_are_refused():
    with pytest.raises(InputError, match=r"optimize\.candidates\[0\]\.steps\[0\]\.onnx.*opset"):
        stage.parse_candidates([{"name": "a", "steps": [{"onnx": {"opset": 9}}]}])


@pytest.mark.parametrize("step", [["onnx"], {"onnx": {}, "bf16": {}}, {"onnx": 3}])
def test_malformed_steps_name_their_position(step):
    with pytest.raises(InputError) as info:
        stage.parse_candidates([{"name": "a", "steps": ["onnx", step]}])
    assert info.value.what == "optimize.candidates[0].steps[1]"


def test_steps_given_as_a_single_string_are_refused_as_such():
    with pytest.raises(InputError, match=r"optimize\.candidates\[0\]\.steps"):
        stage.parse_candidates([{"name": "a", "steps": "onnx"}])


def test_an_unknown_backend_lists_the_registered_ones():
    with pytest.raises(InputError) as info:
        stage.parse_candidates([{"name": "a", "steps": ["onnx"], "backend": "onnxrt"}])
    assert "onnxruntime" in str(info.value) and "torch" in str(info.value)


# --- OptimizeParams from a params file -------------------------------------------------------


def params_file(write_params, candidates: list[dict[str, Any]]) -> Path:
    return write_params(yaml.safe_dump({"deployment": "d", "optimize": {"candidates": candidates}}, sort_keys=False))


def test_default_optimize_candidates_are_valid():
    stage.parse_candidates(OptimizeParams().candidates)


def test_params_file_candidates_are_checked_at_load(write_params):
    p = load_params(params_file(write_params, [{"name": "ort", "steps": ["onnx", {"ort-int8-static": {"method": "entropy"}}]}]))
    assert p.section("optimize").candidates[0]["name"] == "ort"


def test_unknown_technique_in_a_params_file_names_file_key_and_the_choices(write_params):
    path = params_file(write_params, [{"name": "ort", "steps": ["onx"]}])
    with pytest.raises(ParamsError) as info:
        load_params(path)
    e = info.value
    assert e.source == str(path) and e.key_path == "optimize.candidates" and e.line == 3
    assert "'onx'" in e.expected and "onnx" in e.expected and "ort-int8-dynamic" in e.expected
    assert e.exit_code == 2


def test_bad_option_in_a_params_file_names_the_step(write_params):
    path = params_file(write_params, [{"name": "ort", "steps": ["onnx", {"ort-int8-static": {"methd": "entropy"}}]}])
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert info.value.key_path == "optimize.candidates"
    assert "candidates[0].steps[1].ort-int8-static" in info.value.expected and "methd" in info.value.expected


def test_unknown_candidate_key_in_a_params_file_is_an_error(write_params):
    with pytest.raises(ParamsError, match=r"unknown keys \['bakend'\]"):
        load_params(params_file(write_params, [{"name": "ort", "steps": ["onnx"], "bakend": "onnxruntime"}]))


def test_reserved_candidate_name_in_a_params_file_is_an_error(write_params):
    with pytest.raises(ParamsError, match="eager-fp32"):
        load_params(params_file(write_params, [{"name": "eager-fp32", "steps": ["onnx"]}]))


# --- the dataset a policy is judged on -------------------------------------------------------


def key(obs) -> bytes:
    return obs.proprio.tobytes() + obs.images["front"].tobytes()


def test_parity_and_calibration_observations_never_overlap(dataset):
    parity = stage.dataset_observations(dataset, split="val", count=1000, seed=0)
    calibration = stage.dataset_observations(dataset, split="train", count=1000, seed=0)
    assert parity and calibration
    assert len(parity) + len(calibration) == len(dataset.frames)  # count caps at what the split has
    assert not {key(o) for o in parity} & {key(o) for o in calibration}


def test_observations_are_spread_over_the_split_and_repeatable(dataset):
    picked = stage.dataset_observations(dataset, split="train", count=5, seed=0)
    assert len(picked) == 5 and len({key(o) for o in picked}) == 5
    assert [key(o) for o in picked] == [key(o) for o in stage.dataset_observations(dataset, split="train", count=5, seed=0)]
    assert picked[0].images["front"].shape == (48, 48, 3) and picked[0].instruction


def with_provenance(parent: Path, provenance: dict[str, Any]):
    return verify_artifact(parent).model_copy(update={"provenance": provenance})


def test_dataset_params_come_from_the_policy_provenance(parent, dataset):
    spec = with_provenance(parent, {"dataset": dataset.info["generation"]})
    gen = stage.dataset_params_of(spec)
    assert gen == GenerationParams(tasks=("reach",), colours=("red", "green"), episodes=6, seed=1, image_size=48)


@pytest.mark.parametrize("provenance", [{}, {"dataset": "somewhere"}, {"dataset": {"tasks": ["reach"], "colour": ["red"]}}])
def test_a_policy_without_usable_dataset_provenance_asks_for_the_dataset(parent, provenance):
    with pytest.raises(InputError) as info:
        stage.dataset_params_of(with_provenance(parent, provenance))
    assert info.value.what == "optimize.dataset" and "set optimize.dataset" in str(info.value)


def test_an_explicit_dataset_folder_is_used_as_is(parent, dataset):
    ds = stage.dataset_for_policy(verify_artifact(parent), dataset=str(dataset.root), deployment="unused")
    assert ds.root == dataset.root and len(ds.frames) == len(dataset.frames)


def test_the_training_dataset_is_reused_from_the_deployment_cache(parent, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DEPLOYMENT_DIR, str(tmp_path / "deployment"))
    spec = with_provenance(parent, {"dataset": dataset.info["generation"]})
    cached = dataset_folder(stage.dataset_params_of(spec), "d")
    shutil.copytree(dataset.root, cached)
    info = cached / "meta" / "info.json"
    before = info.stat().st_mtime_ns
    ds = stage.dataset_for_policy(spec, dataset="", deployment="d")
    assert ds.root == cached and info.stat().st_mtime_ns == before  # reused, not recorded again


def test_inference_flops_count_one_forward_pass(parent):
    spec = verify_artifact(parent)
    flops = stage.inference_flops(spec)
    assert flops > 1e6 and flops == stage.inference_flops(spec)


# --- the stage's bookkeeping, with a technique double and a scripted worker ------------------


class CopyWeights(Technique):
    """A derived artifact holding the parent's weights unchanged (lineage and checksums are real)."""

    name = "test-copy"
    summary = "copies the parent's weights (test double)"

    def apply(self, source, spec, target, ctx, options):
        write_derived(source, spec, target, (self.name, options), lambda d: shutil.copy(source / WEIGHTS_FILE, d / WEIGHTS_FILE))


class Explode(Technique):
    """A technique whose build fails with a long message."""

    name = "test-explode"
    summary = "fails while building (test double)"

    def apply(self, source, spec, target, ctx, options):
        raise RuntimeError("boom " + "x" * 1000)


@pytest.fixture(scope="module")
def doubles():
    for cls in (CopyWeights, Explode):
        register_technique(cls)
    yield
    for cls in (CopyWeights, Explode):
        TECHNIQUES.unregister(cls.name)


@dataclass
class Measured:
    """What the scripted worker reports for one candidate."""

    latency_ms: float = 4.0
    success: tuple[bool, ...] = (True,) * 6 + (False,) * 2
    output: float = 0.0  # every normalised output element
    error: str = ""


class FakeWorker:
    """Stands in for ``measure_in_worker``: writes outputs and returns the planned measurements."""

    def __init__(self) -> None:
        self.plan: dict[str, Measured] = {}
        self.load_options: dict[str, dict[str, Any]] = {}

    def __call__(self, folder, observations, outputs, cfg, *, load_options=None, run_closed_loop=True) -> WorkerResult:
        name = Path(outputs).name.removesuffix(".outputs.npy")
        self.load_options[name] = dict(load_options or {})
        m = self.plan.get(name, Measured())
        if m.error:
            return WorkerResult(error=m.error)
        model = verify_artifact(folder).model
        n = len(load_observations(Path(observations)))
        np.save(outputs, np.full((n, model.chunk_length, model.action_dim), m.output, np.float32))
        return WorkerResult(
            backend=load_options["backend"], threads=cfg.threads, load_s=0.1, latency_ms=[m.latency_ms] * 5,
            throughput_obs_per_s=100.0, peak_memory_mib=1.0, outputs_path=str(outputs), episode_success=list(m.success),
            episode_seeds=[cfg.eval_seed + i for i in range(len(m.success))],
        )


@pytest.fixture
def worker(monkeypatch, doubles) -> FakeWorker:
    fake = FakeWorker()
    monkeypatch.setattr(stage, "measure_in_worker", fake)
    return fake


def optimize(parent, dataset, tmp_path, candidates, budgets=Budgets(), **kw) -> stage.OptimizeResult:
    return stage.run_optimize(
        parent, stage.parse_candidates(candidates), dataset=dataset, judge=JudgeConfig(threads=2), budgets=budgets,
        workdir=tmp_path / "work", selected_dir=tmp_path / "selected", parity_frames=4, calibration_frames=4,
        finetune_steps=0, log=lambda _m: None, **kw,
    )


def copy(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "steps": ["test-copy"], **fields}


def by_name(result: stage.OptimizeResult) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in result.rows}


def test_success_drop_is_the_paired_difference_on_the_same_episodes(worker, parent, dataset, tmp_path):
    base, worse = (True,) * 8, (True,) * 4 + (False,) * 4
    worker.plan = {stage.BASELINE: Measured(success=base), "worse": Measured(latency_ms=1.0, success=worse)}
    result = optimize(parent, dataset, tmp_path, [copy("worse")])
    row, expected = by_name(result)["worse"], paired_difference(base, worse)
    assert (row["successes"], row["episodes"], row["success_rate"]) == (4, 8, 0.5)
    assert row["success_drop_pp"] == pytest.approx(50.0) and row["success_diff_pp"] == pytest.approx(-50.0)
    assert row["success_diff_ci_low_pp"] == pytest.approx(100 * expected["ci_low"])
    assert row["success_diff_ci_high_pp"] == pytest.approx(100 * expected["ci_high"])
    assert result.reasons["worse"] == ["success drop 50.0 pp > budget 5 pp"]
    assert result.selected == stage.BASELINE  # four times faster, but it loses half the episodes


def test_non_finite_outputs_fail_parity_and_are_never_selected(worker, parent, dataset, tmp_path):
    worker.plan = {"nan": Measured(latency_ms=1.0, output=math.nan)}
    result = optimize(parent, dataset, tmp_path, [copy("nan")])
    row = by_name(result)["nan"]
    assert row["status"] == "failed-parity" and row["action_error_mean"] == math.inf
    assert result.errors["nan"].size == 0
    assert result.selected == stage.BASELINE and result.reasons["nan"] == ["status is 'failed-parity'"]


def test_outputs_away_from_the_baseline_fail_parity_past_the_action_error_budget(worker, parent, dataset, tmp_path):
    worker.plan = {"off": Measured(latency_ms=1.0, output=0.75), "close": Measured(latency_ms=2.0, output=0.25)}
    result = optimize(parent, dataset, tmp_path, [copy("off"), copy("close")], Budgets(max_action_error=0.5))
    rows = by_name(result)
    assert rows["off"]["status"] == "failed-parity" and rows["off"]["action_error_mean"] == pytest.approx(0.75)
    assert rows["close"]["status"] == "ok" and rows["close"]["action_error_max"] == pytest.approx(0.25)
    model = verify_artifact(parent).model
    assert result.errors["close"].shape == (4 * model.chunk_length * model.action_dim,)
    np.testing.assert_allclose(result.errors["close"], 0.25)
    assert result.selected == "close"


def test_a_worker_fault_is_a_row_and_the_run_goes_on(worker, parent, dataset, tmp_path):
    worker.plan = {"crashed": Measured(error="the worker process died (exit code -11): " + "y" * 1000), "after": Measured(latency_ms=2.0)}
    result = optimize(parent, dataset, tmp_path, [copy("crashed"), copy("after")])
    rows = by_name(result)
    assert rows["crashed"]["status"].startswith("error: the worker process died (exit code -11)")
    assert len(rows["crashed"]["status"]) <= len("error: ") + 300 and rows["crashed"]["status"].endswith("...")
    assert math.isnan(rows["crashed"]["latency_p50_ms"])
    assert rows["after"]["status"] == "ok" and result.selected == "after"


def test_a_failed_build_is_a_row_and_the_run_goes_on(worker, parent, dataset, tmp_path):
    result = optimize(parent, dataset, tmp_path, [{"name": "explodes", "steps": ["test-explode"]}, copy("after")])
    rows = by_name(result)
    assert rows["explodes"]["status"].startswith("error: RuntimeError: boom xxx") and "build_s" in rows["explodes"]
    assert "explodes" not in worker.load_options  # never measured
    assert rows["after"]["status"] == "ok"


def test_a_candidate_whose_technique_or_backend_is_unavailable_is_skipped_unbuilt(worker, parent, dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(get_technique("test-explode"), "unavailable", lambda: "needs the test rig")
    monkeypatch.setattr(get_backend("openvino"), "unavailable", staticmethod(lambda: "no OpenVINO runtime here"))
    result = optimize(parent, dataset, tmp_path, [
        {"name": "no-rig", "steps": ["test-copy", "test-explode"]},
        copy("no-ov", backend="openvino"),
    ])
    rows = by_name(result)
    assert rows["no-rig"]["status"] == "skipped: test-explode: needs the test rig"
    assert rows["no-ov"]["status"] == "skipped: backend openvino: no OpenVINO runtime here"
    assert set(worker.load_options) == {stage.BASELINE}
    assert not (tmp_path / "work" / "no-rig").exists()


def test_every_candidate_gets_the_judges_threads_and_its_backend(worker, parent, dataset, tmp_path):
    optimize(parent, dataset, tmp_path, [copy("as-recorded"), copy("on-ort", backend="onnxruntime")])
    assert worker.load_options == {
        stage.BASELINE: {"backend": "torch"},
        "as-recorded": {"backend": "torch"},  # the backend its artifact records
        "on-ort": {"backend": "onnxruntime", "threads": 2},
    }


def test_speedup_throughput_and_roofline_follow_the_measurements(worker, parent, dataset, tmp_path):
    worker.plan = {stage.BASELINE: Measured(latency_ms=4.0), "fast": Measured(latency_ms=2.0)}
    result = optimize(parent, dataset, tmp_path, [copy("fast")], peaks={"fp32_gflops": 50.0, "int8_gops": 400.0})
    base, fast = result.rows
    assert (base["speedup"], fast["speedup"]) == (1.0, 2.0)
    assert fast["precision"] == "fp32" and fast["backend"] == "torch"
    assert fast["gflop_per_inference"] == pytest.approx(stage.inference_flops(verify_artifact(parent)) / 1e9)
    assert fast["achieved_gflops"] == pytest.approx(fast["gflop_per_inference"] / 2e-3)
    assert fast["roofline_efficiency"] == pytest.approx(fast["achieved_gflops"] / 50.0)
    assert result.latency_samples == {stage.BASELINE: [4.0] * 5, "fast": [2.0] * 5}
    metrics = result.metrics()
    assert metrics["baseline_latency_ms"] == 4.0 and metrics["best_speedup"] == 2.0
    assert list(result.table()["name"]) == [stage.BASELINE, "fast"]


def test_headline_speedup_within_two_points_ignores_candidates_that_lose_episodes(worker, parent, dataset, tmp_path):
    worker.plan = {
        stage.BASELINE: Measured(latency_ms=4.0, success=(True,) * 8),
        "fast-worse": Measured(latency_ms=1.0, success=(True,) * 4 + (False,) * 4),
        "kept": Measured(latency_ms=2.0, success=(True,) * 8),
    }
    metrics = optimize(parent, dataset, tmp_path, [copy("fast-worse"), copy("kept")]).metrics()
    assert metrics["best_speedup"] == 4.0 and metrics["best_speedup_within_2pp"] == 2.0
    assert metrics["selected"] == "kept"
    json.dumps(metrics)  # metrics.json must be writable as it is


def test_impossible_budgets_select_nothing_and_publish_nothing(worker, parent, dataset, tmp_path):
    result = optimize(parent, dataset, tmp_path, [copy("fast")], Budgets(max_latency_ms=1e-6))
    assert result.selected is None and result.selected_dir is None
    assert not (tmp_path / "selected").exists()
    assert all(r[0].startswith("latency p50") and "budget 1e-06 ms" in r[0] for r in result.reasons.values())
    assert result.explanation.startswith("No candidate met the budgets")
    assert result.metrics()["selected"] is None


def test_a_winning_baseline_is_published_as_the_input_artifact(worker, parent, dataset, tmp_path):
    (tmp_path / "selected").mkdir()
    (tmp_path / "selected" / "stale.txt").write_text("from an earlier run")
    worker.plan = {"slower": Measured(latency_ms=9.0)}
    result = optimize(parent, dataset, tmp_path, [copy("slower")])
    assert result.selected == stage.BASELINE and result.selected_dir == tmp_path / "selected"
    assert not (tmp_path / "selected" / "stale.txt").exists()
    assert verify_artifact(result.selected_dir).lineage == ()
    assert sha256_file(result.selected_dir / CHECKSUMS_FILE) == stage.parent_sha256(parent)


def test_a_backend_only_winner_is_published_recording_the_backend_it_was_measured_on(worker, parent, dataset, tmp_path, monkeypatch):
    """``{steps: [], backend: torch-compile}`` wins: the selection is the input's files as a child
    that records ``torch-compile`` (lineage step ``backend``), so what loads it runs what won."""
    monkeypatch.setattr(get_backend("torch-compile"), "unavailable", staticmethod(lambda: None))
    worker.plan = {stage.BASELINE: Measured(latency_ms=4.0), "compiled": Measured(latency_ms=2.0)}
    result = optimize(parent, dataset, tmp_path, [{"name": "compiled", "steps": [], "backend": "torch-compile"}])
    assert result.selected == "compiled" and worker.load_options["compiled"]["backend"] == "torch-compile"
    spec = verify_artifact(result.selected_dir)
    assert spec.backend == "torch-compile"
    (step,) = spec.lineage
    assert (step.technique, step.options, step.parent_sha256) == ("backend", {"backend": "torch-compile"}, stage.parent_sha256(parent))
    assert (result.selected_dir / WEIGHTS_FILE).read_bytes() == (parent / WEIGHTS_FILE).read_bytes()
    assert spec.model == verify_artifact(parent).model


def test_a_baseline_that_cannot_be_measured_selects_nothing(worker, parent, dataset, tmp_path):
    worker.plan = {stage.BASELINE: Measured(error="RuntimeError: out of memory"), "a": Measured(latency_ms=2.0)}
    try:
        result = optimize(parent, dataset, tmp_path, [copy("a")])
    except VlaKitError:
        return  # refusing the run outright is also an honest answer
    assert result.selected is None


def test_a_tampered_input_artifact_is_refused_before_anything_is_built(worker, parent, dataset, tmp_path):
    tampered = tmp_path / "tampered"
    shutil.copytree(parent, tampered)
    weights = tampered / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    logs: list[str] = []
    with pytest.raises(ChecksumMismatchError) as info:
        stage.run_optimize(tampered, stage.parse_candidates([copy("a")]), dataset=dataset, judge=JudgeConfig(), budgets=Budgets(),
                           workdir=tmp_path / "work", selected_dir=tmp_path / "selected", log=logs.append)
    assert WEIGHTS_FILE in str(info.value)
    assert logs == [] and worker.load_options == {}
    assert not (tmp_path / "work").exists() and not (tmp_path / "selected").exists()


# --- one real run: ONNX export, int8, real workers and episodes ------------------------------


@pytest.fixture(scope="module")
def real_run(parent, dataset, fast_judge, tmp_path_factory) -> tuple[stage.OptimizeResult, Path]:
    """Baseline, ONNX fp32, ONNX int8, one skipped and one that cannot build; the smallest wins."""
    root = tmp_path_factory.mktemp("real-run")
    candidates = stage.parse_candidates([
        {"name": "ort-fp32", "steps": ["onnx"]},
        {"name": "ort-int8", "steps": ["onnx", "ort-int8-dynamic"]},
        {"name": "bf16-unavailable", "steps": ["bf16"]},
        {"name": "int8-from-torch", "steps": ["ort-int8-dynamic"]},  # accepts only ONNX artifacts
    ])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(get_technique("bf16"), "unavailable", lambda: "needs a test accelerator")
        result = stage.run_optimize(
            parent, candidates, dataset=dataset, judge=fast_judge,
            budgets=Budgets(max_success_drop_pp=100.0, max_action_error=5.0, objective="size"),
            workdir=root / "work", selected_dir=root / "selected", parity_frames=8, calibration_frames=8, finetune_steps=0,
            log=lambda _m: None,
        )
    return result, root


def test_real_run_has_one_row_per_candidate_baseline_first(real_run):
    result, _ = real_run
    assert [r["name"] for r in result.rows] == [stage.BASELINE, "ort-fp32", "ort-int8", "bf16-unavailable", "int8-from-torch"]
    statuses = [r["status"] for r in result.rows]
    assert statuses[:3] == ["ok", "ok", "ok"]
    assert statuses[3] == "skipped: bf16: needs a test accelerator"
    assert statuses[4].startswith("error: InputError: step 1 (ort-int8-dynamic)") and "'torch'" in statuses[4]


def test_real_run_measures_every_built_candidate_the_same_way(real_run, fast_judge):
    result, _ = real_run
    base, fp32, int8 = result.rows[:3]
    assert (base["backend"], fp32["backend"], int8["backend"]) == ("torch", "onnxruntime", "onnxruntime")
    assert (base["precision"], fp32["precision"], int8["precision"]) == ("fp32", "fp32", "int8")
    for row in (base, fp32, int8):
        assert row["latency_p50_ms"] > 0 and row["episodes"] == fast_judge.eval_episodes and row["threads"] == fast_judge.threads
        assert row["size_bytes"] > 0 and row["peak_memory_mib"] >= 0
        assert len(result.latency_samples[row["name"]]) == fast_judge.latency_iters
    assert base["action_error_mean"] == 0.0 and base["speedup"] == 1.0
    assert fp32["action_error_mean"] < 1e-3 and fp32["action_cosine"] > 0.999  # the same function, exported
    assert 0 < int8["action_error_mean"] < 0.5 and int8["size_bytes"] < fp32["size_bytes"] / 2
    assert set(result.errors) == {"ort-fp32", "ort-int8"}


def test_real_run_publishes_the_smallest_candidate_with_its_lineage(real_run, parent, dataset):
    result, root = real_run
    assert result.selected == "ort-int8" and result.selected_dir == root / "selected"
    spec = verify_artifact(result.selected_dir)
    assert [s.technique for s in spec.lineage] == ["onnx", "ort-int8-dynamic"]
    assert spec.lineage[0].parent_sha256 == stage.parent_sha256(parent)
    exported = root / "work" / "ort-fp32" / "1-onnx"  # the export ort-fp32 built: the shared first step is built once
    assert not (root / "work" / "ort-int8" / "1-onnx").exists()
    assert spec.lineage[1].parent_sha256 == sha256_file(exported / CHECKSUMS_FILE)
    policy = load_policy(result.selected_dir)
    [obs] = stage.dataset_observations(dataset, split="val", count=1, seed=0)
    assert policy.name == "onnxruntime"
    assert policy.predict(obs).actions.shape == (spec.model.chunk_length, spec.model.action_dim)
    assert "**ort-int8** was selected (objective: size)" in result.explanation


def test_real_run_does_not_build_skipped_or_unbuildable_candidates(real_run):
    _, root = real_run
    assert not (root / "work" / "bf16-unavailable").exists()
    assert not (root / "work" / "int8-from-torch").exists()


def test_real_run_metrics_carry_the_table_and_the_headline(real_run):
    result, _ = real_run
    metrics = result.metrics()
    assert {"candidates", "selected", "baseline_latency_ms", "best_speedup"} <= set(metrics)
    assert metrics["selected"] == "ort-int8" and metrics["candidates"] is result.rows
    assert metrics["baseline_latency_ms"] == result.rows[0]["latency_p50_ms"]
    expected = max(result.rows[0]["latency_p50_ms"] / r["latency_p50_ms"] for r in result.rows[1:3])
    assert metrics["best_speedup"] == pytest.approx(expected)
    json.dumps(metrics)
    assert len(result.table()) == 5


def test_real_rows_under_an_impossible_latency_budget_select_nothing(real_run):
    result, _ = real_run
    selected, reasons = select_candidate(result.rows, Budgets(max_latency_ms=1e-6, max_success_drop_pp=100.0, max_action_error=5.0))
    assert selected is None
    for name in (stage.BASELINE, "ort-fp32", "ort-int8"):
        assert reasons[name] == [reasons[name][0]] and "> budget 1e-06 ms" in reasons[name][0]
