"""`vla-kit safety filter|audit` as a user runs them: subprocesses, npz files on disk, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.safety.streams import PANDA_HOME

PARAMS = str(ROOT / "params" / "ci.yaml")
DT = 0.001


def vla_kit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vla_kit.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ))


def smooth_targets(n: int) -> np.ndarray:
    """A policy's targets: a smooth move from rest, then a few wild ones (a jump, a NaN)."""
    t = np.arange(1, n + 1) * DT
    s = 0.2 * (1.0 - np.cos(2 * np.pi * 0.5 * t)) ** 2 / 4.0
    q = PANDA_HOME + s[:, None] * np.linspace(1.0, -1.0, 7)
    q[n // 2:, 0] += 0.004  # a jump: clamped
    return q


@pytest.fixture(scope="module")
def filtered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety")
    raw, safe = folder / "raw.npz", folder / "safe.npz"
    np.savez(raw, q0=PANDA_HOME, q_target=smooth_targets(400))
    proc = vla_kit("safety", "filter", "--params", PARAMS, "--input", str(raw), "--output", str(safe))
    return proc, folder, safe


def test_filter_writes_the_sent_stream_and_the_applied_envelope(filtered):
    proc, folder, safe = filtered
    assert proc.returncode == 0, proc.stderr
    assert "filtered 400 commands" in proc.stdout
    with np.load(safe) as out:
        assert out["q_sent"].shape == (400, 7) and np.isfinite(out["q_sent"]).all()
        for key in ("intervened", "level", "estop"):
            assert out[key].shape == (400,)
        assert out["intervened"].any() and not out["estop"].any() and out["level"].max() == 2  # WARNING: clamped
        assert float(out["dt"]) == DT and out["q0"].tolist() == PANDA_HOME.tolist()
        for key in ("q_min", "q_max", "v_max", "a_max", "j_max", "max_step"):
            assert out[key].shape == (7,)
        assert out["v_max"][0] == 2.0  # the demo envelope's own limit, not the Panda's published 2.175
        assert out["joint_names"][0] == "panda_joint1"
    assert sorted(p.name for p in folder.iterdir()) == ["raw.npz", "safe.npz"]  # no temporary file left behind


def test_the_filtered_stream_audits_clean(filtered):
    _, folder, safe = filtered
    proc = vla_kit("safety", "audit", "--params", PARAMS, "--input", str(safe), "--json", str(folder / "clean.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clean: 400 samples" in proc.stdout
    assert json.loads((folder / "clean.json").read_text())["clean"] is True


def test_an_audit_of_a_violating_log_exits_1_and_names_the_violations(tmp_path):
    log = tmp_path / "log.npz"
    q = smooth_targets(300)
    q[150, 2] = np.nan
    np.savez(log, q=q, dt=DT)
    out = tmp_path / "violations.json"
    proc = vla_kit("safety", "audit", "--params", PARAMS, "--input", str(log), "--json", str(out), "--rows", "5")
    assert proc.returncode == 1, proc.stderr
    assert "jerk" in proc.stdout and "panda_joint1" in proc.stdout and "violations in 300 samples" in proc.stdout
    report = json.loads(out.read_text())
    assert report["clean"] is False and report["total"] == len(report["violations"])
    kinds = {v["type"] for v in report["violations"]}
    assert {"position", "velocity", "jerk"} <= kinds
    nan_row = next(v for v in report["violations"] if v["type"] == "position")
    assert nan_row == {"type": "position", "joint": 2, "joint_name": "panda_joint3", "step": 150, "value": None,
                       "limit": nan_row["limit"]}


@pytest.mark.parametrize("arrays,needle", [
    ({"q_target": np.zeros((5, 7))}, "key 'q0': missing; expected an array of shape (7,)"),
    ({"q0": PANDA_HOME}, "key 'q_target': missing"),
    ({"q0": PANDA_HOME, "q_target": np.zeros((5, 6))}, "key 'q_target': got shape (5, 6), expected (N, 7)"),
    ({"q0": PANDA_HOME[:6], "q_target": np.zeros((5, 7))}, "key 'q0': got shape (6,), expected (7,)"),
    ({"q0": np.full(7, np.nan), "q_target": np.zeros((5, 7))}, "key 'q0': expected finite values"),
    ({"q0": PANDA_HOME, "q_target": np.zeros((0, 7))}, "key 'q_target': got shape (0, 7), expected (N, 7)"),
    ({"q0": PANDA_HOME, "q_target": np.zeros((5, 7)), "humans": np.zeros((4, 1, 3))}, "key 'humans': got shape (4, 1, 3), expected (5, H, 3)"),
])
def test_filter_bad_input_exits_2_naming_file_key_and_shapes(tmp_path, arrays, needle):
    raw = tmp_path / "raw.npz"
    np.savez(raw, **arrays)
    proc = vla_kit("safety", "filter", "--params", PARAMS, "--input", str(raw), "--output", str(tmp_path / "out.npz"))
    assert proc.returncode == 2
    assert str(raw) in proc.stderr and needle in proc.stderr, proc.stderr
    assert not (tmp_path / "out.npz").exists()


def test_a_file_that_is_not_an_npz_exits_2(tmp_path):
    bad = tmp_path / "raw.npz"
    bad.write_text("not a zip")
    for command in (["filter", "--output", str(tmp_path / "o.npz")], ["audit"]):
        proc = vla_kit("safety", command[0], "--params", PARAMS, "--input", str(bad), *command[1:])
        assert proc.returncode == 2 and "not a readable .npz" in proc.stderr
    proc = vla_kit("safety", "audit", "--params", PARAMS, "--input", str(tmp_path / "missing.npz"))
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_audit_bad_input_exits_2(tmp_path):
    log = tmp_path / "log.npz"
    np.savez(log, q=np.zeros((10, 7)), t=np.arange(9.0))
    proc = vla_kit("safety", "audit", "--params", PARAMS, "--input", str(log))
    assert proc.returncode == 2 and f"{log}: key 't'" in proc.stderr and "shape (10,)" in proc.stderr
    np.savez(log, samples=np.zeros((10, 7)))
    proc = vla_kit("safety", "audit", "--params", PARAMS, "--input", str(log))
    assert proc.returncode == 2 and "key 'q': missing" in proc.stderr


def test_a_bad_safety_section_exits_2_naming_the_key_path_and_line(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("deployment: x\nsafety:\n  joints:\n    v_max: [1, 1, 1, -1, 1, 1, 1]\n")
    raw = tmp_path / "raw.npz"
    np.savez(raw, q0=PANDA_HOME, q_target=np.zeros((3, 7)))
    proc = vla_kit("safety", "filter", "--params", str(params), "--input", str(raw), "--output", str(tmp_path / "o.npz"))
    assert proc.returncode == 2
    assert f"{params}:4: safety.joints.v_max[3]: got -1.0; expected a finite number > 0" in proc.stderr


def test_set_overrides_the_envelope(tmp_path, filtered):
    _, folder, _ = filtered
    out = tmp_path / "reject.npz"
    proc = vla_kit("safety", "filter", "--params", PARAMS, "--set", "safety.on_violation=reject", "--input",
                   str(folder / "raw.npz"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert np.load(out)["intervened"].any()
