"""What every policy is to its callers: ``predict(observation) -> ActionChunk``.

Loaded artifacts (any backend), scripted experts and test doubles all satisfy it; the control loop
and the evaluation rollouts depend on nothing more.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from vla_kit.types import ActionChunk, Observation

__all__ = ["Policy"]


@runtime_checkable
class Policy(Protocol):
    """Anything that turns one observation into one action chunk."""

    def predict(self, observation: Observation) -> ActionChunk:
        """The next ``T`` actions for ``observation``."""
        ...
