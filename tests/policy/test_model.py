"""The reference VLA network: shapes, determinism, masking, pixel handling, exportability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from vla_kit.errors import InputError
from vla_kit.policy.config import model_config
from vla_kit.policy.model import build_model


def batch(cfg, b=2, seed=0, words=5):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, cfg.num_cameras, cfg.image_height, cfg.image_width, cfg.channels), generator=g, dtype=torch.uint8)
    ids = torch.zeros(b, cfg.max_tokens, dtype=torch.int64)
    ids[:, :words] = torch.randint(2, cfg.vocab_size, (b, words), generator=g)
    mask = ids != 0
    proprio = torch.randn(b, cfg.proprio_dim, generator=g)
    return images, ids, mask, proprio


def run(model, *inputs):
    with torch.inference_mode():
        return model.eval()(*inputs)


def test_forward_returns_batch_by_chunk_by_action_dim(tiny_config):
    out = run(build_model(tiny_config, seed=0), *batch(tiny_config, b=3))
    assert out.shape == (3, tiny_config.chunk_length, 7) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_several_cameras_and_non_square_images_are_supported():
    cfg = model_config("tiny", vocab_size=10, num_cameras=2, image_height=48, image_width=72, chunk_length=4)
    out = run(build_model(cfg, seed=0), *batch(cfg, b=2))
    assert out.shape == (2, 4, 7)


def test_same_seed_gives_same_weights_and_same_outputs(tiny_config):
    a, b = build_model(tiny_config, seed=7), build_model(tiny_config, seed=7)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    inputs = batch(tiny_config)
    assert torch.equal(run(a, *inputs), run(b, *inputs))


def test_different_seeds_give_different_weights(tiny_config):
    a, b = build_model(tiny_config, seed=0), build_model(tiny_config, seed=1)
    assert not torch.equal(a.action_head.weight, b.action_head.weight)


def test_layers_do_not_start_as_copies_of_each_other(tiny_config):
    layers = build_model(tiny_config, seed=0).trunk.layers
    assert not torch.equal(layers[0].linear1.weight, layers[1].linear1.weight)


def test_building_a_model_leaves_the_global_rng_untouched(tiny_config):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model(tiny_config, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_ids_under_padding_do_not_change_the_actions(tiny_config):
    model = build_model(tiny_config, seed=0)
    images, ids, mask, proprio = batch(tiny_config, words=4)
    garbage = ids.clone()
    garbage[:, 4:] = 3  # a real word id, but the mask says padding
    torch.testing.assert_close(run(model, images, garbage, mask, proprio), run(model, images, ids, mask, proprio), rtol=0, atol=1e-6)


def test_instruction_changes_the_actions(tiny_config):
    model = build_model(tiny_config, seed=0)
    images, ids, mask, proprio = batch(tiny_config, words=4)
    other = ids.clone()
    other[:, 0] = (ids[:, 0] - 1) % (tiny_config.vocab_size - 2) + 2
    assert not torch.allclose(run(model, images, other, mask, proprio), run(model, images, ids, mask, proprio))


def test_uint8_pixels_and_unit_float_pixels_give_the_same_actions(tiny_config):
    model = build_model(tiny_config, seed=0)
    images, ids, mask, proprio = batch(tiny_config)
    as_float = images.to(torch.float32) / 255.0
    torch.testing.assert_close(run(model, as_float, ids, mask, proprio), run(model, images, ids, mask, proprio), rtol=0, atol=1e-5)


def test_image_normalisation_uses_the_config_constants(tiny_config):
    model = build_model(tiny_config, seed=0)
    grey = torch.full((1, 1, 96, 96, 3), 255, dtype=torch.uint8)
    expected = (1.0 - tiny_config.image_mean[0]) / tiny_config.image_std[0]
    torch.testing.assert_close(model.normalize_images(grey), torch.full((1, 3, 96, 96), expected))


def test_wrong_image_shape_is_an_input_error(tiny_config):
    images, ids, mask, proprio = batch(tiny_config)
    with pytest.raises(InputError, match=r"images.*\[B, 1, 96, 96, 3\]"):
        build_model(tiny_config, seed=0)(images[:, :, :64], ids, mask, proprio)


def test_wrong_proprio_width_is_an_input_error(tiny_config):
    images, ids, mask, proprio = batch(tiny_config)
    with pytest.raises(InputError, match="proprio"):
        build_model(tiny_config, seed=0)(images, ids, mask, proprio[:, :7])


def test_one_training_step_sends_gradient_to_every_parameter(tiny_config):
    model = build_model(tiny_config, seed=0).train()
    out = model(*batch(tiny_config))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_tiny_model_exports_to_onnx_with_a_free_batch_and_matches_onnxruntime(tiny_config, tmp_path):
    import onnxruntime as ort

    model = build_model(tiny_config, seed=0).eval()
    inputs = batch(tiny_config, b=2)
    names = ["images", "token_ids", "token_mask", "proprio"]
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated and chatty; the dynamo one needs onnxscript (absent).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model, inputs, str(tmp_path / "m.onnx"), input_names=names, output_names=["actions"],
            dynamic_axes={n: {0: "batch"} for n in [*names, "actions"]}, opset_version=17, dynamo=False,
        )
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    single = {n: t[:1].numpy() for n, t in zip(names, inputs)}
    got = session.run(None, single)[0]
    np.testing.assert_allclose(got, run(model, *(t[:1] for t in inputs)).numpy(), rtol=0, atol=1e-5)


def test_uniform_feedforward_dims_build_the_same_model_as_none(tiny_config):
    explicit = tiny_config.model_copy(update={"feedforward_dims": (tiny_config.feedforward_dim,) * tiny_config.num_layers})
    a, b = build_model(tiny_config, seed=3).state_dict(), build_model(explicit, seed=3).state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_per_layer_feedforward_widths_keep_the_state_dict_keys(tiny_config):
    narrow = model_config("tiny", vocab_size=tiny_config.vocab_size, feedforward_dims=(8, 16, 32, 64))
    model = build_model(narrow, seed=0)
    assert list(model.state_dict()) == list(build_model(tiny_config, seed=0).state_dict())
    assert [layer.linear1.out_features for layer in model.trunk.layers] == [8, 16, 32, 64]
    assert run(model, *batch(narrow)).shape == (2, narrow.chunk_length, 7)
