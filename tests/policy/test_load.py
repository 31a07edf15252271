"""load_policy: artifact folders and run folders, verification before loading."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import ArtifactError, ChecksumMismatchError
from vla_kit.policy import load_policy, save_artifact
from vla_kit.policy.artifact import WEIGHTS_FILE


def test_run_folder_is_accepted(tmp_path, model, spec, make_obs):
    run = tmp_path / "outputs" / "demo" / "20250101-000000-train"
    save_artifact(run / "artifacts" / "policy", model, spec)
    artifact = load_policy(run / "artifacts" / "policy")
    from_run = load_policy(run)
    assert from_run.source == str(run / "artifacts" / "policy")
    obs = make_obs()
    np.testing.assert_array_equal(from_run.predict(obs).actions, artifact.predict(obs).actions)


def test_save_verify_load_predict_round_trip_is_deterministic(artifact, make_obs):
    obs = make_obs(7)
    first, second = load_policy(artifact).predict(obs), load_policy(artifact).predict(obs)
    np.testing.assert_array_equal(first.actions, second.actions)


def test_tampered_weights_refuse_to_load(artifact):
    weights = artifact / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        load_policy(artifact)


def test_folder_that_is_neither_artifact_nor_run_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="policy.json: missing.*artifacts/policy"):
        load_policy(tmp_path)


def test_a_file_instead_of_a_folder_is_an_artifact_error(tmp_path):
    (tmp_path / "policy.json").write_text("{}")
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        load_policy(tmp_path / "policy.json")
