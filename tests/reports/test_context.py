"""record(): what a notebook shows, it stores — atomically, as plain JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from vla_kit.errors import InputError
from vla_kit.reports import context


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv(context.ENV_RUN_DIR, str(tmp_path))
    return tmp_path


def test_record_writes_metrics_and_returns_the_value(run):
    assert context.record("latency_ms", 3.5) == 3.5
    context.record("latency_ms", 4.0)  # replaces
    context.record("name", "x")
    assert json.loads((run / "metrics.json").read_text()) == {"latency_ms": 4.0, "name": "x"}
    assert context.recorded() == {"latency_ms": 4.0, "name": "x"}


def test_headline_names_are_kept_once_in_order(run):
    context.record("a", 1, headline=True)
    context.record("b", 2, headline=True)
    context.record("a", 3, headline=True)
    assert json.loads((run / context.HEADLINE_FILE).read_text()) == ["a", "b"]


@dataclass
class Point:
    x: float
    y: np.float32


def test_numpy_pandas_dataclasses_become_plain_json(run):
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, float("nan")]})
    context.record("table", df)
    context.record("arr", np.arange(3, dtype=np.int64))
    context.record("pt", Point(1.0, np.float32(2.5)))
    context.record("nonfinite", [float("inf"), np.nan, 1.0])
    m = json.loads((run / "metrics.json").read_text())
    assert m["table"] == [{"a": 1, "b": 0.5}, {"a": 2, "b": None}]
    assert m["arr"] == [0, 1, 2] and m["pt"] == {"x": 1.0, "y": 2.5}
    assert m["nonfinite"] == [None, None, 1.0]


@pytest.mark.parametrize("name", ["", "has space", "x" * 200, "../escape"])
def test_bad_metric_names_are_refused(run, name):
    with pytest.raises(InputError):
        context.record(name, 1)


def test_unstorable_value_is_refused_and_nothing_is_written(run):
    with pytest.raises(InputError, match="cannot store a object"):
        context.record("x", object())
    assert not (run / "metrics.json").exists()


def test_artifacts_dir_is_inside_the_run(run):
    assert context.artifacts_dir() == run / "artifacts" and (run / "artifacts").is_dir()


def test_interactive_session_records_to_a_scratch_folder(monkeypatch, capsys):
    monkeypatch.delenv(context.ENV_RUN_DIR, raising=False)
    monkeypatch.setattr(context, "_interactive_dir", None)
    context.record("k", 1)
    folder = context.run_dir()
    assert (folder / "metrics.json").exists() and "not running under `vla-kit run`" in capsys.readouterr().out
