"""Behaviour cloning of the reference VLA from recorded demonstrations.

Each frame ``t`` of an episode is a training sample whose target is the action chunk
``actions[t : t+T]`` of the same episode; steps past the episode's end are masked out of the loss
(as in ACT), not padded with invented actions. Images get a random shift and brightness/contrast
jitter; instruction words are replaced by ``<unk>`` with a small probability so an unknown word
at deployment lands on a trained embedding. AdamW with linear warm-up and cosine decay, gradient
clipping, seeded sampling: the same data, params and thread count give the same weights.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from vla_kit.errors import InputError
from vla_kit.policy import (
    PolicySpec,
    Tokenizer,
    TorchPolicy,
    VLAModel,
    build_model,
    compute_norm_stats,
    make_spec,
    model_config,
    save_artifact,
)
from vla_kit.sim.dataset import Dataset, split_episodes

__all__ = ["TrainConfig", "TrainResult", "train_policy", "chunk_targets"]

UNK_ID = 1


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Units in the comments.

    Attributes:
        preset: model size preset (``tiny``, ``small``, ``base``).
        chunk_length: actions per predicted chunk ``T``.
        steps: optimiser steps.
        batch_size: samples per step.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up steps before cosine decay to 5 % of ``lr``.
        grad_clip: max global gradient norm.
        augment: random shift (±``shift_px``) and brightness/contrast jitter on images.
        shift_px: pixels of random shift.
        unk_prob: probability of replacing an instruction word by ``<unk>``.
        val_fraction: fraction of episodes held out for validation loss.
        log_every: steps between training-loss log points.
        eval_every: steps between validation-loss evaluations (and checkpoints).
        seed: seed for initialisation, sampling and augmentation.
        threads: torch intra-op threads; 0 = all cores (recorded: results depend on it).
    """

    preset: str = "tiny"
    chunk_length: int = 8
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    augment: bool = True
    shift_px: int = 4
    unk_prob: float = 0.05
    val_fraction: float = 0.1
    log_every: int = 50
    eval_every: int = 250
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("chunk_length", "steps", "batch_size", "log_every", "eval_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise InputError(f"train.{name}", f"expected an int >= 1, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError("train.lr", f"expected a positive finite learning rate, got {self.lr!r}")
        if not 0 <= self.val_fraction < 1:
            raise InputError("train.val_fraction", f"expected 0 <= val_fraction < 1, got {self.val_fraction!r}")
        if not 0 <= self.unk_prob < 1:
            raise InputError("train.unk_prob", f"expected 0 <= unk_prob < 1, got {self.unk_prob!r}")


@dataclass
class TrainResult:
    """A trained model and what happened while training."""

    model: VLAModel
    spec: PolicySpec
    history: list[dict] = field(default_factory=list)  # {step, train_loss, val_loss?, lr, samples_per_s}
    train_time_s: float = 0.0
    samples_per_s: float = 0.0
    num_parameters: int = 0
    threads: int = 0

    def policy(self) -> TorchPolicy:
        """The in-memory model as a policy (for evaluation rollouts without saving)."""
        return TorchPolicy.from_model(self.model, self.spec)

    def save(self, path: str | Path) -> Path:
        """Write the policy artifact to ``path``."""
        save_artifact(path, self.model, self.spec, overwrite=True)
        return Path(path)


def chunk_targets(actions: np.ndarray, episode_index: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame target chunks ``[N, T, D]`` and validity masks ``[N, T]`` (False past the episode's end)."""
    n, d = actions.shape
    out = np.zeros((n, horizon, d), dtype=np.float32)
    mask = np.zeros((n, horizon), dtype=bool)
    for k in range(horizon):
        src = np.arange(n) + k
        ok = src < n
        ok[ok] &= episode_index[src[ok]] == episode_index[ok]
        out[ok, k] = actions[src[ok]]
        mask[ok, k] = True
    return out, mask


def _augment(images: torch.Tensor, gen: torch.Generator, shift_px: int) -> torch.Tensor:
    """Random translation (replicate border) and brightness/contrast jitter on ``[B, H, W, C]`` floats in [0, 1]."""
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2)
    if shift_px > 0:
        padded = F.pad(x, (shift_px,) * 4, mode="replicate")
        dx = torch.randint(0, 2 * shift_px + 1, (b,), generator=gen)
        dy = torch.randint(0, 2 * shift_px + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None]).clamp_max(h + 2 * shift_px - 1)
        cols = (dx[:, None] + torch.arange(w)[None]).clamp_max(w + 2 * shift_px - 1)
        x = padded[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
    brightness = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.4
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * brightness
    return x.clamp(0, 1).permute(0, 2, 3, 1)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_policy(
    dataset: Dataset,
    cfg: TrainConfig,
    *,
    provenance: dict | None = None,
    checkpoint_dir: Path | None = None,
    log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train the reference VLA on ``dataset`` by behaviour cloning.

    Args:
        dataset: recorded demonstrations.
        cfg: training configuration.
        provenance: extra facts stored in the artifact (dataset hash, params, code revision).
        checkpoint_dir: if given, weights are saved there as a policy artifact every ``eval_every`` steps.
        log: called with every history entry as it is produced.

    Returns:
        :class:`TrainResult`.
    """
    before_threads = torch.get_num_threads()
    threads = cfg.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train(dataset, cfg, provenance or {}, checkpoint_dir, log, threads)
    finally:
        torch.set_num_threads(before_threads)


def _train(dataset: Dataset, cfg: TrainConfig, provenance: dict, checkpoint_dir: Path | None, log, threads: int) -> TrainResult:
    frames = dataset.frames
    episode_index = frames["episode_index"].to_numpy()
    states, actions = dataset.states(), dataset.actions()
    instructions = dataset.instructions()
    images = torch.from_numpy(dataset.images("front"))
    tok = Tokenizer.build(sorted(set(instructions)))
    h, w = images.shape[1:3]
    mcfg = model_config(cfg.preset, vocab_size=tok.vocab_size, image_height=int(h), image_width=int(w), chunk_length=cfg.chunk_length, proprio_dim=states.shape[1], action_dim=actions.shape[1])
    targets, mask = chunk_targets(actions, episode_index, cfg.chunk_length)
    proprio_stats = compute_norm_stats(states)
    action_stats = compute_norm_stats(actions)
    spec = make_spec(mcfg, tok, proprio_stats=proprio_stats, action_stats=action_stats, preset=cfg.preset,
                     provenance={**provenance, "dataset_sha256": dataset.sha256(), "train": {**cfg.__dict__, "threads": threads}})

    per_task = {text: tok.encode(text, mcfg.max_tokens)[:2] for text in set(instructions)}
    ids = torch.from_numpy(np.stack([per_task[t][0] for t in instructions]))
    tmask = torch.from_numpy(np.stack([per_task[t][1] for t in instructions]))
    prop = torch.from_numpy(proprio_stats.normalize(states).astype(np.float32))
    tgt = torch.from_numpy(action_stats.normalize(targets).astype(np.float32))
    valid = torch.from_numpy(mask)

    train_idx, val_idx = split_episodes(dataset, cfg.val_fraction, cfg.seed)
    if len(train_idx) == 0:
        raise InputError("dataset", "no training frames left after the validation split")
    model = build_model(mcfg, seed=cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model=model, spec=spec, num_parameters=sum(p.numel() for p in model.parameters()), threads=threads)

    def loss_on(idx: torch.Tensor, train: bool) -> torch.Tensor:
        img = images[idx].to(torch.float32) / 255.0
        words = ids[idx]
        if train:
            if cfg.augment:
                img = _augment(img, gen, cfg.shift_px)
            if cfg.unk_prob > 0:
                drop = (torch.rand(words.shape, generator=gen) < cfg.unk_prob) & tmask[idx]
                words = torch.where(drop, torch.full_like(words, UNK_ID), words)
        pred = model(img.unsqueeze(1), words, tmask[idx], prop[idx])
        err = (pred - tgt[idx]).abs().mean(-1)  # L1 per step
        m = valid[idx].to(err.dtype)
        return (err * m).sum() / m.sum().clamp_min(1.0)

    train_t = torch.from_numpy(train_idx)
    t_start = time.perf_counter()
    t_window, samples_window, running = time.perf_counter(), 0, []
    for step in range(cfg.steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        batch = train_t[torch.randint(0, len(train_t), (cfg.batch_size,), generator=gen)]
        loss = loss_on(batch, train=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        running.append(float(loss.detach()))
        samples_window += cfg.batch_size
        last = step + 1 == cfg.steps
        if (step + 1) % cfg.log_every == 0 or last:
            now = time.perf_counter()
            entry = {"step": step + 1, "train_loss": float(np.mean(running)), "lr": opt.param_groups[0]["lr"], "samples_per_s": samples_window / (now - t_window)}
            running, samples_window, t_window = [], 0, now
            if ((step + 1) % cfg.eval_every == 0 or last) and len(val_idx):
                entry["val_loss"] = _val_loss(loss_on, model, val_idx, cfg.batch_size)
                if checkpoint_dir is not None:
                    save_artifact(Path(checkpoint_dir) / f"step-{step + 1:06d}", model, spec, overwrite=True)
            result.history.append(entry)
            if log:
                log(entry)
    result.train_time_s = time.perf_counter() - t_start
    result.samples_per_s = cfg.steps * cfg.batch_size / result.train_time_s
    model.eval()
    return result


@torch.no_grad()
def _val_loss(loss_on, model: VLAModel, val_idx: np.ndarray, batch_size: int) -> float:
    model.eval()
    total, n = 0.0, 0
    for start in range(0, len(val_idx), batch_size):
        idx = torch.from_numpy(val_idx[start : start + batch_size])
        total += float(loss_on(idx, train=False)) * len(idx)
        n += len(idx)
    return total / max(n, 1)
