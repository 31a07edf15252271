"""Glue for the ``train`` stage: params -> dataset (recorded or reused) -> training -> artifact -> evaluation.

Kept out of the notebook so the notebook stays thin and the CLI and tests can call the same steps.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vla_kit.learn.bc import TrainConfig
from vla_kit.reports.context import ENV_DEPLOYMENT_DIR
from vla_kit.sim.dataset import Dataset, GenerationParams, load_dataset, record_dataset

__all__ = ["generation_params", "train_config", "dataset_for", "dataset_folder", "deployment_dir", "dataset_summary"]



def deployment_dir(deployment: str) -> Path:
    """``outputs/<deployment>`` of the current run (set by the runner), else of the checkout."""
    env = os.environ.get(ENV_DEPLOYMENT_DIR)
    if env:
        return Path(env)
    import vla_kit

    return Path(vla_kit.__file__).resolve().parent.parent / "outputs" / deployment


def generation_params(cfg: Any) -> GenerationParams:
    """The dataset a ``train`` config asks for (its ``seed`` is the deployment seed)."""
    return GenerationParams(tasks=tuple(cfg.tasks), colours=tuple(cfg.colours), episodes=cfg.episodes, seed=cfg.seed,
                            image_size=cfg.image_size, start_jitter=cfg.start_jitter, action_noise=cfg.action_noise)


def train_config(cfg: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a ``train`` stage config."""
    return TrainConfig(
        preset=cfg.preset, chunk_length=cfg.chunk_length, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
        weight_decay=cfg.weight_decay, warmup_steps=min(cfg.warmup_steps, cfg.steps), augment=cfg.augment,
        val_fraction=cfg.val_fraction, eval_every=cfg.eval_every, goal_weight=cfg.goal_weight, log_every=max(1, min(100, cfg.steps // 15 or 1)),
        seed=cfg.seed, threads=cfg.threads,
    )


def dataset_for(cfg: Any, *, progress=None) -> tuple[Dataset, str]:
    """Load ``cfg.dataset`` if given, else record (or reuse) the dataset the config describes.

    Recorded datasets are cached under ``outputs/<deployment>/datasets/<key>``, keyed by the
    generation parameters, so a second run with the same params reuses the same bytes.

    Returns:
        The dataset and how it was obtained (``"given"``, ``"reused"``, ``"recorded"``).
    """
    if cfg.dataset:
        return load_dataset(cfg.dataset), "given"
    gen = generation_params(cfg)
    root = dataset_folder(gen, cfg.deployment)
    existed = (root / "meta" / "info.json").exists()
    return record_dataset(root, gen, progress=progress), "reused" if existed else "recorded"


def dataset_folder(gen: GenerationParams, deployment: str) -> Path:
    """Where the dataset ``gen`` describes is cached for ``deployment``: keyed by its parameters."""
    key = hashlib.sha256(json.dumps(gen.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
    return deployment_dir(deployment) / "datasets" / f"{'-'.join(gen.tasks)}-{gen.episodes}ep-{key}"


def dataset_summary(ds: Dataset) -> dict:
    """Counts a reader checks first: episodes and frames per task family and colour, episode lengths."""
    eps = ds.episodes
    by_task = eps.groupby("task_family")["length"].agg(["count", "mean", "min", "max"]).round(2)
    return {
        "path": str(ds.root),
        "sha256": ds.sha256(),
        "episodes": int(ds.info["total_episodes"]),
        "frames": int(ds.info["total_frames"]),
        "instructions": int(ds.info["total_tasks"]),
        "recording_attempts": int(ds.info["recording_attempts"]),
        "expert_success_rate": round(ds.info["total_episodes"] / ds.info["recording_attempts"], 4),
        "episodes_per_task": {k: int(v) for k, v in eps["task_family"].value_counts().sort_index().items()},
        "episodes_per_colour": {k: int(v) for k, v in eps["colour"].value_counts().sort_index().items()},
        "episode_length": {t: row.to_dict() for t, row in by_task.iterrows()},
    }
