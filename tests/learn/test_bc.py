"""Behaviour cloning: chunk targets masked at episode ends, loss goes down, runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_kit.errors import InputError
from vla_kit.learn.bc import TrainConfig, chunk_targets, train_policy
from vla_kit.policy import load_policy
from vla_kit.sim.dataset import GenerationParams, record_dataset


def test_chunk_targets_stop_at_the_episode_end():
    actions = np.arange(5 * 2, dtype=np.float32).reshape(5, 2)
    episode = np.array([0, 0, 0, 1, 1])
    tgt, mask = chunk_targets(actions, episode, 3)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]]
    assert tgt[1, 1].tolist() == actions[2].tolist() and tgt[1, 2].tolist() == [0, 0]
    assert tgt[3, 1].tolist() == actions[4].tolist()


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory):
    return record_dataset(tmp_path_factory.mktemp("bc") / "d", GenerationParams(tasks=("reach",), colours=("red", "green"), episodes=4, seed=1, image_size=48))


CFG = TrainConfig(steps=40, batch_size=16, warmup_steps=5, log_every=10, eval_every=20, val_fraction=0.25, threads=1, seed=7)


def test_training_lowers_the_loss_and_saves_a_loadable_artifact(small_ds, tmp_path):
    res = train_policy(small_ds, CFG, checkpoint_dir=tmp_path / "ckpt")
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0]
    assert any("val_loss" in h for h in res.history) and res.samples_per_s > 0 and res.num_parameters < 2_000_000
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000020", "step-000040"]
    path = res.save(tmp_path / "policy")
    pol = load_policy(path)
    assert pol.spec.provenance["dataset_sha256"] == small_ds.sha256()
    obs_img = small_ds.images()[0]
    from vla_kit.types import Observation

    obs = Observation({"front": obs_img}, small_ds.instructions()[0], small_ds.states()[0])
    assert np.allclose(pol.predict(obs).actions, res.policy().predict(obs).actions, atol=1e-5)


def test_same_seed_and_threads_give_identical_weights(small_ds):
    a = train_policy(small_ds, TrainConfig(**{**CFG.__dict__, "steps": 8}))
    b = train_policy(small_ds, TrainConfig(**{**CFG.__dict__, "steps": 8}))
    for (na, pa), (_, pb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(pa, pb), na


@pytest.mark.parametrize("kw", [{"steps": 0}, {"lr": -1.0}, {"val_fraction": 1.0}, {"batch_size": 0}, {"unk_prob": 1.5}])
def test_bad_training_config_is_named(kw):
    with pytest.raises(InputError):
        TrainConfig(**kw)
