"""The episode runner: chunk execution, records, policy output checks, stopping rules."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.sim import ScriptedExpert, TabletopEnv, make_env, run_episode
from vla_kit.types import ActionChunk, ActionSpace, Observation


class ChunkPolicy:
    """Answers every observation with ``horizon`` small moves along +x; counts calls and resets."""

    def __init__(self, horizon: int, action: np.ndarray | None = None) -> None:
        self.horizon = horizon
        self.action = np.array([0.005, 0, 0, 0, 0, 0, 0], dtype=np.float32) if action is None else action
        self.calls: list[Observation] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def __call__(self, obs: Observation) -> ActionChunk:
        self.calls.append(obs)
        return ActionChunk(np.tile(self.action, (self.horizon, 1)), ActionSpace.EE_DELTA)


@pytest.fixture(scope="module")
def env() -> Iterator[TabletopEnv]:
    env = make_env(task="reach", seed=0, image_size=24)
    yield env
    env.close()


def test_policy_is_asked_again_after_execute_steps_actions(env: TabletopEnv) -> None:
    policy = ChunkPolicy(horizon=4)
    result = run_episode(env, policy, seed=1, execute_steps=3, max_steps=10, record_observations=False)
    assert result.steps == 10 and result.queries == 4 == len(policy.calls)
    assert [r.query for r in result.records] == [True, False, False] * 3 + [True]
    assert [r.observation is None for r in result.records] == [not r.query for r in result.records]


def test_chunks_shorter_than_execute_steps_are_executed_whole(env: TabletopEnv) -> None:
    policy = ChunkPolicy(horizon=2)
    result = run_episode(env, policy, seed=1, execute_steps=5, max_steps=10)
    assert result.queries == 5


def test_every_step_keeps_its_observation_when_asked(env: TabletopEnv) -> None:
    result = run_episode(env, ChunkPolicy(horizon=4), seed=1, execute_steps=4, max_steps=6, record_observations=True)
    assert all(r.observation is not None and r.observation.images["front"].shape == (24, 24, 3) for r in result.records)
    stamps = [r.observation.timestamp for r in result.records if r.observation is not None]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_state_based_runs_can_skip_rendering(env: TabletopEnv) -> None:
    policy = ChunkPolicy(horizon=1)
    run_episode(env, policy, seed=1, max_steps=3, images=False)
    assert all(dict(obs.images) == {} for obs in policy.calls)


def test_policy_reset_is_called_once_per_episode(env: TabletopEnv) -> None:
    policy = ChunkPolicy(horizon=1)
    for seed in (1, 2):
        run_episode(env, policy, seed=seed, max_steps=2, images=False)
    assert policy.resets == 2


def test_result_describes_the_episode(env: TabletopEnv) -> None:
    result = run_episode(env, ChunkPolicy(horizon=1), seed=6, task="push", colour="blue", max_steps=2, images=False)
    assert (result.seed, result.task, result.colour) == (6, "push", "blue")
    assert result.variant in ("left", "right") and result.instruction == env.spec.instruction
    assert result.reached_colour in ("red", "green", "blue", "yellow")
    assert not result.success
    env.reset(seed=0, task="reach", colour="red")


def test_run_stops_at_success_unless_told_otherwise(env: TabletopEnv) -> None:
    expert = ScriptedExpert(env)
    stopped = run_episode(env, expert, seed=2, task="reach", images=False)
    assert stopped.success and stopped.records[-1].success and stopped.steps < env.max_steps
    assert not any(r.success for r in stopped.records[:-1])
    kept_going = run_episode(
        env, expert, seed=2, task="reach", images=False, stop_on_success=False, max_steps=stopped.steps + 3
    )
    assert kept_going.success and kept_going.steps == stopped.steps + 3


class BufferReusingPolicy:
    """Like an inference backend that returns its output buffer and overwrites it on the next call."""

    def __init__(self) -> None:
        self.buffer = np.zeros((1, 7), dtype=np.float32)
        self.calls = 0

    def __call__(self, obs: Observation) -> ActionChunk:
        self.calls += 1
        self.buffer[0, 0] = 0.001 * self.calls
        return ActionChunk(self.buffer, ActionSpace.EE_DELTA)


def test_records_keep_what_was_asked_even_if_the_policy_reuses_its_buffer(env: TabletopEnv) -> None:
    result = run_episode(env, BufferReusingPolicy(), seed=1, max_steps=3, images=False)
    assert [round(float(r.requested[0]), 6) for r in result.records] == [0.001, 0.002, 0.003]


def test_oversized_policy_actions_are_recorded_as_clipped(env: TabletopEnv) -> None:
    big = np.array([0.5, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    result = run_episode(env, ChunkPolicy(horizon=2, action=big), seed=1, execute_steps=2, max_steps=2, images=False)
    assert all(r.clipped and np.isclose(r.action[0], 0.03) and r.requested[0] == 0.5 for r in result.records)


@pytest.mark.parametrize(
    "output, message",
    [
        (np.zeros((1, 7), dtype=np.float32), "expected an ActionChunk"),
        (ActionChunk(np.zeros((1, 8), dtype=np.float32), ActionSpace.JOINT_POSITION), "expected actions in ee_delta"),
    ],
)
def test_policy_output_of_the_wrong_kind_is_an_input_error(env: TabletopEnv, output: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_episode(env, lambda obs: output, seed=1, images=False)  # type: ignore[arg-type, return-value]


def test_policy_emitting_nan_is_refused(env: TabletopEnv) -> None:
    nan = np.array([0, 0, np.nan, 0, 0, 0, 0], dtype=np.float32)
    with pytest.raises(InputError, match="non-finite"):
        run_episode(env, ChunkPolicy(horizon=1, action=nan), seed=1, images=False)
    assert env.steps_taken == 0


@pytest.mark.parametrize(
    "kwargs", [{"execute_steps": 0}, {"execute_steps": -2}, {"max_steps": 0}, {"execute_steps": 1.5}]
)
def test_zero_or_negative_step_counts_are_input_errors(env: TabletopEnv, kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError, match="steps"):
        run_episode(env, ChunkPolicy(horizon=1), seed=1, **kwargs)  # type: ignore[arg-type]
