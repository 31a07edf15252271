"""Demonstration datasets in a LeRobot-v3-like layout: record with the scripted expert, load for training.

Layout (a LeRobot user should recognise it)::

    <root>/
      meta/info.json                               features, fps, counts, generation parameters
      meta/stats.json                              mean/std/min/max per feature
      meta/tasks.parquet                           task_index, task (the instruction text)
      meta/episodes/chunk-000/file-000.parquet     one row per episode: length, task, colour, seed, index range
      data/chunk-000/file-000.parquet              one row per frame: index, episode_index, frame_index,
                                                   timestamp, task_index, observation.state, action
      images/observation.images.<camera>/episode-000000/frame-000000.png

Recording is deterministic: the same parameters give byte-identical files (no timestamps, fixed
PNG compression, episodes in seed order). A dataset is written to a temporary folder and renamed
when complete; :func:`record_dataset` reuses an existing dataset made with the same parameters.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from vla_kit.errors import ArtifactError, InputError
from vla_kit.sim.env import PROPRIO_DIM, PROPRIO_LAYOUT, make_env
from vla_kit.sim.expert import ScriptedExpert
from vla_kit.sim.layout import COLOURS
from vla_kit.sim.tasks import get_task

__all__ = ["DATASET_FORMAT", "ENV_STATE_NAMES", "GenerationParams", "Dataset", "record_dataset", "load_dataset", "episode_seed", "split_episodes"]

DATASET_FORMAT = "vla_kit/lerobot-v3-like/2"  # 2: adds observation.environment_state
# What observation.environment_state holds per frame (LeRobot's key for object state): the centre
# of the cube the instruction names, m, base frame. Policies never read it at run time; training
# uses it as an auxiliary target that teaches the vision encoder *where* the named cube is.
ENV_STATE_NAMES = ["target_cube.x", "target_cube.y", "target_cube.z"]
ACTION_NAMES = ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]
_CHUNK = "chunk-000"
_FILE = "file-000.parquet"


@dataclass(frozen=True)
class GenerationParams:
    """What a dataset is made from. Equal parameters -> identical dataset bytes.

    Attributes:
        tasks: task families, cycled over episodes.
        colours: target colours, cycled over episodes (after the tasks).
        episodes: successful episodes to record.
        seed: dataset seed; episode ``i`` uses :func:`episode_seed` ``(seed, i)``.
        image_size: camera side in pixels.
        control_dt: seconds per step.
        max_attempts_factor: give up after ``episodes * factor`` attempts (expert failures are dropped).
        start_jitter: half-width (m) of the random start box around the home pose (see ``SimConfig``).
        action_noise: std (m) of Gaussian noise added to the *executed* translation (DART): the arm
            visits off-course states and the recorded label is the expert's correction from there.
    """

    tasks: tuple[str, ...]
    colours: tuple[str, ...]
    episodes: int
    seed: int
    image_size: int = 96
    control_dt: float = 0.1
    max_attempts_factor: float = 1.5
    start_jitter: float = 0.0
    action_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.action_noise <= 0.05:
            raise InputError("action_noise", f"expected metres in [0, 0.05], got {self.action_noise!r}")
        if not self.tasks:
            raise InputError("tasks", "expected at least one task family")
        for t in self.tasks:
            get_task(t)  # RegistryError listing the families
        unknown = [c for c in self.colours if c not in COLOURS]
        if not self.colours or unknown:
            raise InputError("colours", f"expected colours from {', '.join(COLOURS)}, got {list(self.colours)}")
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise InputError("episodes", f"expected an int >= 1, got {self.episodes!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError("seed", f"expected an int >= 0, got {self.seed!r}")

    def as_dict(self) -> dict:
        return {"tasks": list(self.tasks), "colours": list(self.colours), "episodes": self.episodes, "seed": self.seed,
                "image_size": self.image_size, "control_dt": self.control_dt, "max_attempts_factor": self.max_attempts_factor,
                "start_jitter": self.start_jitter, "action_noise": self.action_noise}


def episode_seed(seed: int, attempt: int) -> int:
    """The simulator seed of recording attempt ``attempt``: disjoint ranges per dataset seed."""
    return 1_000_000 * (seed + 1) + attempt


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def _demonstrate(env, expert: ScriptedExpert, seed: int, task: str, colour: str, noise: float) -> list | None:
    """One expert episode: ``[(observation, expert action, target cube centre)]`` until success, or None.

    With ``noise`` > 0 the executed translation is perturbed (DART); the label stays the expert's
    action at the state it was in, so the data shows how to recover from drift.
    """
    obs = env.reset(seed=seed, task=task, colour=colour)
    rng = np.random.default_rng([seed, 7])
    out = []
    for _ in range(env.max_steps):
        label = expert.act().astype(np.float32)
        executed = label.copy()
        if noise > 0:
            executed[:3] += rng.normal(0.0, noise, 3).astype(np.float32)
        out.append((obs, label, env.state().cube_positions[colour].astype(np.float32)))
        if env.step(executed).success:
            return out
        obs = env.observe()
    return None


def _stats(x: np.ndarray) -> dict:
    x = np.asarray(x, dtype=np.float64)
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "min": x.min(0).tolist(), "max": x.max(0).tolist(), "count": [int(x.shape[0])]}


def record_dataset(
    root: str | Path,
    params: GenerationParams,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> "Dataset":
    """Record expert demonstrations into ``root`` (or reuse it if made with the same parameters).

    A dataset of an older format at ``root`` is recorded afresh.

    Args:
        root: dataset folder.
        params: what to record.
        progress: called as ``progress(done_episodes, total)`` after each kept episode.

    Returns:
        The loaded :class:`Dataset`.

    Raises:
        InputError: bad parameters, or the expert failed too often to fill the dataset.
    """
    import pandas as pd

    root = Path(root)
    if (root / "meta" / "info.json").exists() and _format_of(root) == DATASET_FORMAT:
        existing = load_dataset(root)
        if existing.info.get("generation") == params.as_dict():
            return existing
        raise InputError(str(root), "holds a dataset made with other parameters; choose another folder or delete it")
    tmp = root.with_name(f".{root.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "meta").mkdir(parents=True)
    env = make_env(task=params.tasks[0], seed=episode_seed(params.seed, 0), image_size=params.image_size,
                   control_dt=params.control_dt, start_jitter=params.start_jitter)
    expert = ScriptedExpert(env)
    frames: list[dict] = []
    episodes: list[dict] = []
    tasks: dict[str, int] = {}
    attempt = 0
    max_attempts = int(np.ceil(params.episodes * params.max_attempts_factor))
    try:
        while len(episodes) < params.episodes:
            if attempt >= max_attempts:
                raise InputError("episodes", f"the expert succeeded in only {len(episodes)} of {attempt} attempts; cannot record {params.episodes}")
            i = len(episodes)
            task = params.tasks[i % len(params.tasks)]
            colour = params.colours[(i // len(params.tasks)) % len(params.colours)]
            seed = episode_seed(params.seed, attempt)
            attempt += 1
            steps = _demonstrate(env, expert, seed, task, colour, params.action_noise)
            if steps is None:
                continue
            ep = len(episodes)
            spec = env.spec
            task_index = tasks.setdefault(spec.instruction, len(tasks))
            start = len(frames)
            img_dir = tmp / "images" / "observation.images.front" / f"episode-{ep:06d}"
            img_dir.mkdir(parents=True)
            for step, (obs, label, target) in enumerate(steps):
                (img_dir / f"frame-{step:06d}.png").write_bytes(_png(obs.images["front"]))
                frames.append({
                    "index": len(frames), "episode_index": ep, "frame_index": step,
                    "timestamp": np.float32(step * params.control_dt), "task_index": task_index,
                    "observation.state": obs.proprio.astype(np.float32).tolist(),
                    "action": label.astype(np.float32).tolist(),
                    "observation.environment_state": target.tolist(),
                })
            episodes.append({
                "episode_index": ep, "length": len(steps), "tasks": [spec.instruction], "task_family": spec.task,
                "colour": spec.colour, "variant": spec.variant, "seed": seed,
                "dataset_from_index": start, "dataset_to_index": len(frames),
                "data/chunk_index": 0, "data/file_index": 0,
            })
            if progress:
                progress(len(episodes), params.episodes)
    finally:
        env.close()

    df = pd.DataFrame(frames)
    (tmp / "data" / _CHUNK).mkdir(parents=True)
    df.to_parquet(tmp / "data" / _CHUNK / _FILE, index=False)
    (tmp / "meta" / "episodes" / _CHUNK).mkdir(parents=True)
    pd.DataFrame(episodes).to_parquet(tmp / "meta" / "episodes" / _CHUNK / _FILE, index=False)
    pd.DataFrame({"task_index": list(tasks.values()), "task": list(tasks.keys())}).to_parquet(tmp / "meta" / "tasks.parquet", index=False)
    states = np.array(df["observation.state"].tolist(), dtype=np.float32)
    actions = np.array(df["action"].tolist(), dtype=np.float32)
    env_states = np.array(df["observation.environment_state"].tolist(), dtype=np.float32)
    stats = {"observation.state": _stats(states), "observation.environment_state": _stats(env_states), "action": _stats(actions)}
    info = {
        "format": DATASET_FORMAT,
        "codebase_version": "v3.0",
        "robot_type": "franka_panda (pybullet)",
        "fps": round(1.0 / params.control_dt, 6),
        "total_episodes": len(episodes),
        "total_frames": len(frames),
        "total_tasks": len(tasks),
        "recording_attempts": attempt,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "image_path": "images/{image_key}/episode-{episode_index:06d}/frame-{frame_index:06d}.png",
        "features": {
            "observation.images.front": {"dtype": "image", "shape": [params.image_size, params.image_size, 3], "names": ["height", "width", "channel"]},
            "observation.state": {"dtype": "float32", "shape": [PROPRIO_DIM], "names": _state_names()},
            "observation.environment_state": {"dtype": "float32", "shape": [len(ENV_STATE_NAMES)], "names": ENV_STATE_NAMES},
            "action": {"dtype": "float32", "shape": [len(ACTION_NAMES)], "names": ACTION_NAMES},
            "timestamp": {"dtype": "float32", "shape": [1]},
            "frame_index": {"dtype": "int64", "shape": [1]},
            "episode_index": {"dtype": "int64", "shape": [1]},
            "index": {"dtype": "int64", "shape": [1]},
            "task_index": {"dtype": "int64", "shape": [1]},
        },
        "generation": params.as_dict(),
    }
    (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    if root.exists():
        shutil.rmtree(root)
    os.rename(tmp, root)
    return load_dataset(root)


def _state_names() -> list[str]:
    names = []
    for key, sl in PROPRIO_LAYOUT.items():
        n = sl.stop - sl.start
        names.extend([key] if n == 1 else [f"{key}.{i}" for i in range(n)])
    return names


class Dataset:
    """A recorded dataset, loaded lazily. Frames and episodes are pandas DataFrames."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.info: dict = json.loads((self.root / "meta" / "info.json").read_text())
        self.stats: dict = json.loads((self.root / "meta" / "stats.json").read_text())

    @cached_property
    def frames(self):
        """One row per frame (``data/…parquet``)."""
        import pandas as pd

        return pd.read_parquet(self.root / "data" / _CHUNK / _FILE)

    @cached_property
    def episodes(self):
        """One row per episode (``meta/episodes/…parquet``)."""
        import pandas as pd

        return pd.read_parquet(self.root / "meta" / "episodes" / _CHUNK / _FILE)

    @cached_property
    def tasks(self):
        """``task_index`` -> instruction text."""
        import pandas as pd

        df = pd.read_parquet(self.root / "meta" / "tasks.parquet")
        return dict(zip(df["task_index"].astype(int), df["task"]))

    def states(self) -> np.ndarray:
        """``float32 [N, 14]`` proprio of every frame."""
        return np.array(self.frames["observation.state"].tolist(), dtype=np.float32)

    def actions(self) -> np.ndarray:
        """``float32 [N, 7]`` executed action of every frame."""
        return np.array(self.frames["action"].tolist(), dtype=np.float32)

    def environment_states(self) -> np.ndarray:
        """``float32 [N, 3]`` centre of the instructed cube at every frame (see ``ENV_STATE_NAMES``)."""
        return np.array(self.frames["observation.environment_state"].tolist(), dtype=np.float32)

    def instructions(self) -> list[str]:
        """The instruction of every frame."""
        tasks = self.tasks
        return [tasks[int(i)] for i in self.frames["task_index"]]

    def images(self, camera: str = "front") -> np.ndarray:
        """``uint8 [N, H, W, 3]``: every frame of ``camera``, decoded once and cached."""
        cache = self.__dict__.setdefault("_images", {})
        if camera not in cache:
            from PIL import Image

            key = f"observation.images.{camera}"
            if key not in self.info["features"]:
                raise InputError("camera", f"dataset has no camera {camera!r}")
            h, w, _ = self.info["features"][key]["shape"]
            out = np.empty((len(self.frames), h, w, 3), dtype=np.uint8)
            for n, (ep, fr) in enumerate(zip(self.frames["episode_index"], self.frames["frame_index"])):
                path = self.root / "images" / key / f"episode-{int(ep):06d}" / f"frame-{int(fr):06d}.png"
                out[n] = np.asarray(Image.open(path).convert("RGB"))
            cache[camera] = out
        return cache[camera]

    def sha256(self) -> str:
        """Content hash of the whole dataset folder."""
        from vla_kit.reports.archive import sha256_path

        return sha256_path(self.root)


