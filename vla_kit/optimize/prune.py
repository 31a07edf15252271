"""Pruning: ``prune-structured`` removes whole units (a smaller, faster network); ``prune-unstructured``
zeroes single weights (a sparser network that dense kernels do not run any faster).

``prune-structured`` cuts two kinds of unit, each ranked by *(norm of what writes into it) x (norm
of what reads from it)*, so a unit that nothing reads, or that only ever outputs zero, ranks last:

* **feed-forward hidden units**, per transformer layer: row ``j`` of ``linear1`` (with its bias)
  and column ``j`` of ``linear2``. Each layer keeps ``round(ffn_keep * width)`` units; the widths
  land in ``ModelConfig.feedforward_dims``.
* **conv-stem channels**: the first conv's outputs (read by the second conv) and the second conv's
  outputs, which FiLM modulates (its gamma/beta rows), the patch embedding reads (its input
  channels) and the spatial softmax turns into keypoints (two ``keypoint_proj`` inputs each). Both
  keep ``round(stem_keep * stem_channels)``, the new ``stem_channels``.

Attention heads are *not* removed: ``nn.MultiheadAttention`` fixes ``head_dim = d_model /
num_heads`` and concatenates every head into ``d_model`` before ``out_proj``, so dropping a head
would need a different attention module (and a different exported graph). Zeroing a head's weights
instead would make it no faster, so neither is pretended here. ``d_model`` stays too: it is the
width of every residual connection, embedding and LayerNorm.

With ``ffn_keep=1`` and ``stem_keep=1`` the surgery is the identity (the tests hold it to that),
so any difference in the result comes from the fine-tune, ``OptimizeContext.finetune_steps`` steps
of behaviour cloning on the training dataset with the parent's tokenizer and statistics.

``prune-unstructured`` is global magnitude pruning (``torch.nn.utils.prune.global_unstructured``,
L1) over every Linear and Conv2d weight and the attention input projections; embeddings, position
tables, LayerNorms and biases are left whole. The fine-tune keeps the mask fixed by running with
a masking parametrization: ``torch.nn.utils.prune``'s own re-parametrisation updates a weight only
in its module's forward hook, and ``nn.MultiheadAttention`` reads ``out_proj.weight`` without
calling ``out_proj``, so those masks would silently stop applying. The saved weights hold real
zeros; a sparse kernel, a sparsity-aware runtime or compression can use them, dense GEMMs cannot.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from pydantic import Field
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from vla_kit.errors import InputError
from vla_kit.optimize.techniques import OptimizeContext, Step, Technique, TechniqueOptions, register_technique, write_derived
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.config import ModelConfig
from vla_kit.policy.model import VLAModel, build_model, count_parameters
from vla_kit.policy.spec import PolicySpec

__all__ = ["PruneStructured", "PruneUnstructured", "prune_structured", "prune_unstructured", "weight_sparsity"]


# --- the surgery ---------------------------------------------------------------------------------


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the ``round(fraction * n)`` (at least one) highest scores, ascending; ties keep the lower index."""
    n = max(1, math.floor(fraction * len(scores) + 0.5))
    order = torch.argsort(scores, descending=True, stable=True)
    return order[:n].sort().values


def _rows(*parts: torch.Tensor) -> torch.Tensor:
    """L2 norm per leading index over the concatenation of ``parts`` (each ``[n, ...]``)."""
    return torch.cat([p.detach().reshape(p.shape[0], -1) for p in parts], dim=1).norm(dim=1)


