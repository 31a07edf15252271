"""Pruning: structured surgery is exact, shrinks parameters and FLOPs; unstructured reaches its sparsity."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vla_kit.errors import InputError
from vla_kit.optimize import TECHNIQUES, OptimizeContext, build_chain, get_technique, parse_step
from vla_kit.optimize.prune import prune_structured, weight_sparsity
from vla_kit.policy import count_parameters, load_policy, save_artifact, verify_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, sha256_file
from vla_kit.types import Observation


def inputs(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (b, cfg.num_cameras, cfg.image_height, cfg.image_width, cfg.channels), generator=g, dtype=torch.uint8)
    ids = torch.zeros(b, cfg.max_tokens, dtype=torch.int64)
    ids[:, :4] = torch.randint(2, cfg.vocab_size, (b, 4), generator=g)
    return images, ids, ids != 0, torch.randn(b, cfg.proprio_dim, generator=g)


def predict(model, x):
    with torch.inference_mode():
        return model.eval()(*x)


def flops(model, x) -> int:
    # In train mode (dropout is 0) the encoder skips its fused inference kernel, which the counter cannot see into.
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.train()(*x)
    model.eval()
    return counter.get_total_flops()


def run(parent: Path, tmp_path: Path, step: str | dict, ctx: OptimizeContext) -> Path:
    return build_chain([parse_step(step, "test")], parent, tmp_path / "chain", ctx)


def first_observation(dataset) -> Observation:
    return Observation({"front": dataset.images()[0]}, dataset.instructions()[0], dataset.states()[0])


def test_pruning_techniques_are_registered_and_available():
    for name in ("prune-structured", "prune-unstructured"):
        assert name in TECHNIQUES.names() and get_technique(name).unavailable() is None


def test_keep_everything_without_finetune_reproduces_the_parent_exactly(parent, tmp_path, ctx):
    out = run(parent, tmp_path, {"prune-structured": {"ffn_keep": 1.0, "stem_keep": 1.0}}, replace(ctx, finetune_steps=0))
    before, after = load_policy(parent).model, load_policy(out).model
    x = inputs(before.config)
    assert torch.equal(predict(after, x), predict(before, x))
    with torch.no_grad():  # the training-only goal head was cut consistently too
        assert torch.equal(after.forward_with_goal(*x)[1], before.forward_with_goal(*x)[1])


def test_structured_pruning_shrinks_parameters_and_flops_and_the_artifact_predicts(parent, tmp_path, ctx, dataset):
    out = run(parent, tmp_path, {"prune-structured": {"batch_size": 8}}, ctx)
    before, after = load_policy(parent), load_policy(out)
    cfg = after.spec.model
    assert (cfg.feedforward_dims, cfg.stem_channels) == ((256,) * 4, 16)
    assert count_parameters(cfg) == after.num_parameters < 0.7 * before.num_parameters
    x = inputs(cfg)
    assert flops(after.model, x) < 0.75 * flops(before.model, x)
    assert after.predict(first_observation(dataset)).actions.shape == (cfg.chunk_length, cfg.action_dim)
    (step,) = after.spec.lineage
    assert step.technique == "prune-structured" and step.options["ffn_keep"] == 0.5
    assert step.parent_sha256 == sha256_file(parent / CHECKSUMS_FILE)
    record = after.spec.provenance["optimize"][-1]
    assert record["parameters_after"] == after.num_parameters and record["finetune"]["steps"] == 5
    assert np.isfinite(record["finetune"]["train_loss"])
    assert set(record["val_action_l1"]) == {"parent", "pruned", "finetuned"} and np.isfinite(list(record["val_action_l1"].values())).all()
    # Same tokenizer and statistics: only the architecture changed.
    assert after.spec.tokenizer == before.spec.tokenizer and after.spec.normalization == before.spec.normalization


def test_pruning_planted_dead_units_without_finetune_keeps_the_outputs(parent, tmp_path, ctx):
    model = load_policy(parent).model
    spec = verify_artifact(parent)
    with torch.no_grad():
        for layer in model.trunk.layers:  # odd hidden units: nothing reads them
            layer.linear2.weight[:, 1::2] = 0
        s = model.config.stem_channels
        model.stem[2].weight[:, 1::2] = 0  # odd first-conv channels: nothing reads them
        dead = torch.arange(1, s, 2)  # odd stem output channels: neither the patches nor the keypoints read them
        model.patch_embed.weight[:, dead] = 0
        model.keypoint_proj.weight[:, torch.cat([2 * dead, 2 * dead + 1])] = 0
    planted = save_artifact(tmp_path / "planted", model, spec)
    out = run(planted, tmp_path, "prune-structured", replace(ctx, finetune_steps=0))
    pruned = load_policy(out).model
    assert torch.equal(pruned.trunk.layers[2].linear1.weight, model.trunk.layers[2].linear1.weight[0::2])
    assert torch.equal(pruned.film.weight, model.film.weight[torch.cat([torch.arange(0, s, 2), torch.arange(s, 2 * s, 2)])])
    x = inputs(model.config)
    torch.testing.assert_close(predict(pruned, x), predict(model, x), rtol=0, atol=1e-5)


def test_unplanted_pruning_does_change_the_outputs(parent, tmp_path):
    model = load_policy(parent).model
    pruned, kept = prune_structured(model, ffn_keep=0.5, stem_keep=0.5)
    x = inputs(model.config)
    assert kept == {"feedforward_dims": [256] * 4, "stem_channels": 16}
    assert (predict(pruned, x) - predict(model, x)).abs().max() > 1e-3


def test_pruned_model_exports_to_onnx_and_matches_onnxruntime(parent, tmp_path):
    import onnxruntime as ort

    pruned, _ = prune_structured(load_policy(parent).model, ffn_keep=0.3, stem_keep=0.5)
    x = inputs(pruned.config, b=3)
    names = ["images", "token_ids", "token_mask", "proprio"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(pruned, x, str(tmp_path / "m.onnx"), input_names=names, output_names=["actions"],
                          dynamic_axes={n: {0: "batch"} for n in [*names, "actions"]}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, x)})
    np.testing.assert_allclose(got, predict(pruned, x).numpy(), atol=1e-4)


def test_unstructured_pruning_reaches_the_requested_sparsity_after_finetune(parent, tmp_path, ctx):
    out = run(parent, tmp_path, {"prune-unstructured": {"sparsity": 0.6, "batch_size": 8}}, ctx)
    before, after = load_policy(parent).model, load_policy(out).model
    assert weight_sparsity(after) == pytest.approx(0.6, abs=1e-4)
    record = load_policy(out).spec.provenance["optimize"][-1]
    assert record["sparsity"] == pytest.approx(weight_sparsity(after)) and record["finetune"]["steps"] == 5
    kept = after.trunk.layers[0].linear1.weight != 0
    assert not torch.equal(after.trunk.layers[0].linear1.weight[kept], before.trunk.layers[0].linear1.weight[kept])  # it trained


@pytest.mark.parametrize(
    "step, problem",
    [
        ({"prune-structured": {"ffn_keep": 0}}, "ffn_keep"),
        ({"prune-structured": {"stem_keep": 1.5}}, "stem_keep"),
        ({"prune-structured": {"heads_keep": 0.5}}, "heads_keep"),
        ({"prune-unstructured": {"sparsity": 1.0}}, "sparsity"),
        ({"prune-unstructured": {"lr": float("nan")}}, "lr"),
    ],
)
def test_bad_options_name_the_option(step, problem):
    with pytest.raises(InputError, match=problem):
        parse_step(step, "candidates[0]")


@pytest.mark.parametrize("name", ["prune-structured", "prune-unstructured"])
def test_finetune_without_the_dataset_is_an_input_error(parent, tmp_path, ctx, name):
    with pytest.raises(InputError, match="needs the training dataset"):
        run(parent, tmp_path, name, replace(ctx, dataset_root=None))
    assert not (tmp_path / "chain" / f"1-{name}").exists()


def test_chains_sharing_a_prefix_build_it_once_and_each_is_charged_its_whole_cost(parent, tmp_path, ctx):
    from vla_kit.optimize import chain_key

    built: dict = {}
    logged: list[str] = []
    ctx = replace(ctx, finetune_steps=2, log=logged.append)
    prune = parse_step({"prune-structured": {"ffn_keep": 0.5}}, "test")
    short = build_chain([prune], parent, tmp_path / "a", ctx, built)
    long = build_chain([prune, parse_step("onnx", "test")], parent, tmp_path / "b", ctx, built)
    assert verify_artifact(long).lineage[-2].parent_sha256 == sha256_file(Path(parent) / CHECKSUMS_FILE)
    assert verify_artifact(long).lineage[-1].parent_sha256 == sha256_file(short / CHECKSUMS_FILE)  # built on a's pruned model
    assert not (tmp_path / "b" / "1-prune-structured").exists()  # no second fine-tune
    assert any("already built" in m for m in logged)
    whole, first = built[chain_key([prune, parse_step("onnx", "test")])][1], built[chain_key([prune])][1]
    assert whole > first > 0
    # other options are another chain: not reused
    other = build_chain([parse_step({"prune-structured": {"ffn_keep": 0.75}}, "test")], parent, tmp_path / "c", ctx, built)
    assert other == tmp_path / "c" / "1-prune-structured"
