"""Fixtures for optimisation techniques: a tiny recorded dataset, a parent artifact made for it, a context."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vla_kit.optimize import OptimizeContext
from vla_kit.optimize.judge import JudgeConfig
from vla_kit.policy import Tokenizer, build_model, compute_norm_stats, make_spec, model_config, save_artifact
from vla_kit.sim.dataset import Dataset, GenerationParams, record_dataset


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Dataset:
    """Six short reach episodes at 48x48 (~70 frames, a few seconds to record)."""
    params = GenerationParams(tasks=("reach",), colours=("red", "green"), episodes=6, seed=1, image_size=48)
    return record_dataset(tmp_path_factory.mktemp("optimize") / "dataset", params)


@pytest.fixture(scope="session")
def parent(tmp_path_factory, dataset: Dataset) -> Path:
    """An (untrained) ``tiny`` policy artifact that fits ``dataset``: its tokenizer, statistics, image size, goal head."""
    tok = Tokenizer.build(sorted(set(dataset.instructions())))
    states, actions = dataset.states(), dataset.actions()
    cfg = model_config(
        "tiny", vocab_size=tok.vocab_size, image_height=48, image_width=48, proprio_dim=states.shape[1], action_dim=actions.shape[1],
        goal_dim=dataset.environment_states().shape[1],  # as train_policy makes it: with the auxiliary goal head
    )
    spec = make_spec(
        cfg, tok, proprio_stats=compute_norm_stats(states, std_floor=0.02), action_stats=compute_norm_stats(actions, std_floor=0.005),
        preset="tiny", provenance={"train": {"val_fraction": 0.25, "seed": 0}},
    )
    return save_artifact(tmp_path_factory.mktemp("optimize") / "parent", build_model(cfg, seed=0), spec)


@pytest.fixture
def ctx(dataset: Dataset) -> OptimizeContext:
    """Five fine-tune steps on the recorded dataset, one thread."""
    return OptimizeContext(dataset_root=dataset.root, seed=0, threads=1, finetune_steps=5)


@pytest.fixture(scope="session")
def fast_judge() -> JudgeConfig:
    """A judge that measures in seconds: five timed calls, one closed-loop episode in ``dataset``'s world (48 px, reach)."""
    return JudgeConfig(
        threads=1, warmup=1, latency_iters=5, throughput_batch=2, throughput_iters=1, tasks=("reach",), colours=("red", "green"),
        image_size=48, eval_episodes=1, timeout_s=300.0,
    )
