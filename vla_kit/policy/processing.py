"""Observations -> model inputs -> action chunks, in numpy, shared by every backend.

Each backend (PyTorch, ONNX Runtime, TensorRT, …) only runs the network on :class:`ModelInputs`
and returns its raw ``[B, T, action_dim]`` output; everything on either side happens here, from
the artifact's ``policy.json``, so two backends given the same observation see the same arrays and
their answers can be compared number for number.

Before the network: pick the spec's cameras in order and check their shapes, tokenize the
instruction, normalise proprio. Images stay ``uint8`` because the network normalises pixels itself
(see :mod:`vla_kit.policy.model`). After: de-normalise actions and clip the gripper command into
the action space's ``[0, 1]`` range.

The graph's inputs and output have fixed names (:data:`INPUT_NAMES`, :data:`OUTPUT_NAME`), which
exporters use for the ONNX/TensorRT graph so that :meth:`ModelInputs.as_dict` feeds it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vla_kit.errors import InputError
from vla_kit.policy.spec import PolicySpec
from vla_kit.policy.tokenizer import split_words
from vla_kit.types import ActionSpace, Observation

__all__ = ["ModelInputs", "Processor", "INPUT_NAMES", "OUTPUT_NAME", "GRIPPER_RANGE"]

INPUT_NAMES = ("images", "token_ids", "token_mask", "proprio")
OUTPUT_NAME = "actions"
GRIPPER_RANGE = (0.0, 1.0)  # EE_DELTA's last column: 0 open .. 1 closed


@dataclass(frozen=True)
class ModelInputs:
    """One batch, ready for the network.

    Attributes:
        images: ``uint8 [B, num_cameras, H, W, C]``, cameras in the spec's order.
        token_ids: ``int64 [B, max_tokens]``.
        token_mask: ``bool [B, max_tokens]``, True on real tokens.
        proprio: ``float32 [B, proprio_dim]``, normalised.
    """

    images: np.ndarray
    token_ids: np.ndarray
    token_mask: np.ndarray
    proprio: np.ndarray

    @property
    def batch_size(self) -> int:
        """Number of observations in the batch."""
        return int(self.images.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        """Arrays keyed by the graph's input names (:data:`INPUT_NAMES`)."""
        return {name: getattr(self, name) for name in INPUT_NAMES}


class Processor:
    """Pre- and post-processing for one policy spec.

    Args:
        spec: the artifact's parsed ``policy.json``.
    """

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self.tokenizer = spec.make_tokenizer()
        m = spec.model
        self._image_shape = (m.image_height, m.image_width, m.channels)

    def preprocess(self, observations: Sequence[Observation]) -> tuple[ModelInputs, list[tuple[str, ...]]]:
        """Stack observations into one batch.

        Args:
            observations: at least one; extra cameras not named in the spec are ignored.

        Returns:
            The batch, and per observation the warnings its chunk should carry (unknown words,
            an empty or truncated instruction).

        Raises:
            InputError: no observations, a missing camera or wrong image shape (naming the camera
                and the expected shape), or proprio of the wrong length.
        """
        if len(observations) == 0:
            raise InputError("observations", "expected at least one observation")
        images, ids, masks, proprio, warnings = [], [], [], [], []
        for i, obs in enumerate(observations):
            where = "observation" if len(observations) == 1 else f"observations[{i}]"
            if not isinstance(obs, Observation):
                raise InputError(where, f"expected an Observation, got {type(obs).__name__}")
            images.append(self._images(obs, where))
            proprio.append(self._proprio(obs, where))
            token_ids, mask, unknown = self.tokenizer.encode(obs.instruction, self.spec.model.max_tokens)
            ids.append(token_ids)
            masks.append(mask)
            warnings.append(self._instruction_warnings(obs.instruction, unknown))
        batch = ModelInputs(
            images=np.stack(images),
            token_ids=np.stack(ids),
            token_mask=np.stack(masks),
            proprio=self.spec.normalization.proprio.normalize(np.stack(proprio)),
        )
        return batch, warnings

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Network output ``[B, T, action_dim]`` (normalised) -> actions in the spec's units.

        Raises:
            InputError: ``raw`` does not have the shape the spec promises.
        """
        raw = np.asarray(raw)
        expected = (self.spec.chunk_length, self.spec.model.action_dim)
        if raw.ndim != 3 or raw.shape[1:] != expected:
            raise InputError("model output", f"expected shape [B, {expected[0]}, {expected[1]}], got {list(raw.shape)}")
        actions = self.spec.normalization.action.denormalize(raw)
        if self.spec.action_space is ActionSpace.EE_DELTA:
            # The gripper command is only defined on [0, 1]; regression overshoot is not a command.
            actions[..., -1] = np.clip(actions[..., -1], *GRIPPER_RANGE)
        return actions

    def _images(self, obs: Observation, where: str) -> np.ndarray:
        cams = self.spec.cameras.names
        frames = []
        for name in cams:
            if name not in obs.images:
                have = ", ".join(repr(k) for k in obs.images) or "none"
                raise InputError(
                    f"{where}.images[{name!r}]",
                    f"camera {name!r} is missing (the policy needs {list(cams)}, got {have}); "
                    f"expected a uint8 image of shape {self._image_shape}",
                )
            img = obs.images[name]
            if img.shape != self._image_shape:
                raise InputError(
                    f"{where}.images[{name!r}]",
                    f"camera {name!r} image has shape {img.shape}; the policy expects {self._image_shape} (H, W, C) uint8",
                )
            frames.append(img)
        return np.stack(frames)

    def _proprio(self, obs: Observation, where: str) -> np.ndarray:
        dim = self.spec.model.proprio_dim
        if obs.proprio.shape != (dim,):
            raise InputError(f"{where}.proprio", f"expected {dim} values, got {obs.proprio.shape[0]}")
        return obs.proprio

    def _instruction_warnings(self, text: str, unknown: list[str]) -> tuple[str, ...]:
        words = split_words(text)
        max_tokens = self.spec.model.max_tokens
        out = []
        if not words:
            out.append("instruction is empty; the actions are not conditioned on any task")
        elif set(unknown) == set(words):
            out.append(
                f"instruction {text!r} has no word the policy knows (all encoded as <unk>); "
                "the actions are not conditioned on a known task"
            )
        elif unknown:
            out.append(f"instruction words the policy never saw (encoded as <unk>): {', '.join(map(repr, unknown))}")
        if len(words) > max_tokens:
            out.append(f"instruction has {len(words)} tokens; only the first {max_tokens} are used")
        return tuple(out)
