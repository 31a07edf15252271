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
from vla_kit.sim.scene import FRONT_CAMERA, CameraSpec

__all__ = ["TrainConfig", "TrainResult", "TrainingTensors", "train_policy", "training_tensors", "fit", "chunk_targets"]

UNK_ID = 1
# Std floors (data units) for the statistics that normalise proprio and actions. Dimensions the
# expert barely moves (gripper rotation: std ~1e-4 rad) would otherwise be blown up ~1000x: their
# rounding noise would dominate the L1 loss, and in closed loop a drift of a hundredth of a radian
# would arrive at the network as a 100-sigma input. The floors sit well below every dimension that
# carries signal (translation std ~1 cm per step, joint std >= 0.03 rad).
PROPRIO_STD_FLOOR = 0.02  # m, rad, m (finger opening)
ACTION_STD_FLOOR = 0.005  # m or rad per step; the env allows up to 0.03 m and 0.2 rad
# Width of the soft target the goal channel's map is pulled towards, in stem-grid cells (2 px).
GOAL_MAP_SIGMA_CELLS = 1.5


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
        goal_weight: weight of the auxiliary losses that teach the vision where the instructed cube
            is (0 = no goal head): the goal channel's spatial-softmax map is pulled (cross-entropy
            to a small Gaussian, plus L1 on its keypoint) onto the cube's projection in the front
            camera, and a linear head predicts the cube's position from the keypoints. It is what
            makes a small policy look at the cube the instruction names instead of replaying the
            average demonstration; the dense map loss is what makes it learn in hundreds of steps.
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
    shift_px: int = 0  # the sim camera is fixed: a shifted image would contradict the absolute proprio/goal
    unk_prob: float = 0.05
    val_fraction: float = 0.1
    log_every: int = 50
    eval_every: int = 250
    goal_weight: float = 1.0
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
        if not (self.goal_weight >= 0 and math.isfinite(self.goal_weight)):
            raise InputError("train.goal_weight", f"expected a finite number >= 0, got {self.goal_weight!r}")
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


