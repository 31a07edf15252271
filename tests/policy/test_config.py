"""Size presets and config validation."""

from __future__ import annotations

import pytest

from vla_kit.errors import InputError, RegistryError
from vla_kit.policy.config import model_config, preset_names
from vla_kit.policy.model import build_model, count_parameters


def test_presets_are_nano_tiny_small_base():
    assert preset_names() == ["nano", "tiny", "small", "base"]


def test_tiny_preset_has_at_most_two_million_parameters():
    assert count_parameters(model_config("tiny", vocab_size=64)) <= 2_000_000


def test_small_preset_has_five_to_fifteen_million_parameters():
    assert 5_000_000 <= count_parameters(model_config("small", vocab_size=64)) <= 15_000_000


def test_base_preset_has_fifty_to_a_hundred_million_parameters():
    assert 50_000_000 <= count_parameters(model_config("base", vocab_size=64)) <= 100_000_000


def test_analytic_count_equals_the_built_model(tiny_config):
    model = build_model(tiny_config, seed=0)
    assert count_parameters(tiny_config) == sum(p.numel() for p in model.parameters())


def test_overrides_replace_preset_fields():
    cfg = model_config("tiny", vocab_size=30, chunk_length=4, num_cameras=2)
    assert (cfg.vocab_size, cfg.chunk_length, cfg.num_cameras, cfg.d_model) == (30, 4, 2, 128)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(RegistryError, match="base, nano, small, tiny"):
        model_config("huge")


@pytest.mark.parametrize(
    "override, problem",
    [
        ({"image_height": 100}, "multiple of patch_size"),
        ({"num_heads": 3}, "multiple of num_heads"),
        ({"image_std": (0.5, 0.5)}, "one per channel"),
        ({"image_std": (0.5, 0.0, 0.5)}, "image_std must be > 0"),
        ({"d_model": 0}, "d_model"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_inconsistent_config_is_an_input_error(override, problem):
    with pytest.raises(InputError, match=problem):
        model_config("tiny", **override)


def test_nano_preset_is_the_smallest():
    counts = [count_parameters(model_config(p, vocab_size=64)) for p in ("nano", "tiny")]
    assert counts[0] <= 200_000 < counts[1]


@pytest.mark.parametrize("dims", [(512, 512), (512, 0, 512, 512)])
def test_feedforward_dims_need_one_positive_width_per_layer(dims):
    with pytest.raises(InputError, match="one positive width per layer"):
        model_config("tiny", feedforward_dims=dims)


def test_per_layer_feedforward_widths_are_counted():
    cfg = model_config("tiny", feedforward_dims=(64, 128, 256, 512))
    assert cfg.layer_feedforward_dims == (64, 128, 256, 512)
    assert count_parameters(cfg) == sum(p.numel() for p in build_model(cfg, seed=0).parameters())
