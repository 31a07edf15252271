"""``policy.json``: everything needed to run a policy's weights, besides the weights.

An example (vocabulary and statistics shortened)::

    {
      "format_version": 1,
      "vla_kit_version": "0.1.0",
      "preset": "tiny",
      "model": {"image_height": 96, "image_width": 96, "num_cameras": 1, "channels": 3,
                "patch_size": 12, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25],
                "d_model": 128, "num_layers": 4, "num_heads": 4, "mlp_ratio": 4.0,
                "vocab_size": 17, "max_tokens": 16, "proprio_dim": 14, "chunk_length": 8,
                "action_dim": 7, "dropout": 0.0},
      "tokenizer": {"kind": "word", "lowercase": true, "vocab": ["<pad>", "<unk>", "blue", "cube", ...]},
      "normalization": {
        "proprio": {"mean": [0.5, 0.0, ...], "std": [0.1, 0.12, ...], "std_floor": 0.001, "count": 12000},
        "action": {"mean": [0.0, ...], "std": [0.004, ...], "std_floor": 0.001, "count": 12000}
      },
      "action_space": "ee_delta",
      "cameras": {"names": ["front"], "height": 96, "width": 96},
      "chunk_length": 8,
      "provenance": {"dataset_sha256": "…", "train": {"steps": 3000, "lr": 0.0003}, "git_revision": "…"}
    }

``cameras`` and ``chunk_length`` repeat facts the model config also holds, so that consumers that
never build the network (the control loop, the deploy agent) can read them plainly; the two are
checked to agree when the spec is made or loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import vla_kit
from vla_kit.errors import ArtifactError, InputError
from vla_kit.policy.config import ModelConfig
from vla_kit.policy.normalization import NormStats
from vla_kit.policy.tokenizer import Tokenizer
from vla_kit.types import ACTION_DIMS, ActionSpace

__all__ = ["FORMAT_VERSION", "CameraSpec", "LineageStep", "Normalization", "PolicySpec", "make_spec", "parse_spec", "check_format_version"]

FORMAT_VERSION = 1  # bump when a reader of the previous version would misread the new layout


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSpec(_Frozen):
    """The cameras a policy reads, in the order the model stacks them."""

    names: tuple[str, ...] = Field(min_length=1)  # keys of Observation.images
    height: int = Field(ge=1)  # px
    width: int = Field(ge=1)  # px

    @field_validator("names")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v) or not all(v):
            raise ValueError(f"camera names must be distinct and non-empty, got {list(v)}")
        return v


class Normalization(_Frozen):
    """Data statistics applied outside the network (image normalisation is in the model config)."""

    proprio: NormStats
    action: NormStats


class LineageStep(_Frozen):
    """One optimisation step that produced this artifact from its parent (see ``vla_kit.optimize``)."""

    technique: str  # registry name, e.g. "ort-int8-static"
    options: dict[str, Any] = Field(default_factory=dict)  # the technique's resolved options
    parent_sha256: str  # sha256 of the parent artifact's checksums.json: names every parent byte


class PolicySpec(_Frozen):
    """The parsed ``policy.json``. Frozen; every cross-field fact is checked on construction."""

    format_version: int = FORMAT_VERSION  # layout of this file
    vla_kit_version: str = vla_kit.__version__  # the package version that wrote it
    preset: str | None = None  # size preset the architecture came from; None when hand-made
    model: ModelConfig
    tokenizer: dict[str, Any]  # Tokenizer.to_dict()
    normalization: Normalization
    action_space: ActionSpace = ActionSpace.EE_DELTA
    cameras: CameraSpec
    chunk_length: int = Field(ge=1)  # T, actions per prediction
    provenance: dict[str, Any] = Field(default_factory=dict)  # free-form, JSON-ready
    backend: str = "torch"  # the backend load_policy uses unless told otherwise
    lineage: tuple[LineageStep, ...] = ()  # optimisation steps from the trained parent, oldest first

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_loads(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            Tokenizer.from_dict(v)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("provenance")
    @classmethod
    def _provenance_is_json(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must hold only JSON values (str, number, bool, null, list, dict): {exc}") from None
        return v

    @model_validator(mode="after")
    def _agree(self) -> "PolicySpec":
        m = self.model
        vocab = len(self.tokenizer["vocab"])
        checks = [
            (m.vocab_size == vocab, f"model.vocab_size={m.vocab_size} but the tokenizer has {vocab} words"),
            (m.chunk_length == self.chunk_length, f"chunk_length={self.chunk_length} but model.chunk_length={m.chunk_length}"),
            (m.num_cameras == len(self.cameras.names), f"{len(self.cameras.names)} camera names but model.num_cameras={m.num_cameras}"),
            (
                (m.image_height, m.image_width) == (self.cameras.height, self.cameras.width),
                f"cameras are {self.cameras.height}x{self.cameras.width} but the model takes {m.image_height}x{m.image_width}",
            ),
            (self.normalization.proprio.dim == m.proprio_dim, f"proprio stats have {self.normalization.proprio.dim} dims, model.proprio_dim={m.proprio_dim}"),
            (self.normalization.action.dim == m.action_dim, f"action stats have {self.normalization.action.dim} dims, model.action_dim={m.action_dim}"),
        ]
        width = ACTION_DIMS[self.action_space]
        checks.append((width in (None, m.action_dim), f"{self.action_space.value} actions are {width} wide, model.action_dim={m.action_dim}"))
        problems = [msg for ok, msg in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def make_tokenizer(self) -> Tokenizer:
        """The tokenizer this spec describes."""
        return Tokenizer.from_dict(self.tokenizer)

    def to_json(self) -> str:
        """The ``policy.json`` text: indented, keys in schema order, ending in a newline."""
        return json.dumps(self.model_dump(mode="json"), indent=2, allow_nan=False) + "\n"


def make_spec(
    model: ModelConfig,
    tokenizer: Tokenizer,
    *,
    proprio_stats: NormStats,
    action_stats: NormStats,
    cameras: Sequence[str] = ("front",),
    preset: str | None = None,
    action_space: ActionSpace = ActionSpace.EE_DELTA,
    provenance: Mapping[str, Any] | None = None,
) -> PolicySpec:
    """Assemble a :class:`PolicySpec`, taking image size and chunk length from ``model``.

    Args:
        model: the architecture (its ``vocab_size`` must equal the tokenizer's).
        tokenizer: the instruction tokenizer.
        proprio_stats: from :func:`~vla_kit.policy.normalization.compute_norm_stats` on proprio.
        action_stats: the same on actions.
        cameras: ``Observation.images`` keys the policy reads, in model order.
        preset: the size preset ``model`` came from, if any.
        action_space: what the de-normalised actions mean.
        provenance: free-form JSON-ready record (dataset hash, training params, code revision).

    Raises:
        InputError: the pieces do not fit together; the message lists every mismatch.
    """
    try:
        return PolicySpec(
            preset=preset,
            model=model,
            tokenizer=tokenizer.to_dict(),
            normalization=Normalization(proprio=proprio_stats, action=action_stats),
            action_space=action_space,
            cameras=CameraSpec(names=tuple(cameras), height=model.image_height, width=model.image_width),
            chunk_length=model.chunk_length,
            provenance=dict(provenance or {}),
        )
    except ValidationError as exc:
        raise InputError("policy spec", _describe(exc)) from None


def parse_spec(data: Any, source: str | Path) -> PolicySpec:
    """Validate the decoded contents of a ``policy.json``.

    Args:
        data: the decoded JSON.
        source: the file it came from, for error messages.

    Raises:
        ArtifactError: not an object, an unknown ``format_version``, or a schema violation (the
            message names each key path and what was wrong).
    """
    check_format_version(data, source)
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise ArtifactError(source, _describe(exc)) from None


def check_format_version(data: Any, source: str | Path) -> None:
    """Fail early, and plainly, on a ``policy.json`` this version of vla_kit cannot read.

    Raises:
        ArtifactError: ``data`` is not an object or its ``format_version`` is not
            :data:`FORMAT_VERSION`.
    """
    if not isinstance(data, dict):
        raise ArtifactError(source, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # noqa: E721 (True == 1 must not pass)
        raise ArtifactError(
            source,
            f"format_version {version!r} is not supported; this vla_kit ({vla_kit.__version__}) reads version "
            f"{FORMAT_VERSION}",
        )


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors())
