"""Shared numpy pre/post-processing: camera checks, tokenisation warnings, de-normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.policy import NormStats, Processor, make_spec, model_config
from vla_kit.policy.processing import INPUT_NAMES


def test_batch_has_the_graph_input_names_dtypes_and_shapes(spec, make_obs):
    inputs, warnings = Processor(spec).preprocess([make_obs(0), make_obs(1)])
    arrays = inputs.as_dict()
    assert tuple(arrays) == INPUT_NAMES
    assert arrays["images"].dtype == np.uint8 and arrays["images"].shape == (2, 1, 96, 96, 3)
    assert arrays["token_ids"].dtype == np.int64 and arrays["token_ids"].shape == (2, 16)
    assert arrays["token_mask"].dtype == np.bool_ and arrays["proprio"].dtype == np.float32
    assert warnings == [(), ()]


def test_proprio_is_normalised_with_the_spec_stats(spec, make_obs):
    obs = make_obs()
    inputs, _ = Processor(spec).preprocess([obs])
    stats = spec.normalization.proprio
    np.testing.assert_allclose(inputs.proprio[0], (obs.proprio - np.array(stats.mean)) / np.array(stats.std), rtol=1e-5)


def test_missing_camera_names_the_camera_and_the_expected_shape(spec, make_obs):
    with pytest.raises(InputError, match=r"images\['front'\].*missing.*\(96, 96, 3\)"):
        Processor(spec).preprocess([make_obs(cameras=("wrist",))])


def test_wrong_image_shape_names_the_camera_and_the_expected_shape(spec, make_obs):
    with pytest.raises(InputError, match=r"images\['front'\].*\(64, 64, 3\).*\(96, 96, 3\)"):
        Processor(spec).preprocess([make_obs(size=64)])


def test_wrong_proprio_length_is_an_input_error(spec, make_obs):
    with pytest.raises(InputError, match="proprio: expected 14 values, got 7"):
        Processor(spec).preprocess([make_obs(proprio_dim=7)])


def test_the_failing_observation_of_a_batch_is_named(spec, make_obs):
    with pytest.raises(InputError, match=r"observations\[1\]"):
        Processor(spec).preprocess([make_obs(), make_obs(size=64)])


def test_empty_batch_is_an_input_error(spec):
    with pytest.raises(InputError, match="at least one"):
        Processor(spec).preprocess([])


def test_cameras_the_policy_does_not_use_are_ignored(spec, make_obs):
    inputs, _ = Processor(spec).preprocess([make_obs(cameras=("front", "wrist"))])
    assert inputs.images.shape == (1, 1, 96, 96, 3)


def test_cameras_are_stacked_in_spec_order(tokenizer, make_obs):
    cfg = model_config("tiny", vocab_size=tokenizer.vocab_size, num_cameras=2)
    spec = make_spec(cfg, tokenizer, proprio_stats=NormStats.identity(14), action_stats=NormStats.identity(7), cameras=("wrist", "front"))
    obs = make_obs(cameras=("front", "wrist"))
    inputs, _ = Processor(spec).preprocess([obs])
    assert np.array_equal(inputs.images[0, 0], obs.images["wrist"]) and np.array_equal(inputs.images[0, 1], obs.images["front"])


def test_known_instruction_carries_no_warning(spec, make_obs):
    _, warnings = Processor(spec).preprocess([make_obs(instruction="Push the blue cube to the left")])
    assert warnings == [()]


def test_instruction_of_only_unknown_words_is_a_warning_not_an_error(spec, make_obs):
    _, warnings = Processor(spec).preprocess([make_obs(instruction="fly away")])
    assert len(warnings[0]) == 1 and "no word the policy knows" in warnings[0][0]


def test_partly_unknown_instruction_names_the_unknown_words(spec, make_obs):
    _, warnings = Processor(spec).preprocess([make_obs(instruction="pick up the purple cube")])
    assert warnings == [("instruction words the policy never saw (encoded as <unk>): 'purple'",)]


def test_empty_instruction_is_a_warning(spec, make_obs):
    _, warnings = Processor(spec).preprocess([make_obs(instruction="  ")])
    assert "empty" in warnings[0][0]


def test_truncated_instruction_is_a_warning(spec, make_obs):
    _, warnings = Processor(spec).preprocess([make_obs(instruction=" ".join(["cube"] * 20))])
    assert warnings == [("instruction has 20 tokens; only the first 16 are used",)]


def test_postprocess_denormalises_actions_and_clips_the_gripper(spec):
    raw = np.zeros((1, spec.chunk_length, 7), dtype=np.float32)
    raw[0, 0, -1] = 1e6
    raw[0, 1, -1] = -1e6
    actions = Processor(spec).postprocess(raw)
    np.testing.assert_allclose(actions[0, 2:, :6], np.broadcast_to(spec.normalization.action.mean[:6], (spec.chunk_length - 2, 6)), rtol=1e-6)
    assert actions[0, 0, -1] == 1.0 and actions[0, 1, -1] == 0.0


def test_postprocess_rejects_an_output_of_the_wrong_shape(spec):
    with pytest.raises(InputError, match="model output"):
        Processor(spec).postprocess(np.zeros((1, spec.chunk_length, 6)))
