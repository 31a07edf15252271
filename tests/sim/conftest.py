"""Shared fixtures for the simulator tests: environments are closed after use."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from vla_kit.sim import TabletopEnv, make_env


@pytest.fixture
def env_factory() -> Iterator[Callable[..., TabletopEnv]]:
    """``env_factory(**make_env_kwargs)``: a fresh env per call, all closed at teardown."""
    made: list[TabletopEnv] = []

    def factory(**kwargs: object) -> TabletopEnv:
        env = make_env(**kwargs)  # type: ignore[arg-type]
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture(scope="module")
def reach_env() -> Iterator[TabletopEnv]:
    """One reach env shared by a module's tests; every test resets it before use."""
    env = make_env(task="reach", seed=0)
    yield env
    env.close()
