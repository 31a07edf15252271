"""Closed-loop evaluation in the simulator: success rates with Wilson intervals, and language grounding.

Episodes are spread round-robin over (task, colour) pairs and seeded ``seed, seed+1, ...`` — a range
far from the recording seeds (:func:`vla_kit.sim.dataset.episode_seed` starts at 1,000,000), so a
policy is never evaluated on a scene it was trained on. The grounding test sets up the *same* scene
once per colour, instructs "touch the <colour> cube", and scores whether the arm ends nearest the
named cube: a policy that ignores language scores about one in the number of cubes (1/4 with the
four colours every scene shows).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.env import make_env
from vla_kit.sim.layout import COLOURS
from vla_kit.sim.runner import EpisodeResult, Policy, run_episode
from vla_kit.sim.tasks import get_task

__all__ = ["wilson_interval", "Rate", "EpisodeSummary", "EvalReport", "evaluate_policy", "grounding_test", "GroundingReport"]

RECORDING_SEED_START = 1_000_000  # evaluation seeds must stay below this (see module docstring)


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) when ``n == 0``."""
    if n == 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise InputError("successes", f"expected 0 <= successes <= n = {n}, got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class Rate:
    """A success rate with its 95 % Wilson interval."""

    successes: int
    n: int
    rate: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, flags: Sequence[bool]) -> "Rate":
        k, n = int(sum(bool(f) for f in flags)), len(flags)
        lo, hi = wilson_interval(k, n)
        return cls(k, n, k / n if n else float("nan"), lo, hi)


@dataclass(frozen=True)
class EpisodeSummary:
    """One evaluation episode, without its frames."""

    seed: int
    task: str
    colour: str
    instruction: str
    success: bool
    steps: int
    reached_colour: str


@dataclass
class EvalReport:
    """Everything :func:`evaluate_policy` measured."""

    seed: int
    execute_steps: int
    episodes: list[EpisodeSummary]
    overall: Rate
    per_task: dict[str, Rate]
    per_colour: dict[str, Rate]
    per_task_colour: dict[str, Rate]
    filmstrip: EpisodeResult | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """The numbers (what ``vla-kit evaluate --json`` writes), without frames."""
        return {
            "success_rate": self.overall.rate,
            "success": asdict(self.overall),
            "per_task": {k: asdict(v) for k, v in self.per_task.items()},
            "per_colour": {k: asdict(v) for k, v in self.per_colour.items()},
            "per_task_colour": {k: asdict(v) for k, v in self.per_task_colour.items()},
            "episodes": len(self.episodes),
            "seed": self.seed,
            "execute_steps": self.execute_steps,
            "episode_results": [asdict(e) for e in self.episodes],
        }

    def table(self):
        """Success table: one row per task family and per colour, plus the total, with intervals."""
        import pandas as pd

        rows = [("all", "all", self.overall)]
        rows += [("task", k, v) for k, v in self.per_task.items()]
        rows += [("colour", k, v) for k, v in self.per_colour.items()]
        return pd.DataFrame(
            [{"group": g, "name": n, "success": r.successes, "episodes": r.n, "rate": r.rate, "95% CI low": r.ci_low, "95% CI high": r.ci_high} for g, n, r in rows]
        )


def _check_common(tasks: Sequence[str], colours: Sequence[str], episodes: int, seed: int, execute_steps: int) -> None:
    for t in tasks:
        get_task(t)
    bad = [c for c in colours if c not in COLOURS]
    if not colours or bad:
        raise InputError("colours", f"expected colours from {', '.join(COLOURS)}, got {list(colours)}")
    if not isinstance(episodes, int) or episodes < 1:
        raise InputError("episodes", f"expected an int >= 1, got {episodes!r}")
    if not isinstance(seed, int) or seed < 0 or seed + episodes > RECORDING_SEED_START:
        raise InputError("seed", f"expected 0 <= seed and seed + episodes <= {RECORDING_SEED_START} (recording seeds start there), got {seed!r}")
    if not isinstance(execute_steps, int) or execute_steps < 1:
        raise InputError("execute_steps", f"expected an int >= 1, got {execute_steps!r}")


