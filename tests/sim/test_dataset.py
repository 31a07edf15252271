"""Recorded demonstrations: LeRobot-v3-like layout, byte-identical for equal params, reusable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vla_kit.errors import ArtifactError, InputError, RegistryError
from vla_kit.sim.dataset import GenerationParams, episode_seed, load_dataset, record_dataset, split_episodes

PARAMS = GenerationParams(tasks=("reach", "pick"), colours=("red", "blue"), episodes=4, seed=3, image_size=32)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds") / "d"
    return record_dataset(root, PARAMS)


def test_layout_is_lerobot_like(recorded):
    root = recorded.root
    for rel in ("meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet"):
        assert (root / rel).is_file(), rel
    info = json.loads((root / "meta/info.json").read_text())
    assert info["total_episodes"] == 4 and info["features"]["action"]["shape"] == [7]
    assert info["features"]["observation.images.front"]["shape"] == [32, 32, 3]
    assert (root / "images/observation.images.front/episode-000000/frame-000000.png").is_file()
    assert not list(root.parent.glob(".*partial"))


def test_frames_episodes_and_images_agree(recorded):
    n = recorded.info["total_frames"]
    assert recorded.images().shape == (n, 32, 32, 3) and recorded.states().shape == (n, 14) and recorded.actions().shape == (n, 7)
    eps = recorded.episodes
    assert list(eps["task_family"]) == ["reach", "pick", "reach", "pick"] and list(eps["colour"]) == ["red", "red", "blue", "blue"]
    assert (eps["dataset_to_index"] - eps["dataset_from_index"] == eps["length"]).all()
    assert eps["seed"].min() >= episode_seed(3, 0)
    assert set(recorded.instructions()) == set(recorded.tasks.values())


def test_stats_match_the_data(recorded):
    acts = recorded.actions().astype(np.float64)
    assert np.allclose(recorded.stats["action"]["mean"], acts.mean(0)) and np.allclose(recorded.stats["action"]["max"], acts.max(0))


def test_same_params_give_identical_bytes_and_existing_dataset_is_reused(recorded, tmp_path):
    again = record_dataset(tmp_path / "d2", PARAMS)
    assert again.sha256() == recorded.sha256()
    before = (recorded.root / "meta/info.json").stat().st_mtime_ns
    assert record_dataset(recorded.root, PARAMS).sha256() == recorded.sha256()
    assert (recorded.root / "meta/info.json").stat().st_mtime_ns == before


def test_a_folder_with_another_dataset_is_not_overwritten(recorded):
    other = GenerationParams(tasks=("reach",), colours=("red",), episodes=1, seed=3, image_size=32)
    with pytest.raises(InputError, match="other parameters"):
        record_dataset(recorded.root, other)


def test_episode_split_keeps_episodes_whole(recorded):
    train, val = split_episodes(recorded, 0.5, seed=0)
    ep = recorded.frames["episode_index"].to_numpy()
    assert set(ep[train]).isdisjoint(set(ep[val])) and len(train) + len(val) == len(ep)


@pytest.mark.parametrize(
    "kw, err",
    [({"tasks": ("fly",)}, RegistryError), ({"colours": ("purple",)}, InputError), ({"episodes": 0}, InputError), ({"tasks": ()}, InputError)],
)
def test_bad_generation_params_are_named(kw, err):
    with pytest.raises(err):
        GenerationParams(**({"tasks": ("reach",), "colours": ("red",), "episodes": 1, "seed": 0} | kw))


def test_loading_something_that_is_not_a_dataset_fails_clearly(tmp_path):
    with pytest.raises(ArtifactError, match="meta/info.json is missing"):
        load_dataset(tmp_path)
