"""The PyTorch backend: loads exactly what was saved, and predicts exactly what the model does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vla_kit.errors import ArtifactError, InputError
from vla_kit.policy import TorchPolicy, build_model, load_policy, make_spec, model_config, write_artifact
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.normalization import NormStats
from vla_kit.types import ActionChunk, ActionSpace


def test_loaded_policy_predicts_exactly_what_the_in_memory_model_predicts(artifact, model, spec, make_obs):
    obs = make_obs(3)
    loaded = load_policy(artifact).predict(obs)
    in_memory = TorchPolicy.from_model(model, spec).predict(obs)
    # And by hand: shared pre-processing, the raw network, shared post-processing.
    inputs, _ = TorchPolicy.from_model(model, spec).processor.preprocess([obs])
    with torch.inference_mode():
        raw = model.eval()(*(torch.from_numpy(a) for a in inputs.as_dict().values())).numpy()
    by_hand = TorchPolicy.from_model(model, spec).processor.postprocess(raw)[0]
    assert isinstance(loaded, ActionChunk) and loaded.space is ActionSpace.EE_DELTA
    assert loaded.actions.shape == (spec.chunk_length, 7)
    np.testing.assert_array_equal(loaded.actions, in_memory.actions)
    np.testing.assert_array_equal(loaded.actions, by_hand)


def test_loaded_policy_exposes_its_spec_and_parameter_count(artifact, model, spec):
    policy = load_policy(artifact)
    assert policy.spec == spec
    assert policy.num_parameters == sum(p.numel() for p in model.parameters())


def test_batch_prediction_matches_one_by_one(artifact, make_obs):
    policy = load_policy(artifact)
    observations = [make_obs(i) for i in range(3)]
    batch = policy.predict_batch(observations)
    for obs, chunk in zip(observations, batch):
        np.testing.assert_allclose(chunk.actions, policy.predict(obs).actions, rtol=0, atol=1e-5)


def test_unknown_words_instruction_yields_a_chunk_with_a_warning(artifact, make_obs):
    chunk = load_policy(artifact).predict(make_obs(instruction="launch the rocket"))
    assert chunk.actions.shape[1] == 7 and np.isfinite(chunk.actions).all()
    assert any("launch" in w or "no word the policy knows" in w for w in chunk.warnings)


def test_known_instruction_yields_no_warning(artifact, make_obs):
    assert load_policy(artifact).predict(make_obs()).warnings == ()


def test_wrong_image_shape_is_an_input_error_naming_camera_and_shape(artifact, make_obs):
    with pytest.raises(InputError, match=r"'front'.*\(96, 96, 3\)"):
        load_policy(artifact).predict(make_obs(size=(96, 128)))


def test_loading_does_not_move_the_global_torch_rng(artifact):
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    load_policy(artifact)
    assert torch.equal(torch.rand(2), expected)


def test_weights_of_another_architecture_are_an_artifact_error(tmp_path, tokenizer, model):
    small = model_config("tiny", vocab_size=tokenizer.vocab_size, d_model=64)
    spec = make_spec(small, tokenizer, proprio_stats=NormStats.identity(14), action_stats=NormStats.identity(7))
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}  # d_model=128 weights
    path = write_artifact(tmp_path / "p", spec, lambda d: save_file(tensors, str(d / WEIGHTS_FILE)))
    with pytest.raises(ArtifactError, match="do not fit the architecture"):
        load_policy(path)


def test_unreadable_weights_file_is_an_artifact_error(tmp_path, spec):
    path = write_artifact(tmp_path / "p", spec, lambda d: (d / WEIGHTS_FILE).write_bytes(b"\x00" * 16))
    with pytest.raises(ArtifactError, match="unreadable safetensors"):
        load_policy(path)


def test_model_and_spec_must_describe_the_same_network(spec, tokenizer):
    other = build_model(model_config("tiny", vocab_size=tokenizer.vocab_size, num_layers=2), seed=0)
    with pytest.raises(ArtifactError, match="differs"):
        TorchPolicy.from_model(other, spec)


def test_wrapping_a_training_model_predicts_without_dropout_and_keeps_it_training(spec, make_obs):
    cfg = spec.model.model_copy(update={"dropout": 0.5})
    model = build_model(cfg, seed=0).train()
    policy = TorchPolicy.from_model(model, spec.model_copy(update={"model": cfg}))
    obs = make_obs()
    np.testing.assert_array_equal(policy.predict(obs).actions, policy.predict(obs).actions)
    assert model.training