def evaluate_policy(
    policy: Policy,
    *,
    tasks: Sequence[str],
    colours: Sequence[str] = COLOURS,
    episodes: int,
    seed: int,
    execute_steps: int = 4,
    image_size: int = 96,
    control_dt: float = 0.1,
    start_jitter: float = 0.0,
    keep_filmstrip: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run ``episodes`` closed-loop episodes and measure success.

    Args:
        policy: ``policy(obs) -> ActionChunk`` (e.g. a loaded policy's ``predict``).
        tasks: task families to cycle through.
        colours: target colours to cycle through (after the tasks).
        episodes: number of episodes.
        seed: first episode seed; episode ``i`` uses ``seed + i``.
        execute_steps: actions of each chunk executed before re-planning.
        image_size: camera side in pixels (must match what the policy expects).
        control_dt: seconds per step.
        start_jitter: random start box half-width (m); use what the policy was trained with.
        keep_filmstrip: keep the frames of the first episode (for a filmstrip figure).
        progress: called as ``progress(done, total)``.

    Returns:
        :class:`EvalReport`.
    """
    _check_common(tasks, colours, episodes, seed, execute_steps)
    env = make_env(task=tasks[0], seed=seed, image_size=image_size, control_dt=control_dt, start_jitter=start_jitter)
    summaries: list[EpisodeSummary] = []
    film: EpisodeResult | None = None
    try:
        for i in range(episodes):
            task = tasks[i % len(tasks)]
            colour = colours[(i // len(tasks)) % len(colours)]
            keep = keep_filmstrip and i == 0
            res = run_episode(env, policy, seed=seed + i, task=task, colour=colour, execute_steps=execute_steps, record_observations=keep)
            if keep:
                film = res
            summaries.append(EpisodeSummary(seed + i, res.task, res.colour, res.instruction, res.success, res.steps, res.reached_colour))
            if progress:
                progress(i + 1, episodes)
    finally:
        env.close()
    by = lambda key: {k: Rate.of([s.success for s in summaries if key(s) == k]) for k in dict.fromkeys(key(s) for s in summaries)}  # noqa: E731
    return EvalReport(
        seed=seed,
        execute_steps=execute_steps,
        episodes=summaries,
        overall=Rate.of([s.success for s in summaries]),
        per_task=by(lambda s: s.task),
        per_colour=by(lambda s: s.colour),
        per_task_colour=by(lambda s: f"{s.task}/{s.colour}"),
        filmstrip=film,
    )


@dataclass
class GroundingReport:
    """Instructed colour x reached colour counts over identical scenes.

    Rows are the instructed colours, columns every cube colour in the scene (distractors too), so
    an arm that ends at a cube that was never named still counts as a miss.
    """

    colours: list[str]  # instructed (rows)
    reached_colours: list[str]  # every cube colour in the scene (columns)
    matrix: np.ndarray  # [instructed, reached] counts
    scenes: int
    seed: int

    @property
    def accuracy(self) -> float:
        """Fraction of episodes that ended at the instructed cube."""
        total = self.matrix.sum()
        hits = sum(self.matrix[i, self.reached_colours.index(c)] for i, c in enumerate(self.colours))
        return float(hits / total) if total else float("nan")

    @property
    def chance(self) -> float:
        """What a policy that ignores the instruction scores: one cube in ``len(reached_colours)``."""
        return 1.0 / len(self.reached_colours)

    def as_dict(self) -> dict:
        return {"grounding_accuracy": self.accuracy, "chance": self.chance, "colours": self.colours, "reached_colours": self.reached_colours,
                "matrix": self.matrix.tolist(), "scenes": self.scenes, "seed": self.seed}


def grounding_test(
    policy: Policy,
    *,
    scenes: int,
    seed: int,
    colours: Sequence[str] = COLOURS,
    task: str = "reach",
    execute_steps: int = 4,
    image_size: int = 96,
    control_dt: float = 0.1,
    start_jitter: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> GroundingReport:
    """Same scene, each colour's instruction: does the arm go to the named cube?

    Args:
        policy: the policy under test.
        scenes: distinct scenes (seeds ``seed .. seed + scenes - 1``); each is run once per colour.
        seed: first scene seed.
        colours: colours to instruct.
        task: task family whose instruction is used (``reach`` by default).
        execute_steps, image_size, control_dt, start_jitter: as in :func:`evaluate_policy`.
        progress: called as ``progress(done, total)``.

    Returns:
        :class:`GroundingReport`.
    """
    _check_common([task], colours, scenes, seed, execute_steps)
    cols = {c: i for i, c in enumerate(COLOURS)}
    matrix = np.zeros((len(colours), len(COLOURS)), dtype=np.int64)
    env = make_env(task=task, seed=seed, image_size=image_size, control_dt=control_dt, start_jitter=start_jitter)
    total, done = scenes * len(colours), 0
    try:
        for s in range(scenes):
            for row, c in enumerate(colours):
                res = run_episode(env, policy, seed=seed + s, task=task, colour=c, execute_steps=execute_steps, record_observations=False)
                matrix[row, cols[res.reached_colour]] += 1
                done += 1
                if progress:
                    progress(done, total)
    finally:
        env.close()
    return GroundingReport(list(colours), list(COLOURS), matrix, scenes, seed)
