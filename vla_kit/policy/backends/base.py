"""The base class every inference backend derives from (template method).

The public methods validate, preprocess, run, check and postprocess; a backend implements two
hooks only:

* :meth:`PolicyBackend._load` (classmethod): build a ready instance from an artifact folder whose
  checksums and spec were already verified, and whose :attr:`weights_file` is known to exist;
* :meth:`PolicyBackend._infer`: run the network on :class:`~vla_kit.policy.processing.ModelInputs`
  and return its raw ``[B, T, action_dim]`` output.

Everything numeric outside the network comes from :class:`~vla_kit.policy.processing.Processor`,
so two backends that run the same graph return the same chunks up to their kernels' rounding.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence, TypeVar

import numpy as np

from vla_kit.errors import ArtifactError, InputError
from vla_kit.policy.processing import ModelInputs, Processor
from vla_kit.policy.spec import PolicySpec
from vla_kit.types import ActionChunk, Observation

__all__ = ["PolicyBackend"]

_B = TypeVar("_B", bound="PolicyBackend")


class PolicyBackend(ABC):
    """A policy ready to predict, backed by one inference engine.

    Args:
        spec: the artifact's parsed ``policy.json``.
        source: where the weights came from (artifact folder, or a note for in-memory models).

    Attributes:
        name: the backend's registry name (``"torch"``).
        weights_file: the file this backend reads from an artifact folder.
        spec: the parsed ``policy.json``.
        processor: the shared pre/post-processing.
        source: where the weights came from.
    """

    name: ClassVar[str]
    weights_file: ClassVar[str]

    def __init__(self, spec: PolicySpec, *, source: str) -> None:
        self.spec = spec
        self.processor = Processor(spec)
        self.source = source

    @classmethod
    def load(cls: type[_B], artifact_dir: Path, spec: PolicySpec, **options: Any) -> _B:
        """Load from a verified artifact folder.

        Args:
            artifact_dir: the artifact folder (checksums already verified).
            spec: its parsed ``policy.json``.
            **options: backend-specific, e.g. ``device="cuda"`` for torch.

        Raises:
            ArtifactError: the artifact has no :attr:`weights_file`, or the weights do not fit.
        """
        weights = Path(artifact_dir) / cls.weights_file
        if not weights.is_file():
            raise ArtifactError(weights, f"missing: the {cls.name!r} backend needs {cls.weights_file} in the artifact")
        return cls._load(Path(artifact_dir), spec, **options)

    @classmethod
    @abstractmethod
    def _load(cls: type[_B], artifact_dir: Path, spec: PolicySpec, **options: Any) -> _B:
        """Hook: build the instance from ``artifact_dir / cls.weights_file``."""

    @abstractmethod
    def _infer(self, inputs: ModelInputs) -> np.ndarray:
        """Hook: the network's raw output for ``inputs``, ``[B, T, action_dim]``."""

    @property
    @abstractmethod
    def num_parameters(self) -> int:
        """Number of weights in the network (after any pruning/quantisation, as stored)."""

    def infer(self, inputs: ModelInputs) -> np.ndarray:
        """Run the network on a prepared batch; normalised output as ``float32 [B, T, action_dim]``.

        This is the number-for-number comparison point between backends.

        Raises:
            ArtifactError: the backend answered with another shape (a broken export).
        """
        raw = np.asarray(self._infer(inputs), dtype=np.float32)
        expected = (inputs.batch_size, self.spec.chunk_length, self.spec.model.action_dim)
        if raw.shape != expected:
            raise ArtifactError(self.source, f"{self.name} backend returned shape {raw.shape}; expected {expected}")
        return raw

    def predict_batch(self, observations: Sequence[Observation]) -> list[ActionChunk]:
        """One action chunk per observation, computed in a single batch.

        Raises:
            InputError: an observation does not match the policy (camera, image shape, proprio).
        """
        inputs, warnings = self.processor.preprocess(observations)
        actions = self.processor.postprocess(self.infer(inputs))
        produced = time.monotonic()
        return [
            ActionChunk(actions[i], self.spec.action_space, timestamp=produced, warnings=warnings[i])
            for i in range(len(warnings))
        ]

    def predict(self, observation: Observation) -> ActionChunk:
        """The next ``T`` actions, de-normalised into the spec's action space.

        The chunk's ``warnings`` say when the instruction held words the policy never saw, was
        empty, or was truncated.

        Raises:
            InputError: a missing camera or wrong image shape (the message names the camera and
                the expected shape), or proprio of the wrong length.
        """
        if not isinstance(observation, Observation):
            raise InputError("observation", f"expected an Observation, got {type(observation).__name__}")
        return self.predict_batch([observation])[0]

    def __call__(self, observation: Observation) -> ActionChunk:
        """Same as :meth:`predict`, so a loaded policy plugs into ``sim.run_episode``."""
        return self.predict(observation)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.name!r}, preset={self.spec.preset!r}, source={self.source!r})"
