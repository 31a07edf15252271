"""Closed-loop evaluation: Wilson intervals, round-robin episodes, a grounding test that catches language-blind policies."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import InputError, RegistryError
from vla_kit.learn.evaluate import Rate, evaluate_policy, grounding_test, wilson_interval
from vla_kit.types import ActionChunk, ActionSpace


def test_wilson_interval_matches_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(60, 60)
    assert hi == 1.0 and lo == pytest.approx(0.9398, abs=1e-3)


def test_rate_counts_successes():
    r = Rate.of([True, False, True, True])
    assert (r.successes, r.n, r.rate) == (3, 4, 0.75) and r.ci_low < 0.75 < r.ci_high


def _constant(direction):
    """A policy that ignores everything it sees and always moves the same way."""
    row = np.array([*direction, 0, 0, 0, 0], dtype=np.float32)

    def policy(obs):
        return ActionChunk(np.tile(row, (4, 1)), ActionSpace.EE_DELTA)

    return policy


def test_language_blind_policy_scores_chance_on_grounding():
    report = grounding_test(_constant((0.02, 0.0, -0.02)), scenes=2, seed=5, execute_steps=4)
    assert report.matrix.sum() == 8 and report.chance == 0.25
    # the same scene ends at the same cube whatever the instruction: one hit per scene
    assert report.accuracy == pytest.approx(1 / 4)
    assert (report.matrix.sum(axis=0) > 0).sum() <= 2
    assert report.as_dict()["matrix"] == report.matrix.tolist()


def test_evaluation_spreads_episodes_over_tasks_and_colours():
    rep = evaluate_policy(_constant((0.0, 0.0, 0.0)), tasks=["reach", "pick"], colours=["red", "blue"], episodes=4, seed=100)
    assert [(e.task, e.colour, e.seed) for e in rep.episodes] == [("reach", "red", 100), ("pick", "red", 101), ("reach", "blue", 102), ("pick", "blue", 103)]
    assert rep.overall.n == 4 and set(rep.per_task) == {"reach", "pick"} and rep.filmstrip is not None
    d = rep.as_dict()
    assert d["episodes"] == 4 and d["seed"] == 100 and 0.0 <= d["success_rate"] <= 1.0
    assert list(rep.table()["group"])[:1] == ["all"]


@pytest.mark.parametrize(
    "kw, err",
    [
        ({"tasks": ["fly"]}, RegistryError),
        ({"colours": ["purple"]}, InputError),
        ({"episodes": 0}, InputError),
        ({"seed": 999_999}, InputError),
        ({"execute_steps": 0}, InputError),
    ],
)
def test_bad_evaluation_arguments_are_named(kw, err):
    args = {"tasks": ["reach"], "episodes": 2, "seed": 0} | kw
    with pytest.raises(err):
        evaluate_policy(_constant((0, 0, 0)), **args)