def _augment(images: torch.Tensor, gen: torch.Generator, shift_px: int, *, with_shift: bool = False):
    """Random translation (replicate border) and brightness/contrast jitter on ``[B, H, W, C]`` floats in [0, 1].

    With ``with_shift``, also returns how far the content moved, ``float32 [B, 2]`` (x, y) pixels.
    """
    b, h, w, _ = images.shape
    x = images.permute(0, 3, 1, 2)
    moved = torch.zeros(b, 2)
    if shift_px > 0:
        padded = F.pad(x, (shift_px,) * 4, mode="replicate")
        dx = torch.randint(0, 2 * shift_px + 1, (b,), generator=gen)
        dy = torch.randint(0, 2 * shift_px + 1, (b,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None]).clamp_max(h + 2 * shift_px - 1)
        cols = (dx[:, None] + torch.arange(w)[None]).clamp_max(w + 2 * shift_px - 1)
        x = padded[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
        moved = torch.stack([shift_px - dx, shift_px - dy], dim=1).to(torch.float32)
    brightness = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.4
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * brightness
    out = x.clamp(0, 1).permute(0, 2, 3, 1)
    return (out, moved) if with_shift else out


def goal_grid_xy(points: np.ndarray, image_height: int, image_width: int, camera: CameraSpec = FRONT_CAMERA) -> np.ndarray:
    """Where base-frame ``points [N, 3]`` appear on the stem's keypoint grid: ``float32 [N, 2]`` (x, y).

    Pinhole projection through ``camera`` (the sim's front camera renders the datasets), expressed
    in the coordinates of :attr:`VLAModel.grid_xy`: -1 and +1 are the centres of the first and last
    cells of the ``H/2 x W/2`` stem grid.
    """
    eye = np.asarray(camera.eye, dtype=np.float64)
    forward = np.asarray(camera.target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(camera.up, dtype=np.float64))
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    d = np.asarray(points, dtype=np.float64) - eye
    depth = np.maximum(d @ forward, 1e-6)
    tan_y = math.tan(math.radians(camera.fov_deg) / 2)
    tan_x = tan_y * image_width / image_height
    ndc = np.stack([(d @ right) / (depth * tan_x), -(d @ up) / (depth * tan_y)], axis=1)  # x right, y down
    cells = np.array([image_width // 2, image_height // 2], dtype=np.float64)
    # Continuous pixel (ndc + 1) / 2 * side; cell j's centre is pixel 2j + 1; grid = -1 + 2j / (cells - 1).
    index = ((ndc + 1) * cells - 1) / 2
    return (-1 + 2 * index / np.maximum(cells - 1, 1)).astype(np.float32)


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
    states, actions = dataset.states(), dataset.actions()
    instructions = dataset.instructions()
    tok = Tokenizer.build(sorted(set(instructions)))
    h, w = dataset.images("front").shape[1:3]
    mcfg = model_config(cfg.preset, vocab_size=tok.vocab_size, image_height=int(h), image_width=int(w), chunk_length=cfg.chunk_length, proprio_dim=states.shape[1], action_dim=actions.shape[1],
                        goal_dim=dataset.environment_states().shape[1] if cfg.goal_weight > 0 else 0)
    proprio_stats = compute_norm_stats(states, std_floor=PROPRIO_STD_FLOOR)
    action_stats = compute_norm_stats(actions, std_floor=ACTION_STD_FLOOR)
    spec = make_spec(mcfg, tok, proprio_stats=proprio_stats, action_stats=action_stats, preset=cfg.preset,
                     provenance={**provenance, "dataset_sha256": dataset.sha256(), "train": {**cfg.__dict__, "threads": threads}})
    model = build_model(mcfg, seed=cfg.seed)
    data = training_tensors(dataset, spec, val_fraction=cfg.val_fraction, seed=cfg.seed)
    return fit(model, spec, data, cfg, checkpoint_dir=checkpoint_dir, log=log, threads=threads)


@dataclass
class TrainingTensors:
    """A dataset as the network sees it, normalised with one spec's statistics (index = frame).

    Attributes:
        images: ``uint8 [N, H, W, C]`` front-camera frames.
        token_ids, token_mask: the tokenised instruction per frame.
        proprio: normalised proprio ``float32 [N, P]``.
        targets: normalised target chunks ``float32 [N, T, D]``.
        valid: ``bool [N, T]``, False past the episode's end.
        goal: the instructed cube's position, normalised ``float32 [N, 3]`` (auxiliary target).
        goal_std: its normalisation std, m per unit (to report errors in metres).
        train_idx, val_idx: frame indices of the training and validation episodes.
        goal_xy: where the instructed cube appears on the stem's keypoint grid ``float32 [N, 2]``
            (the goal channel's target; see :func:`goal_grid_xy`).
    """

    images: torch.Tensor
    token_ids: torch.Tensor
    token_mask: torch.Tensor
    proprio: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor
    goal: torch.Tensor
    goal_std: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    goal_xy: torch.Tensor | None = None

    def model_inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Un-augmented network inputs for frames ``idx`` (uint8 images with a camera axis)."""
        return self.images[idx].unsqueeze(1), self.token_ids[idx], self.token_mask[idx], self.proprio[idx]


def training_tensors(dataset: Dataset, spec: PolicySpec, *, val_fraction: float = 0.1, seed: int = 0) -> TrainingTensors:
    """Tokenise, normalise and chunk ``dataset`` with ``spec``'s tokenizer and statistics.

    Fine-tuning a pruned model or distilling a student reuses its parent's spec here, so the
    student sees exactly the numbers its teacher saw.

    Raises:
        InputError: no training frames remain after the validation split.
    """
    episode_index = dataset.frames["episode_index"].to_numpy()
    instructions = dataset.instructions()
    tok = spec.make_tokenizer()
    norm = spec.normalization
    targets, mask = chunk_targets(dataset.actions(), episode_index, spec.chunk_length)
    per_task = {text: tok.encode(text, spec.model.max_tokens)[:2] for text in set(instructions)}
    train_idx, val_idx = split_episodes(dataset, val_fraction, seed)
    if len(train_idx) == 0:
        raise InputError("dataset", "no training frames left after the validation split")
    goals = dataset.environment_states()
    goal_stats = compute_norm_stats(goals, std_floor=PROPRIO_STD_FLOOR)
    return TrainingTensors(
        images=torch.from_numpy(dataset.images("front")),
        token_ids=torch.from_numpy(np.stack([per_task[t][0] for t in instructions])),
        token_mask=torch.from_numpy(np.stack([per_task[t][1] for t in instructions])),
        proprio=torch.from_numpy(norm.proprio.normalize(dataset.states()).astype(np.float32)),
        targets=torch.from_numpy(norm.action.normalize(targets).astype(np.float32)),
        valid=torch.from_numpy(mask),
        goal=torch.from_numpy(goal_stats.normalize(goals).astype(np.float32)),
        goal_std=np.asarray(goal_stats.std, dtype=np.float64),
        train_idx=train_idx,
        val_idx=val_idx,
        goal_xy=torch.from_numpy(goal_grid_xy(goals, spec.model.image_height, spec.model.image_width)),
    )


def fit(
    model: VLAModel,
    spec: PolicySpec,
    data: TrainingTensors,
    cfg: TrainConfig,
    *,
    checkpoint_dir: Path | None = None,
    log: Callable[[dict], None] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Behaviour-clone ``model`` on ``data`` (from scratch or as a fine-tune) for ``cfg.steps``.

    ``data.targets`` are usually the demonstrations' actions; a distiller replaces them with a
    teacher's chunks. ``threads`` only labels the result (the caller sets torch's thread count).
    """
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model=model, spec=spec, num_parameters=sum(p.numel() for p in model.parameters()), threads=threads or torch.get_num_threads())

    use_goal = bool(model.config.goal_dim) and cfg.goal_weight > 0
    use_map = use_goal and data.goal_xy is not None and model.config.num_cameras == 1
    if use_map:
        grid = model.grid_xy.detach()
        span = torch.tensor([model.config.image_width // 2 - 1, model.config.image_height // 2 - 1], dtype=torch.float32)
        two_sigma2 = 2 * (GOAL_MAP_SIGMA_CELLS * 2 / span) ** 2  # per axis, in grid units (a cell is 2/span)

    def loss_on(idx: torch.Tensor, train: bool, goal_errors: list | None = None) -> torch.Tensor:
        img = data.images[idx].to(torch.float32) / 255.0
        words = data.token_ids[idx]
        moved = torch.zeros(len(idx), 2)
        if train:
            if cfg.augment:
                img, moved = _augment(img, gen, cfg.shift_px, with_shift=True)
            if cfg.unk_prob > 0:
                drop = (torch.rand(words.shape, generator=gen) < cfg.unk_prob) & data.token_mask[idx]
                words = torch.where(drop, torch.full_like(words, UNK_ID), words)
        inputs = (img.unsqueeze(1), words, data.token_mask[idx], data.proprio[idx])
        log_map = None
        if use_map:
            pred, goal, log_map = model.forward_with_goal_map(*inputs)
        else:
            pred, goal = model.forward_with_goal(*inputs) if use_goal else (model(*inputs), None)
        err = (pred - data.targets[idx]).abs().mean(-1)  # L1 per step
        m = data.valid[idx].to(err.dtype)
        loss = (err * m).sum() / m.sum().clamp_min(1.0)
        if goal is not None:
            goal_err = (goal - data.goal[idx]).abs()
            loss = loss + cfg.goal_weight * goal_err.mean()
        if log_map is not None:
            # The goal channel: cross-entropy to a Gaussian on the cube's projection (a dense signal
            # that bootstraps the spatial softmax), plus L1 on its keypoint (the precise location).
            target_xy = data.goal_xy[idx] + moved / span  # one pixel = half a cell = 1/span grid units
            d2 = ((grid[None] - target_xy[:, None]) ** 2 / two_sigma2).sum(-1)
            soft = torch.softmax(-d2, dim=-1)
            log_map = log_map[:, 0]
            keypoint = log_map.exp() @ grid
            loss = loss + cfg.goal_weight * (-(soft * log_map).sum(-1).mean() + (keypoint - target_xy).abs().mean())
            if goal_errors is not None:  # metres, per frame: |error| of each axis de-normalised, then the norm
                metres = goal_err.detach().numpy() * data.goal_std
                goal_errors.extend(np.linalg.norm(metres, axis=1).tolist())
        return loss

    train_t = torch.from_numpy(data.train_idx)
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
            if ((step + 1) % cfg.eval_every == 0 or last) and len(data.val_idx):
                goal_errors: list[float] = []
                entry["val_loss"] = _val_loss(loss_on, model, data.val_idx, cfg.batch_size, goal_errors)
                if goal_errors:
                    entry["val_goal_error_cm"] = 100.0 * float(np.mean(goal_errors))
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
def _val_loss(loss_on, model: VLAModel, val_idx: np.ndarray, batch_size: int, goal_errors: list | None = None) -> float:
    model.eval()
    total, n = 0.0, 0
    for start in range(0, len(val_idx), batch_size):
        idx = torch.from_numpy(val_idx[start : start + batch_size])
        total += float(loss_on(idx, train=False, goal_errors=goal_errors)) * len(idx)
        n += len(idx)
    return total / max(n, 1)
