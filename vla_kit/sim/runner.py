"""Run one episode of a :class:`TabletopEnv` with any policy, and keep what happened.

A policy is any callable ``policy(obs) -> ActionChunk`` in ``EE_DELTA`` space. The runner executes
the first ``execute_steps`` rows of each chunk before asking again (open-loop chunk execution), and
records every step. Statistics over many episodes are built on top of :class:`EpisodeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.env import TabletopEnv
from vla_kit.types import ActionChunk, ActionSpace, Observation

__all__ = ["Policy", "StepRecord", "EpisodeResult", "run_episode"]

Policy = Callable[[Observation], ActionChunk]


@dataclass(frozen=True)
class StepRecord:
    """One executed step.

    Attributes:
        step: 0-based index in the episode.
        observation: what the env showed before this step; ``None`` on steps inside a chunk when
            ``record_observations`` is off.
        requested: the chunk row the policy produced, ``float32 (7,)``.
        action: what the env executed after clipping, ``float32 (7,)``.
        clipped: the env had to clip ``requested``.
        query: this step started a fresh chunk (the policy was called on ``observation``).
        success: the task predicate held after this step.
    """

    step: int
    observation: Observation | None
    requested: np.ndarray
    action: np.ndarray
    clipped: bool
    query: bool
    success: bool


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode did.

    Attributes:
        seed: the episode seed.
        task: task family name.
        colour: the target cube's colour.
        variant: the family variant (e.g. push direction), ``""`` if none.
        instruction: the instruction the policy saw.
        success: the task predicate held after some step.
        steps: steps executed.
        queries: how many times the policy was called.
        reached_colour: the cube nearest the grasp point when the episode ended.
        records: every step, in order.
    """

    seed: int
    task: str
    colour: str
    variant: str
    instruction: str
    success: bool
    steps: int
    queries: int
    reached_colour: str
    records: tuple[StepRecord, ...]


def run_episode(
    env: TabletopEnv,
    policy: Policy,
    *,
    seed: int | None = None,
    task: str | None = None,
    colour: str | None = None,
    execute_steps: int = 1,
    max_steps: int | None = None,
    images: bool = True,
    record_observations: bool = True,
    stop_on_success: bool = True,
) -> EpisodeResult:
    """Reset ``env`` and run ``policy`` until success or the step budget.

    If ``policy`` has a callable ``reset`` attribute it is called after the env resets, so
    stateful policies (action-chunk ensembling, history) start clean.

    Args:
        env: the environment; it is reset here with ``seed``, ``task``, ``colour``.
        policy: ``policy(obs) -> ActionChunk`` in ``EE_DELTA`` space.
        seed: episode seed (``None``: the env's previous seed + 1).
        task: task family (``None``: keep the env's).
        colour: target colour (``None``: keep the env's choice).
        execute_steps: rows of each chunk to execute before calling the policy again (chunks
            shorter than this are executed whole).
        max_steps: step budget; ``None`` takes the env's (the task family's default).
        images: render camera images for the policy; ``False`` for state-based policies.
        record_observations: observe and keep the observation before every step, not only
            those the policy was called on (costs a render per step when ``images``).
        stop_on_success: end the episode at the first step after which the task succeeds.

    Returns:
        The :class:`EpisodeResult`.

    Raises:
        InputError: ``execute_steps`` or ``max_steps`` below 1, a policy output that is not an
            ``EE_DELTA`` :class:`ActionChunk`, or an action the env refuses (NaN, wrong shape).
        RegistryError: unknown task.
    """
    if not _is_count(execute_steps):
        raise InputError("execute_steps", f"expected an int >= 1, got {execute_steps!r}")
    if max_steps is not None and not _is_count(max_steps):
        raise InputError("max_steps", f"expected None or an int >= 1, got {max_steps!r}")
    first = env.reset(seed=seed, task=task, colour=colour, images=images)
    reset_policy = getattr(policy, "reset", None)
    if callable(reset_policy):
        reset_policy()
    budget = env.max_steps if max_steps is None else max_steps

    records: list[StepRecord] = []
    pending: list[np.ndarray] = []
    queries = 0
    succeeded = False
    for step in range(budget):
        query = not pending
        obs = None
        if query or record_observations:
            obs = first if step == 0 else env.observe(images=images)
        if query:
            # Copies: an inference backend may hand out its output buffer and reuse it next call.
            pending = [row.copy() for row in _check_chunk(policy(obs), queries).actions[:execute_steps]]
            queries += 1
        row = pending.pop(0)
        result = env.step(row)
        records.append(StepRecord(step, obs, row, result.action, result.clipped, query, result.success))
        succeeded = succeeded or result.success
        if result.success and stop_on_success:
            break

    spec = env.spec
    return EpisodeResult(
        seed=env.seed,
        task=spec.task,
        colour=spec.colour,
        variant=spec.variant,
        instruction=spec.instruction,
        success=succeeded,
        steps=len(records),
        queries=queries,
        reached_colour=env.reached_colour(),
        records=tuple(records),
    )


def _is_count(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def _check_chunk(chunk: object, index: int) -> ActionChunk:
    where = f"policy output #{index}"
    if not isinstance(chunk, ActionChunk):
        raise InputError(where, f"expected an ActionChunk, got {type(chunk).__name__}")
    if chunk.space is not ActionSpace.EE_DELTA:
        raise InputError(where, f"expected actions in {ActionSpace.EE_DELTA.value}, got {chunk.space.value}")
    return chunk