def _format_of(root: Path) -> object:
    try:
        return json.loads((root / "meta" / "info.json").read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def load_dataset(root: str | Path) -> Dataset:
    """Open a recorded dataset.

    Raises:
        ArtifactError: the folder is missing or is not a vla_kit dataset.
    """
    root = Path(root)
    info = root / "meta" / "info.json"
    if not info.is_file():
        raise ArtifactError(root, "not a dataset: meta/info.json is missing")
    try:
        fmt = json.loads(info.read_text()).get("format")
    except ValueError as e:
        raise ArtifactError(info, f"malformed JSON ({e})") from None
    if fmt != DATASET_FORMAT:
        raise ArtifactError(info, f"unknown dataset format {fmt!r}; expected {DATASET_FORMAT!r}")
    return Dataset(root)


def split_episodes(dataset: Dataset, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of a train/validation split by whole episodes (no frame leaks across)."""
    rng = np.random.default_rng(seed)
    eps = dataset.episodes["episode_index"].to_numpy()
    n_val = int(round(len(eps) * val_fraction))
    val_eps = set(rng.permutation(eps)[:n_val].tolist()) if n_val else set()
    is_val = dataset.frames["episode_index"].isin(val_eps).to_numpy()
    idx = np.arange(len(dataset.frames))
    return idx[~is_val], idx[is_val]

