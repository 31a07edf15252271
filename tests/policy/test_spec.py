"""policy.json: assembling a spec, cross-field checks, parsing with errors that name the key."""

from __future__ import annotations

import json

import pytest

from vla_kit.errors import ArtifactError, InputError
from vla_kit.policy import make_spec, model_config
from vla_kit.policy.normalization import NormStats
from vla_kit.policy.spec import FORMAT_VERSION, parse_spec
from vla_kit.types import ActionSpace


def test_make_spec_takes_image_size_and_chunk_length_from_the_model(spec, tiny_config):
    assert (spec.cameras.names, spec.cameras.height, spec.cameras.width) == (("front",), 96, 96)
    assert spec.chunk_length == tiny_config.chunk_length
    assert spec.action_space is ActionSpace.EE_DELTA and spec.format_version == FORMAT_VERSION


def test_spec_survives_a_json_round_trip(spec):
    assert parse_spec(json.loads(spec.to_json()), "policy.json") == spec


def test_every_mismatch_between_the_pieces_is_listed(tokenizer):
    cfg = model_config("tiny", vocab_size=tokenizer.vocab_size + 1)
    with pytest.raises(InputError) as info:
        make_spec(cfg, tokenizer, proprio_stats=NormStats.identity(13), action_stats=NormStats.identity(7), cameras=("a", "b"))
    message = str(info.value)
    for fragment in ("vocab_size", "proprio stats have 13", "2 camera names"):
        assert fragment in message


def test_provenance_must_hold_only_json_values(tiny_config, tokenizer):
    with pytest.raises(InputError, match="provenance"):
        make_spec(
            tiny_config, tokenizer, proprio_stats=NormStats.identity(14), action_stats=NormStats.identity(7),
            provenance={"when": object()},
        )


def test_duplicate_camera_names_are_rejected(tiny_config, tokenizer):
    cfg = tiny_config.model_copy(update={"num_cameras": 2})
    with pytest.raises(InputError, match="distinct"):
        make_spec(cfg, tokenizer, proprio_stats=NormStats.identity(14), action_stats=NormStats.identity(7), cameras=("front", "front"))


@pytest.mark.parametrize("version", [None, 0, 2, "1", True])
def test_unknown_format_version_is_an_artifact_error(spec, version):
    data = json.loads(spec.to_json())
    data["format_version"] = version
    with pytest.raises(ArtifactError, match="format_version"):
        parse_spec(data, "x/policy.json")


def test_schema_violation_names_the_file_and_key_path(spec):
    data = json.loads(spec.to_json())
    data["model"]["d_model"] = "wide"
    with pytest.raises(ArtifactError, match=r"x/policy.json: model\.d_model"):
        parse_spec(data, "x/policy.json")


def test_unknown_key_is_an_artifact_error(spec):
    data = json.loads(spec.to_json())
    data["extra"] = 1
    with pytest.raises(ArtifactError, match="extra"):
        parse_spec(data, "policy.json")


def test_a_json_array_is_not_a_spec():
    with pytest.raises(ArtifactError, match="JSON object"):
        parse_spec([], "policy.json")
