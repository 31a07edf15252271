"""Fixtures for policy tests: a small vocabulary, the tiny preset, a spec, a saved artifact, observations."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest

from vla_kit.policy import (
    ModelConfig,
    PolicySpec,
    Tokenizer,
    VLAModel,
    build_model,
    compute_norm_stats,
    make_spec,
    model_config,
    save_artifact,
)
from vla_kit.types import Observation

INSTRUCTIONS = ("pick up the red cube", "push the blue cube to the left", "touch the green cube")


def fake_stats(dim: int, seed: int, scale: float):
    """Statistics with distinct, non-trivial means and stds per dimension."""
    rng = np.random.default_rng(seed)
    data = rng.normal(loc=rng.normal(size=dim), scale=scale * (1 + np.arange(dim)), size=(512, dim))
    return compute_norm_stats(data)


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.build(INSTRUCTIONS)


@pytest.fixture(scope="session")
def tiny_config(tokenizer: Tokenizer) -> ModelConfig:
    return model_config("tiny", vocab_size=tokenizer.vocab_size)


@pytest.fixture(scope="session")
def spec(tiny_config: ModelConfig, tokenizer: Tokenizer) -> PolicySpec:
    return make_spec(
        tiny_config,
        tokenizer,
        proprio_stats=fake_stats(tiny_config.proprio_dim, seed=1, scale=0.1),
        action_stats=fake_stats(tiny_config.action_dim, seed=2, scale=0.01),
        preset="tiny",
        provenance={"dataset_sha256": "ab" * 32, "train": {"steps": 0}},
    )


@pytest.fixture
def model(tiny_config: ModelConfig) -> VLAModel:
    return build_model(tiny_config, seed=0)


@pytest.fixture
def artifact(tmp_path: Path, model: VLAModel, spec: PolicySpec) -> Path:
    return save_artifact(tmp_path / "policy", model, spec)


@pytest.fixture
def make_obs() -> Callable[..., Observation]:
    """``make_obs(seed=0, instruction=..., size=96, cameras=("front",), proprio_dim=14)``."""

    def _make(
        seed: int = 0,
        instruction: str = "pick up the red cube",
        size: int | tuple[int, int] = 96,
        cameras: Sequence[str] = ("front",),
        proprio_dim: int = 14,
    ) -> Observation:
        rng = np.random.default_rng(seed)
        h, w = (size, size) if isinstance(size, int) else size
        images = {name: rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for name in cameras}
        return Observation(images=images, instruction=instruction, proprio=rng.normal(size=proprio_dim).astype(np.float32))

    return _make
