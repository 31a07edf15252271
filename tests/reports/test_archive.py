"""The archive: complete runs only, newest successful run for latest:, stable hashes."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from vla_kit.errors import ArchiveError, RunNotFoundError
from vla_kit.reports import archive


def _run(root, dep, run_id, stage, status, started, headline=None, metrics=None):
    path = root / dep / run_id
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({
        "run_id": run_id, "stage": stage, "deployment": dep, "status": status, "started_at": started,
        "duration_s": 1.5, "headline_metrics": headline or [], "error": None if status == "succeeded" else {"reason": "boom"},
    }))
    (path / "metrics.json").write_text(json.dumps(metrics or {}))
    return path


def test_run_ids_sort_by_start_time_and_are_unique():
    t1 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    t2 = datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc)
    a, b = archive.new_run_id("survey", t1), archive.new_run_id("survey", t2)
    assert a < b and a.startswith("20260102-030405-survey-")
    assert archive.new_run_id("My Notebook!", t1).split("-")[2] == "my_notebook"
    assert len({archive.new_run_id("s", t1) for _ in range(50)}) > 40


def test_list_runs_ignores_partial_and_manifestless_folders(tmp_path):
    _run(tmp_path, "d", "r1", "survey", "succeeded", "2026-01-01T00:00:00")
    (tmp_path / "d" / ".r2.partial").mkdir()
    (tmp_path / "d" / "r3").mkdir()
    assert [r.run_id for r in archive.list_runs(tmp_path)] == ["r1"]
    assert archive.incomplete_runs(tmp_path) == [tmp_path / "d" / ".r2.partial"]


def test_headline_metrics_come_from_metrics_json(tmp_path):
    _run(tmp_path, "d", "r1", "survey", "succeeded", "2026-01-01T00:00:00", headline=["x"], metrics={"x": 2.0, "y": 3})
    assert archive.list_runs(tmp_path, "d")[0].headline == {"x": 2.0}


def test_latest_skips_failed_runs_and_other_deployments(tmp_path):
    _run(tmp_path, "d", "r1", "train", "succeeded", "2026-01-01T00:00:00")
    _run(tmp_path, "d", "r2", "train", "failed", "2026-01-02T00:00:00")
    _run(tmp_path, "e", "r3", "train", "succeeded", "2026-01-03T00:00:00")
    assert archive.latest_run(tmp_path, "d", "train").run_id == "r1"


def test_latest_without_a_match_says_what_exists(tmp_path):
    _run(tmp_path, "d", "r1", "survey", "failed", "2026-01-01T00:00:00")
    with pytest.raises(RunNotFoundError, match=r"survey \(failed\)"):
        archive.latest_run(tmp_path, "d", "survey")
    with pytest.raises(RunNotFoundError, match="no runs"):
        archive.latest_run(tmp_path, "nobody", "survey")


def test_resolve_ref_with_sub_path_and_plain_paths(tmp_path):
    run = _run(tmp_path, "d", "r1", "train", "succeeded", "2026-01-01T00:00:00")
    (run / "artifacts" / "policy").mkdir(parents=True)
    assert archive.resolve_ref("latest:train/artifacts/policy", tmp_path, "d") == (run / "artifacts" / "policy").resolve()
    assert archive.resolve_ref("latest:train", tmp_path, "d") == run.resolve()
    with pytest.raises(RunNotFoundError, match="has no artifacts/missing"):
        archive.resolve_ref("latest:train/artifacts/missing", tmp_path, "d")
    assert archive.resolve_ref(str(run), tmp_path, "d") == run.resolve()
    with pytest.raises(ArchiveError, match="does not exist"):
        archive.resolve_ref(str(tmp_path / "nope"), tmp_path, "d")


def test_folder_hash_depends_on_names_and_contents_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "w.bin").write_bytes(b"123")
        (d / "x.json").write_text("{}")
    assert archive.sha256_path(a) == archive.sha256_path(b)
    (b / "x.json").write_text("{ }")
    assert archive.sha256_path(a) != archive.sha256_path(b)
    assert archive.sha256_path(a / "x.json") == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_prepare_outputs_refuses_a_path_through_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ArchiveError, match="not writable"):
        archive.prepare_outputs(tmp_path / "f", "d")
