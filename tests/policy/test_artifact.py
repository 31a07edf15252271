"""The artifact folder: atomic save, checksums, and one failure mode per fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vla_kit.errors import ArtifactError, ChecksumMismatchError, InputError
from vla_kit.policy import build_model, model_config, save_artifact, verify_artifact, write_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, POLICY_FILE, WEIGHTS_FILE, sha256_file


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_save_writes_policy_weights_and_checksums_and_nothing_else(artifact):
    assert sorted(p.name for p in artifact.iterdir()) == sorted([POLICY_FILE, WEIGHTS_FILE, CHECKSUMS_FILE])
    record = json.loads((artifact / CHECKSUMS_FILE).read_text())
    assert record["algorithm"] == "sha256"
    assert record["files"] == {name: sha256_file(artifact / name) for name in (POLICY_FILE, WEIGHTS_FILE)}
    assert siblings(artifact) == ["policy"]  # no temporary folder left behind


def test_verify_returns_the_saved_spec(artifact, spec):
    assert verify_artifact(artifact) == spec


def test_same_weights_and_spec_give_byte_identical_artifacts(tmp_path, tiny_config, spec):
    a = save_artifact(tmp_path / "a", build_model(tiny_config, seed=3), spec)
    b = save_artifact(tmp_path / "b", build_model(tiny_config, seed=3), spec)
    assert (a / CHECKSUMS_FILE).read_bytes() == (b / CHECKSUMS_FILE).read_bytes()


def test_tampered_weights_raise_checksum_mismatch(artifact):
    weights = artifact / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError) as info:
        verify_artifact(artifact)
    assert info.value.path == str(weights) and info.value.expected != info.value.actual


def test_missing_policy_json_is_an_artifact_error(artifact):
    (artifact / POLICY_FILE).unlink()
    with pytest.raises(ArtifactError, match="policy.json: missing"):
        verify_artifact(artifact)


def test_missing_folder_is_an_artifact_error(tmp_path):
    with pytest.raises(ArtifactError, match="no such artifact folder"):
        verify_artifact(tmp_path / "nowhere")


def test_malformed_policy_json_is_an_artifact_error(artifact):
    (artifact / POLICY_FILE).write_text('{"format_version": 1,')
    with pytest.raises(ArtifactError, match="malformed JSON at line 1"):
        verify_artifact(artifact)


def test_unknown_format_version_is_reported_before_checksums(artifact):
    data = json.loads((artifact / POLICY_FILE).read_text())
    data["format_version"] = 99
    (artifact / POLICY_FILE).write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="format_version 99 is not supported") as info:
        verify_artifact(artifact)
    assert not isinstance(info.value, ChecksumMismatchError)


def test_edited_policy_json_raises_checksum_mismatch(artifact):
    data = json.loads((artifact / POLICY_FILE).read_text())
    data["chunk_length"] = 4
    (artifact / POLICY_FILE).write_text(json.dumps(data))
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch"):
        verify_artifact(artifact)


def test_missing_checksums_is_an_artifact_error(artifact):
    (artifact / CHECKSUMS_FILE).unlink()
    with pytest.raises(ArtifactError, match="checksums.json: missing"):
        verify_artifact(artifact)


def test_malformed_checksums_is_an_artifact_error(artifact):
    (artifact / CHECKSUMS_FILE).write_text('{"algorithm": "md5", "files": {}}')
    with pytest.raises(ArtifactError, match="algorithm"):
        verify_artifact(artifact)


def test_missing_weights_file_is_an_artifact_error(artifact):
    (artifact / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match="model.safetensors: recorded in checksums.json but missing"):
        verify_artifact(artifact)


def test_unrecorded_file_is_an_artifact_error(artifact):
    (artifact / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="model.onnx: not recorded"):
        verify_artifact(artifact)


def test_existing_artifact_is_not_replaced_without_overwrite(artifact, model, spec):
    before = (artifact / CHECKSUMS_FILE).read_bytes()
    with pytest.raises(ArtifactError, match="already exists"):
        save_artifact(artifact, model, spec)
    assert (artifact / CHECKSUMS_FILE).read_bytes() == before


def test_overwrite_replaces_the_artifact_and_leaves_no_temporary_folders(artifact, tiny_config, spec):
    before = (artifact / WEIGHTS_FILE).read_bytes()
    save_artifact(artifact, build_model(tiny_config, seed=1), spec, overwrite=True)
    assert (artifact / WEIGHTS_FILE).read_bytes() != before
    verify_artifact(artifact)
    assert siblings(artifact) == ["policy"]


def test_failed_write_leaves_neither_a_partial_artifact_nor_temporary_folders(tmp_path, spec):
    def broken(folder: Path) -> None:
        (folder / WEIGHTS_FILE).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_artifact(tmp_path / "policy", spec, broken)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_previous_artifact(artifact, spec):
    before = (artifact / CHECKSUMS_FILE).read_bytes()

    def broken(folder: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_artifact(artifact, spec, broken, overwrite=True)
    assert (artifact / CHECKSUMS_FILE).read_bytes() == before
    assert siblings(artifact) == ["policy"]


def test_model_whose_config_differs_from_the_spec_is_refused(tmp_path, spec, tokenizer):
    other = build_model(model_config("tiny", vocab_size=tokenizer.vocab_size, d_model=64), seed=0)
    with pytest.raises(InputError, match="d_model"):
        save_artifact(tmp_path / "policy", other, spec)
    assert not (tmp_path / "policy").exists()