def prune_structured(model: VLAModel, *, ffn_keep: float, stem_keep: float) -> tuple[VLAModel, dict[str, Any]]:
    """A smaller copy of ``model`` without its lowest-ranked feed-forward units and stem channels.

    Args:
        model: the parent network (left unchanged).
        ffn_keep: fraction of each layer's feed-forward hidden units to keep, in (0, 1].
        stem_keep: fraction of the conv-stem channels to keep, in (0, 1]; ignored without a stem.

    Returns:
        The pruned network (eval mode) and what was kept: ``feedforward_dims``, ``stem_channels``.
    """
    c = model.config
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    widths = []
    for i, layer in enumerate(model.trunk.layers):
        # Unit j reads linear1 row j (+ bias) and is read by linear2 column j.
        keep = _keep(_rows(layer.linear1.weight, layer.linear1.bias[:, None]) * _rows(layer.linear2.weight.T), ffn_keep)
        p = f"trunk.layers.{i}."
        sd[p + "linear1.weight"] = sd[p + "linear1.weight"][keep]
        sd[p + "linear1.bias"] = sd[p + "linear1.bias"][keep]
        sd[p + "linear2.weight"] = sd[p + "linear2.weight"][:, keep].contiguous()
        widths.append(len(keep))
    stem = c.stem_channels
    if stem:
        conv1, conv2, s = model.stem[0], model.stem[2], stem
        film, kp, pe = model.film, model.keypoint_proj, model.patch_embed
        # FiLM modulates the first conv's channels ("mid"): one is written by its conv1 filter and
        # FiLM's beta row (gamma only scales it) and read by conv2. An output channel is written by
        # its conv2 filter and read by the patch embedding and, through its keypoint (x, y),
        # keypoint_proj (the goal head reads the keypoints too, but only in training: it does not rank).
        mid = _keep(_rows(conv1.weight, conv1.bias[:, None], film.weight[s:], film.bias[s:, None]) * _rows(conv2.weight.transpose(0, 1)), stem_keep)
        scores = _rows(conv2.weight, conv2.bias[:, None]) * _rows(pe.weight.transpose(0, 1), kp.weight.T.reshape(s, 2, -1))
        if c.goal_dim:  # channel 0 is the goal channel the training loss supervises: it stays, and stays first
            scores[0] = float("inf")
        out = _keep(scores, stem_keep)
        sd["stem.0.weight"], sd["stem.0.bias"] = sd["stem.0.weight"][mid], sd["stem.0.bias"][mid]
        sd["stem.2.weight"] = sd["stem.2.weight"][out][:, mid].contiguous()
        sd["stem.2.bias"] = sd["stem.2.bias"][out]
        film_rows = torch.cat([mid, mid + s])  # gamma rows, then beta rows, of the kept first-conv channels
        sd["film.weight"], sd["film.bias"] = sd["film.weight"][film_rows], sd["film.bias"][film_rows]
        xy = torch.stack([2 * out, 2 * out + 1], 1).flatten()  # keypoint (x, y) of each kept channel
        sd["keypoint_proj.weight"] = sd["keypoint_proj.weight"][:, xy].contiguous()
        if c.goal_dim:  # the training-only goal head reads every camera's keypoints side by side
            cols = torch.cat([n * 2 * s + xy for n in range(c.num_cameras)])
            sd["goal_head.weight"] = sd["goal_head.weight"][:, cols].contiguous()
        sd["patch_embed.weight"] = sd["patch_embed.weight"][:, out].contiguous()
        stem = len(out)
    config = ModelConfig.model_validate({**c.model_dump(), "stem_channels": stem, "feedforward_dims": tuple(widths)})
    pruned = build_model(config, seed=0)
    pruned.load_state_dict(sd, strict=True)  # every shape must fit the smaller config
    return pruned.eval(), {"feedforward_dims": list(widths), "stem_channels": stem}


