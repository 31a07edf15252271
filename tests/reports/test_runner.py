"""The runner on real papermill runs: one fixture notebook per failure mode."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from pydantic import Field

from tests.conftest import ROOT, make_notebook
from vla_kit.errors import ParamsError, RunFailedError, UsageError
from vla_kit.params import INPUT_REF, STAGES, StageSpec, StrictModel, load_params
from vla_kit.reports.archive import list_runs
from vla_kit.reports.runner import run_pipeline, run_stage

pytestmark = pytest.mark.slow

FAST = ["runner.progress=false", "runner.html=false"]


@pytest.fixture
def params(write_params):
    return load_params(write_params({"deployment": "t", "pipeline": []}), FAST)


def _only_run(root: Path) -> Path:
    runs = [p for p in (root / "t").iterdir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_user_notebook_gets_common_parameters_and_records_metrics(tmp_path, params):
    nb = make_notebook(tmp_path / "mine.ipynb", [
        "from vla_kit import reports\nreports.record('answer', 42, headline=True)\nreports.record('who', deployment)",
        "(reports.artifacts_dir() / 'out.txt').write_text('hello')",
    ])
    res = run_stage(str(nb), params, outputs_root=tmp_path / "out")
    assert res.status == "succeeded" and res.headline == {"answer": 42}
    run = _only_run(tmp_path / "out")
    assert json.loads((run / "metrics.json").read_text()) == {"answer": 42, "who": "t"}
    assert (run / "artifacts" / "out.txt").read_text() == "hello"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "succeeded" and manifest["stage"] == "mine"
    assert manifest["headline_metrics"] == ["answer"]
    assert not (run / ".headline.json").exists()


def test_failing_cell_is_archived_as_failed_with_the_cell_marked(tmp_path, params):
    nb = make_notebook(tmp_path / "boom.ipynb", ["x = 1", "raise ValueError('gripper exploded')", "y = 2"])
    with pytest.raises(RunFailedError) as info:
        run_stage(str(nb), params, outputs_root=tmp_path / "out")
    err = info.value
    assert "ValueError: gripper exploded" in str(err) and err.exit_code == 1
    run = _only_run(tmp_path / "out")
    assert err.run_dir == str(run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"]["ename"] == "ValueError"
    executed = nbformat.read(str(run / "notebook.ipynb"), as_version=4)
    assert "An Exception was encountered" in executed.cells[0].source  # papermill's banner
    failed = [c for c in executed.cells if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert len(failed) == 1 and "gripper exploded" in json.dumps(failed[0].outputs)
    assert [r.status for r in list_runs(tmp_path / "out")] == ["failed"]


def test_dead_kernel_is_reported_and_its_cell_marked(tmp_path, params):
    nb = make_notebook(tmp_path / "dies.ipynb", ["x = 1", "import os\nos._exit(3)", "y = 2"])
    with pytest.raises(RunFailedError) as info:
        run_stage(str(nb), params, outputs_root=tmp_path / "out")
    assert "DeadKernelError" in str(info.value)
    run = _only_run(tmp_path / "out")
    executed = nbformat.read(str(run / "notebook.ipynb"), as_version=4)
    marked = [c for c in executed.cells if c.get("metadata", {}).get("papermill", {}).get("exception")]
    assert len(marked) == 1 and "os._exit" in marked[0].source
    assert "An Exception was encountered" in executed.cells[0].source
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"


def test_cell_longer_than_the_timeout_fails_the_run(tmp_path, write_params):
    params = load_params(write_params({"deployment": "t"}), FAST + ["runner.cell_timeout_s=2"])
    nb = make_notebook(tmp_path / "slow.ipynb", ["import time\ntime.sleep(60)"])
    with pytest.raises(RunFailedError) as info:
        run_stage(str(nb), params, outputs_root=tmp_path / "out")
    assert "runner.cell_timeout_s = 2" in str(info.value)
    assert json.loads((_only_run(tmp_path / "out") / "manifest.json").read_text())["error"]["ename"] == "CellTimeoutError"


def test_unwritable_outputs_folder_is_a_usage_error_and_runs_nothing(tmp_path, params):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    nb = make_notebook(tmp_path / "ok.ipynb", ["x = 1"])
    with pytest.raises(Exception) as info:
        run_stage(str(nb), params, outputs_root=blocker / "outputs")
    assert getattr(info.value, "exit_code", None) == 2 and "not writable" in str(info.value)


def test_unknown_stage_lists_the_stages(params, tmp_path):
    with pytest.raises(UsageError, match="stages: survey"):
        run_stage("surveyy", params, outputs_root=tmp_path)


class EchoParams(StrictModel):
    policy: str = Field("latest:mine/artifacts", **INPUT_REF)  # an input reference, resolved by the runner
    gain: float = 1.0


# A test double registered through the real stage registry, with an input reference.
@pytest.fixture
def echo_stage(tmp_path):
    nbdir = tmp_path / "nbs"
    make_notebook(nbdir / "echo.ipynb", ["from vla_kit import reports\nreports.record('policy', policy)\nreports.record('gain', gain)"],
                  params="deployment = 'x'\nseed = 0\ntarget = 'x86-cpu'\npolicy = ''\ngain = 0.0")
    STAGES.register("echo", StageSpec("echo", "echo.ipynb", EchoParams, "test double"))
    try:
        yield nbdir
    finally:
        STAGES.unregister("echo")


def test_latest_ref_resolves_to_the_newest_successful_run_and_is_hashed(tmp_path, write_params, echo_stage):
    params = load_params(write_params({"deployment": "t"}), FAST)
    mine = make_notebook(tmp_path / "mine.ipynb", ["from vla_kit import reports\n(reports.artifacts_dir() / 'w.bin').write_bytes(b'weights')"])
    first = run_stage(str(mine), params, outputs_root=tmp_path / "out")
    res = run_stage("echo", params, outputs_root=tmp_path / "out", notebooks_dir=echo_stage)
    assert res.metrics["policy"] == str(first.run_dir / "artifacts")
    manifest = json.loads((res.run_dir / "manifest.json").read_text())
    inp = manifest["inputs"]["echo.policy"]
    assert inp["ref"] == "latest:mine/artifacts" and len(inp["sha256"]) == 64


def test_latest_ref_without_a_run_is_a_params_error_naming_the_key(tmp_path, write_params, echo_stage):
    params = load_params(write_params({"deployment": "t"}), FAST)
    with pytest.raises(ParamsError) as info:
        run_stage("echo", params, outputs_root=tmp_path / "out", notebooks_dir=echo_stage)
    assert info.value.key_path == "echo.policy" and "no successful 'mine' run" in str(info.value)
    assert not (tmp_path / "out" / "t").exists() or not any((tmp_path / "out" / "t").iterdir())


def test_stage_notebook_declaring_unknown_parameters_is_refused(tmp_path, write_params, echo_stage):
    make_notebook(echo_stage / "echo.ipynb", ["x = 1"], params="deployment = 'x'\nseed = 0\ntarget = 'x86-cpu'\npolicy = ''\ngain = 0.0\nbogus = 1")
    params = load_params(write_params({"deployment": "t", "echo": {"policy": str(tmp_path)}}), FAST)
    with pytest.raises(UsageError, match="declares bogus"):
        run_stage("echo", params, outputs_root=tmp_path / "out", notebooks_dir=echo_stage)


def test_pipeline_stops_at_the_first_failed_stage(tmp_path, write_params, echo_stage):
    make_notebook(echo_stage / "echo.ipynb", ["raise RuntimeError('no')"], params="deployment = 'x'\nseed = 0\ntarget = 'x86-cpu'\npolicy = ''\ngain = 0.0")
    params = load_params(write_params({"deployment": "t", "pipeline": ["echo", "survey"], "echo": {"policy": str(tmp_path)}}), FAST)
    logs: list[str] = []
    with pytest.raises(RunFailedError):
        run_pipeline(params, outputs_root=tmp_path / "out", notebooks_dir=echo_stage, log=logs.append)
    assert any("not run: survey" in line for line in logs)
    assert [r.stage for r in list_runs(tmp_path / "out")] == ["echo"]
