"""`vla-kit` as a user meets it: real subprocesses, real papermill, files on disk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT, make_notebook
from vla_kit.reports.archive import RUN_FILES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def survey_run(tmp_path_factory):
    """One real `vla-kit run survey --params params/ci.yaml`, shared by the checks below."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("archive") / "outputs"
    proc = subprocess.run(
        [sys.executable, "-m", "vla_kit.cli", "run", "survey", "--params", "params/ci.yaml", "--outputs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    runs = list((out / "ci").iterdir())
    assert len(runs) == 1
    return proc, runs[0], out


def test_survey_run_archives_every_file(survey_run):
    proc, run, _ = survey_run
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert (run / "artifacts").is_dir()
    assert re.match(r"^\d{8}-\d{6}-survey-[0-9a-f]{4}$", run.name)
    assert "survey: succeeded" in proc.stdout and str(run) in proc.stdout


def test_survey_manifest_records_environment_inputs_and_timing(survey_run):
    _, run, _ = survey_run
    m = json.loads((run / "manifest.json").read_text())
    for key in ("vla_kit_version", "git", "python", "packages", "hardware", "seeds", "inputs", "started_at", "finished_at", "duration_s", "status", "params_sha256"):
        assert key in m, key
    assert m["status"] == "succeeded" and m["error"] is None
    assert m["packages"]["papermill"] and m["packages"]["torch"].startswith("2.13.0")
    assert m["hardware"]["logical_cores"] >= 1 and m["hardware"]["cpu_model"]
    assert m["git"]["revision"] is None or len(m["git"]["revision"]) == 40
    assert m["seeds"] == {"seed": 0} and m["duration_s"] > 0


def test_survey_metrics_hold_the_measured_peaks_and_working_backends(survey_run):
    _, run, _ = survey_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("cpu_fp32_gflops", "cpu_bf16_gflops", "cpu_int8_gops", "cpu_mem_bw_gbs"):
        assert metrics[key] > 0, key
    assert {"torch-cpu", "onnxruntime-cpu"} <= set(metrics["backends_ok"])
    assert len(metrics["platform_comparison"]) >= 7
    assert metrics["target_comparison"]["target"] == "x86-cpu"


def test_survey_params_yaml_records_resolved_defaults(survey_run):
    import yaml

    _, run, _ = survey_run
    p = yaml.safe_load((run / "params.yaml").read_text())
    assert p["deployment"] == "ci" and p["survey"]["gemm_sizes"] == [128, 256]
    assert p["runner"]["cell_timeout_s"] == 1500


def test_report_html_opens_offline_with_every_figure(survey_run):
    _, run, _ = survey_run
    html = (run / "report.html").read_text()
    executed = nbformat.read(str(run / "notebook.ipynb"), as_version=4)
    figures = sum(1 for c in executed.cells for o in c.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {}))
    assert figures >= 3
    assert html.count("Plotly.newPlot(") == figures  # every figure is drawn in the report
    assert html.count("plotly.js v") == 1  # plotly.js embedded exactly once
    remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?:[^"]+)"', html)
    assert remote == [], remote
    assert "cpu_fp32_gflops" in html or "fp32 GFLOP/s" in html
    assert "vla-run-header" in html and "succeeded" in html


def test_reports_lists_the_run_with_headline_metrics(survey_run, cli):
    _, run, out = survey_run
    proc = cli("reports", "--outputs", str(out))
    assert proc.returncode == 0
    assert run.name in proc.stdout and "succeeded" in proc.stdout and "cpu_fp32_gflops=" in proc.stdout
    as_json = json.loads(cli("reports", "--outputs", str(out), "--json").stdout)
    assert as_json[0]["run_id"] == run.name and as_json[0]["headline"]["cpu_fp32_gflops"] > 0


def test_bad_params_exit_2_naming_file_key_and_value(cli, write_params):
    bad = write_params("deployment: ci\nsurvey:\n  gemm_repeats: lots\n")
    proc = cli("run", "survey", "--params", str(bad))
    assert proc.returncode == 2
    assert f"{bad}:3: survey.gemm_repeats: got 'lots'; expected a valid integer" in proc.stderr


def test_unknown_key_exit_2_lists_known_keys(cli, write_params):
    bad = write_params("deployment: ci\nsurvey:\n  gemm_repeat: 3\n")
    proc = cli("run", "survey", "--params", str(bad))
    assert proc.returncode == 2 and "survey.gemm_repeat" in proc.stderr and "gemm_repeats" in proc.stderr


def test_set_override_error_names_the_argument(cli):
    proc = cli("run", "survey", "--params", "params/ci.yaml", "--set", "survey.threads=-1")
    assert proc.returncode == 2 and "--set survey.threads=-1: survey.threads: got -1" in proc.stderr


def test_missing_params_file_and_unknown_stage_exit_2(cli, tmp_path):
    assert cli("run", "survey", "--params", str(tmp_path / "nope.yaml")).returncode == 2
    proc = cli("run", "train_the_robot", "--params", "params/ci.yaml")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr


def test_failing_notebook_exits_1_and_is_archived_as_failed(cli, tmp_path):
    nb = make_notebook(tmp_path / "bad.ipynb", ["raise RuntimeError('joint 3 over limit')"])
    out = tmp_path / "arch"
    proc = cli("run", str(nb), "--params", "params/ci.yaml", "--outputs", str(out))
    assert proc.returncode == 1
    assert "RuntimeError: joint 3 over limit" in proc.stderr and "archived as failed" in proc.stderr
    (run,) = list((out / "ci").iterdir())
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert "status-failed" in (run / "report.html").read_text()
    listing = cli("reports", "--outputs", str(out)).stdout
    assert "failed" in listing and "joint 3 over limit" in listing


def test_unwritable_outputs_exit_2(cli, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    proc = cli("run", "survey", "--params", "params/ci.yaml", "--outputs", str(blocker / "out"))
    assert proc.returncode == 2 and "not writable" in proc.stderr


def test_stages_and_params_commands(cli):
    assert "survey" in cli("stages").stdout and "train" in cli("stages").stdout
    proc = cli("params", "--params", "params/ci.yaml", "--set", "survey.gemm_repeats=7")
    assert proc.returncode == 0 and "gemm_repeats: 7" in proc.stdout


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    """One real `vla-kit run train --params params/ci.yaml` (smoke-sized)."""
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("train") / "outputs"
    proc = subprocess.run(
        [sys.executable, "-m", "vla_kit.cli", "run", "train", "--params", "params/ci.yaml", "--outputs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (out / "ci").iterdir() if p.name != "datasets"]
    return run, out


def test_train_run_archives_a_loadable_policy_and_its_evaluation(train_run):
    run, out = train_run
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("success_rate", "success_rate_reach", "grounding_accuracy", "num_parameters", "training_time_s", "dataset", "evaluation", "grounding"):
        assert key in metrics, key
    assert metrics["num_parameters"] <= 2_000_000 and metrics["dataset"]["episodes"] == 160
    assert metrics["evaluation"]["episodes"] == 60 and len(metrics["grounding"]["matrix"]) == 4
    assert (run / "artifacts" / "policy" / "policy.json").is_file() and (run / "artifacts" / "checkpoints").is_dir()
    assert list((out / "ci" / "datasets").iterdir()), "the dataset is cached per deployment"
    html = (run / "report.html").read_text()
    assert html.count("Plotly.newPlot(") >= 4 and "data:image/png;base64," in html


def test_evaluate_cli_reproduces_numbers_as_json(train_run, cli, tmp_path):
    run, _ = train_run
    out = tmp_path / "eval.json"
    proc = cli("evaluate", str(run), "--episodes", "2", "--seed", "500", "--grounding-scenes", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["episodes"] == 2 and data["seed"] == 500 and "grounding_accuracy" in data and "per_task" in data
    assert "reach" in proc.stdout and "grounding accuracy" in proc.stdout


def test_evaluate_cli_refuses_a_folder_without_a_policy(cli, tmp_path):
    proc = cli("evaluate", str(tmp_path))
    assert proc.returncode == 2 and "policy" in proc.stderr


def _run_stage(stage: str, out: Path) -> Path:
    """One real `vla-kit run <stage> --params params/ci.yaml` into ``out``; returns its run folder."""
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "vla_kit.cli", "run", stage, "--params", "params/ci.yaml", "--outputs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in (out / "ci").iterdir() if f"-{stage}-" in p.name]
    return run


@pytest.fixture(scope="module")
def optimize_run(train_run):
    """The optimize stage on the train run above (latest:train)."""
    _, out = train_run
    return _run_stage("optimize", out), out


def test_optimize_run_judges_candidates_across_backends_and_selects_one(optimize_run, train_run):
    from vla_kit.optimize.stage import parent_sha256
    from vla_kit.policy import load_policy

    run, _ = optimize_run
    metrics = json.loads((run / "metrics.json").read_text())
    rows = {r["name"]: r for r in metrics["candidates"]}
    judged = [r for r in rows.values() if r["status"] in ("ok", "failed-parity")]
    assert len(judged) >= 6 and len({r["backend"] for r in judged}) >= 3
    assert {"pruned-ort", "distilled-ort"} <= {r["name"] for r in judged}
    assert rows["tensorrt-fp16"]["status"].startswith("skipped:") and "pip install" in rows["tensorrt-fp16"]["status"]
    for r in judged:
        assert r["latency_p50_ms"] > 0 and r["episodes"] == 8 and r["size_bytes"] > 0 and r["threads"] == 1
    assert metrics["selected"] in rows and metrics["baseline_latency_ms"] > 0 and metrics["best_speedup"] > 0
    selected = run / "artifacts" / "selected"
    policy = load_policy(selected)
    assert policy.spec.lineage and policy.spec.lineage[0].parent_sha256 == parent_sha256(train_run[0])
    html = (run / "report.html").read_text()
    assert html.count("Plotly.newPlot(") >= 3


def test_evaluate_cli_runs_the_selected_candidate(optimize_run, cli, tmp_path):
    run, _ = optimize_run
    out = tmp_path / "eval.json"
    proc = cli("evaluate", str(run / "artifacts" / "selected"), "--episodes", "2", "--seed", "12345", "--grounding-scenes", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["episodes"] == 2


def test_optimize_gate_fails_the_run_when_no_candidate_meets_the_budgets(train_run, cli):
    _, out = train_run
    proc = cli("run", "optimize", "--params", "params/ci.yaml", "--outputs", str(out),
               "--set", "optimize.max_latency_ms=0.000001", "--set", "optimize.candidates=[]", "--set", "optimize.eval_episodes=1")
    assert proc.returncode == 1
    assert "no candidate met the budgets" in proc.stderr and "latency" in proc.stderr


@pytest.fixture(scope="module")
def safety_run(train_run):
    """The safety_validate stage on the train run above (latest:train)."""
    return _run_stage("safety_validate", train_run[1])


def test_safety_validate_passes_the_reference_policy_with_zero_violations(safety_run):
    from vla_kit.safety.scenarios import BATTERY

    metrics = json.loads((safety_run / "metrics.json").read_text())
    assert metrics["gate_passed"] is True and metrics["gate_failures"] == []
    assert metrics["violations"] == 0 and metrics["detection_rate"] == 1.0 and metrics["estop_latency_cycles"] <= 1
    rows = {r["scenario"]: r for r in metrics["scenario_results"]}
    assert set(rows) == {s.name for s in BATTERY} and all(r["episodes"] == 3 for r in rows.values())
    assert rows["nan-burst"]["estops"] == 3 and rows["human"]["min_human_distance_m"] is not None
    policy = metrics["policy"]
    assert policy["backend"] == "torch" and policy["lineage"] == "trained" and policy["parent_sha256"] is None
    html = (safety_run / "report.html").read_text()
    assert html.count("Plotly.newPlot(") >= 4 and "Gate passed" in html
    episodes = metrics["episode_results"]  # every episode, with its file for `vla-kit safety audit`
    assert len(episodes) == 3 * len(BATTERY) and not any(e["failed"] for e in episodes)
    assert all((safety_run / "artifacts" / "traces" / e["trace"]).is_file() for e in episodes)
    assert "vla-kit safety audit --params artifacts/traces/" in html and "No episode failed a check" in html
    assert f"checksums sha256 <code>{policy['checksums_sha256'][:12]}</code>" in html


def test_safety_validate_runs_the_optimize_selection_on_its_own_backend(optimize_run, train_run, safety_run, cli):
    from vla_kit.optimize.stage import parent_sha256

    run, out = optimize_run
    proc = cli("run", "safety_validate", "--params", "params/ci.yaml", "--outputs", str(out),
               "--set", "safety_validate.policy=latest:optimize/artifacts/selected",
               "--set", "safety_validate.scenarios=[nominal, spike, stale-command]", "--set", "safety_validate.episodes=1")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    newest = max((p for p in (out / "ci").iterdir() if "-safety_validate-" in p.name), key=lambda p: p.name)
    metrics = json.loads((newest / "metrics.json").read_text())
    selected = json.loads((run / "metrics.json").read_text())["selected"]
    policy = metrics["policy"]
    assert policy["artifact"] == str((run / "artifacts" / "selected").resolve())
    if policy["lineage"] == "trained":  # the baseline or a backend-only candidate won: the trained bytes themselves
        assert policy["checksums_sha256"] == parent_sha256(train_run[0]), (selected, policy)
    else:
        assert policy["parent_sha256"] == parent_sha256(train_run[0]), (selected, policy)
    # whatever the selection's task success, the layer holds: nothing unsafe reaches the arm, every fault is caught
    assert metrics["violations"] == 0 and metrics["detection_rate"] == 1.0


def test_safety_validate_fails_with_the_layer_bypassed(safety_run, cli):
    out = safety_run.parent.parent
    proc = cli("run", "safety_validate", "--params", "params/ci.yaml", "--outputs", str(out), "--set", "safety.enabled=false",
               "--set", "safety_validate.scenarios=[spike, drift]", "--set", "safety_validate.episodes=1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "safety_validate:" in proc.stderr and "violations at the robot" in proc.stderr and "spike" in proc.stderr
    run = max((p for p in (out / "ci").iterdir() if "-safety_validate-" in p.name), key=lambda p: p.name)
    failed = [e for e in json.loads((run / "metrics.json").read_text())["episode_results"] if e["failed"]]
    assert {e["scenario"] for e in failed} == {"spike", "drift"}, failed
    html = (run / "report.html").read_text()
    assert "episode(s) failed a check" in html and ", seed 777000: " in html and " violation(s)): " in html  # the plots show the failing episode
    trace = run / "artifacts" / "traces" / failed[0]["trace"]  # and the audit command finds it again
    audit = cli("safety", "audit", "--params", str(trace.with_suffix(".yaml")), "--input", str(trace))
    assert audit.returncode == 1 and "violation" in audit.stdout, audit.stdout[-2000:] + audit.stderr[-2000:]


def test_safety_validate_fails_a_fault_injected_policy(safety_run, cli):
    out = safety_run.parent.parent
    proc = cli("run", "safety_validate", "--params", "params/ci.yaml", "--outputs", str(out), "--set", "safety_validate.policy_fault=nan-burst",
               "--set", "safety_validate.scenarios=[nominal]", "--set", "safety_validate.episodes=1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "nominal: task success" in proc.stderr