def _prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every Linear/Conv2d weight (attention's out_proj included) and the attention in-projections.

    The training-only goal head is left whole: inference never runs it.
    """
    pairs: list[tuple[nn.Module, str]] = []
    for name, module in model.named_modules():
        if name == "goal_head":
            continue
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            pairs.append((module, "weight"))
        elif isinstance(module, nn.MultiheadAttention):
            pairs.append((module, "in_proj_weight"))
    return pairs


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the weights ``prune-unstructured`` prunes."""
    weights = [getattr(m, name) for m, name in _prunable(model)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def prune_unstructured(model: VLAModel, *, sparsity: float) -> list[torch.Tensor]:
    """Zero the ``sparsity`` fraction of smallest-magnitude prunable weights, ranked globally, in place.

    Returns:
        The masks (1 = kept), in :func:`_prunable` order, for keeping them fixed while fine-tuning.
    """
    pairs = _prunable(model)
    torch_prune.global_unstructured(pairs, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    masks = [getattr(module, f"{name}_mask").detach().clone() for module, name in pairs]
    for module, name in pairs:
        torch_prune.remove(module, name)  # weight = weight_orig * mask, a plain Parameter again
    return masks


class _Mask(nn.Module):
    """Parametrization ``w -> w * mask``: the masked entries get no gradient and stay zero."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


@contextmanager
def _masks_fixed(model: nn.Module, masks: list[torch.Tensor]) -> Iterator[None]:
    pairs = _prunable(model)
    for (module, name), mask in zip(pairs, masks):
        parametrize.register_parametrization(module, name, _Mask(mask))
    try:
        yield
    finally:
        for module, name in pairs:
            parametrize.remove_parametrizations(module, name, leave_parametrized=True)


# --- shared with distill.py: threads, the dataset, fine-tuning, writing ---------------------------


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads (``<= 0``: leave torch's setting), then restore it."""
    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def training_unavailable() -> str | None:
    """Why the training code (``vla_kit.learn.bc``) cannot be imported here, or ``None``."""
    try:
        import vla_kit.learn.bc  # noqa: F401
    except ImportError as exc:
        return f"needs vla_kit.learn.bc for training, which failed to import: {exc}"
    return None


def require_dataset(ctx: OptimizeContext, technique: str, why: str) -> Path:
    """``ctx.dataset_root``, or an InputError saying that ``technique`` needs it and ``why``."""
    if ctx.dataset_root is None:
        raise InputError(
            f"{technique}: OptimizeContext.dataset_root",
            f"{why} and needs the training dataset the parent was trained on; none was given",
        )
    return Path(ctx.dataset_root)


def load_torch_model(source: Path) -> VLAModel:
    """The parent's network, loaded (and verified) through the torch backend, in eval mode."""
    from vla_kit.policy.load import load_policy

    return load_policy(source, backend="torch").model.eval()


def training_data(dataset_root: Path, spec: PolicySpec, ctx: OptimizeContext):
    """The dataset as ``spec`` normalises it, split like the parent's training run where it says how.

    Reusing the parent's validation split keeps the fine-tune off the episodes its validation
    loss was measured on.
    """
    from vla_kit.learn.bc import training_tensors
    from vla_kit.sim.dataset import load_dataset

    train = spec.provenance.get("train")
    train = train if isinstance(train, dict) else {}
    val_fraction = train.get("val_fraction", 0.1)
    seed = train.get("seed", ctx.seed)
    numeric = isinstance(val_fraction, (int, float)) and not isinstance(val_fraction, bool)
    if not (numeric and 0 <= val_fraction < 1) or not isinstance(seed, int) or isinstance(seed, bool):
        val_fraction, seed = 0.1, ctx.seed
    return training_tensors(load_dataset(dataset_root), spec, val_fraction=val_fraction, seed=seed)


def finetune(
    model: VLAModel, spec: PolicySpec, data, ctx: OptimizeContext, *, technique: str, steps: int, lr: float, batch_size: int
) -> dict[str, Any]:
    """Behaviour-clone ``model`` on ``data`` for ``steps`` (in place) and summarise the run.

    Returns:
        ``{"steps", "lr", "batch_size", "train_loss", "val_loss"}`` (losses of the last log point;
        ``val_loss`` is ``None`` without validation episodes).
    """
    from vla_kit.learn.bc import TrainConfig, fit

    cfg = TrainConfig(
        chunk_length=spec.chunk_length, steps=steps, batch_size=batch_size, lr=lr, warmup_steps=max(1, steps // 10),
        log_every=max(1, steps // 10), eval_every=steps, seed=ctx.seed, threads=max(ctx.threads, 0),
    )

    def log(entry: dict) -> None:
        val = f", val_loss {entry['val_loss']:.4f}" if "val_loss" in entry else ""
        ctx.log(f"{technique}: step {entry['step']}/{steps}, train_loss {entry['train_loss']:.4f}{val}")

    result = fit(model, spec, data, cfg, log=log, threads=torch.get_num_threads())
    last = result.history[-1] if result.history else {}
    return {"steps": steps, "lr": lr, "batch_size": batch_size, "train_loss": last.get("train_loss"), "val_loss": last.get("val_loss")}


@torch.inference_mode()
def val_action_l1(model: VLAModel, data) -> float | None:
    """Mean L1 of ``model``'s chunks against the demonstrations over the validation frames, or ``None`` without any.

    In normalised action units, un-augmented, action steps past an episode's end left out. This is
    the number a parent and its child are compared on: ``fit``'s ``val_loss`` adds the goal head's
    loss, and for a student it is measured against blended targets.
    """
    idx = torch.from_numpy(data.val_idx)
    if len(idx) == 0:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    for start in range(0, len(idx), 256):
        batch = idx[start : start + 256]
        err = (model(*data.model_inputs(batch)) - data.targets[batch]).abs().mean(-1)
        valid = data.valid[batch].to(err.dtype)
        total, count = total + float((err * valid).sum()), count + float(valid.sum())
    model.train(was_training)
    return total / max(count, 1.0)


def write_torch_artifact(
    source: Path, spec: PolicySpec, target: Path, step: Step, network: VLAModel, record: dict[str, Any], **spec_updates: Any
) -> Path:
    """Write ``network`` as a torch child of ``source``; ``record`` is appended to ``provenance["optimize"]``.

    ``spec_updates`` replace spec fields (``model=`` for a new architecture); ``network.config``
    must equal the resulting ``model`` section.
    """
    config = spec_updates.get("model", spec.model)
    if network.config != config:
        raise InputError("network", f"config {network.config} differs from the spec's model section {config}")
    # A fresh module gives canonical parameter order and plain (un-parametrized) weights.
    clean = build_model(network.config, seed=0)
    clean.load_state_dict(network.state_dict(), strict=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in clean.state_dict().items()}
    history = spec.provenance.get("optimize", [])
    provenance = {**spec.provenance, "optimize": [*(history if isinstance(history, list) else []), {"technique": step.technique, **record}]}

    def write_weights(folder: Path) -> None:
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})

    return write_derived(source, spec, target, step, write_weights, backend="torch", provenance=provenance, **spec_updates)


# --- the techniques ------------------------------------------------------------------------------


class _FinetuneOptions(TechniqueOptions):
    lr: float = Field(3e-4, gt=0, allow_inf_nan=False)  # peak AdamW learning rate of the fine-tune
    batch_size: int = Field(64, ge=1)  # samples per fine-tune step


@dataclass(frozen=True)
class _Plan:
    steps: int  # fine-tune steps (ctx.finetune_steps)
    data: Any  # TrainingTensors, or None without a fine-tune


def _plan(technique: str, spec: PolicySpec, ctx: OptimizeContext) -> _Plan:
    """Check the dataset before any weight is touched; load it when there will be a fine-tune."""
    steps = int(ctx.finetune_steps)
    if steps < 0:
        raise InputError(f"{technique}: OptimizeContext.finetune_steps", f"expected >= 0, got {steps}")
    if steps == 0:
        return _Plan(0, None)  # surgery only: nothing to train on
    root = require_dataset(ctx, technique, f"the fine-tune after pruning runs {steps} steps (finetune_steps=0 skips it)")
    return _Plan(steps, training_data(root, spec, ctx))


@register_technique
class PruneStructured(Technique):
    """Remove the lowest-ranked feed-forward units and conv-stem channels, then fine-tune.

    Attention heads stay (see the module docstring for why).
    """

    name = "prune-structured"
    summary = "remove feed-forward units and conv-stem channels (smaller and faster), then fine-tune"
    accepts = ("torch",)

    class Options(_FinetuneOptions):
        ffn_keep: float = Field(0.5, gt=0, le=1)  # fraction of each layer's feed-forward hidden units kept
        stem_keep: float = Field(0.5, gt=0, le=1)  # fraction of conv-stem channels kept (no stem: ignored)

    def unavailable(self) -> str | None:
        return training_unavailable()

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, self.Options)
        with torch_threads(ctx.threads):
            plan = _plan(self.name, spec, ctx)
            parent = load_torch_model(source)
            model, kept = prune_structured(parent, ffn_keep=options.ffn_keep, stem_keep=options.stem_keep)
            before, after = count_parameters(parent.config), count_parameters(model.config)
            ctx.log(f"{self.name}: {before:,} -> {after:,} parameters, feed-forward {kept['feedforward_dims']}, stem {kept['stem_channels']}")
            record: dict[str, Any] = {**kept, "parameters_before": before, "parameters_after": after}
            if plan.steps:
                l1 = {"parent": val_action_l1(parent, plan.data), "pruned": val_action_l1(model, plan.data)}
                pruned_spec = spec.model_copy(update={"model": model.config})
                record["finetune"] = finetune(
                    model, pruned_spec, plan.data, ctx, technique=self.name, steps=plan.steps, lr=options.lr, batch_size=options.batch_size
                )
                record["val_action_l1"] = {**l1, "finetuned": val_action_l1(model, plan.data)}
            write_torch_artifact(source, spec, target, Step(self.name, options), model, record, model=model.config)


@register_technique
class PruneUnstructured(Technique):
    """Zero the smallest weights (global magnitude), fine-tune with the mask fixed, save the zeros.

    Dense kernels do not get faster from unstructured sparsity: this trades accuracy for
    compressibility and for runtimes with sparse kernels, not for latency on a dense backend.
    """

    name = "prune-unstructured"
    summary = "global magnitude pruning of Linear/Conv weights, fine-tuned with the mask fixed (not faster on dense kernels)"
    accepts = ("torch",)

    class Options(_FinetuneOptions):
        sparsity: float = Field(0.5, gt=0, lt=1)  # fraction of prunable weights set to zero

    def unavailable(self) -> str | None:
        return training_unavailable()

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, self.Options)
        with torch_threads(ctx.threads):
            plan = _plan(self.name, spec, ctx)
            model = load_torch_model(source)
            l1 = {"parent": val_action_l1(model, plan.data)} if plan.steps else {}
            masks = prune_unstructured(model, sparsity=options.sparsity)
            record: dict[str, Any] = {}
            if plan.steps:
                l1["pruned"] = val_action_l1(model, plan.data)
                with _masks_fixed(model, masks):
                    record["finetune"] = finetune(
                        model, spec, plan.data, ctx, technique=self.name, steps=plan.steps, lr=options.lr, batch_size=options.batch_size
                    )
                record["val_action_l1"] = {**l1, "finetuned": val_action_l1(model, plan.data)}
            achieved = weight_sparsity(model)
            zeros = sum(int((p == 0).sum()) for p in model.parameters())
            record = {"sparsity": achieved, "sparsity_all_parameters": zeros / sum(p.numel() for p in model.parameters()), **record}
            ctx.log(f"{self.name}: {achieved:.1%} of prunable weights are zero ({record['sparsity_all_parameters']:.1%} of all)")
            write_torch_artifact(source, spec, target, Step(self.name, options), model, record)
