"""The reference VLA's architecture config and its size presets.

A :class:`ModelConfig` fully determines the network's shapes: together with a seed it rebuilds the
same module, and it is stored verbatim under ``"model"`` in ``policy.json``. Four presets cover
the uses the project has:

=========  ===========  ==============================================================
preset     parameters   what it is for
=========  ===========  ==============================================================
``nano``   ~0.16 M      the default student of ``distill`` (d_model 64, 2 layers, 16 stem channels)
``tiny``   ~0.9 M       CI and the demo: trains on two CPU cores in minutes
``small``  ~11 M        a stronger sim policy on a laptop GPU
``base``   ~86 M        profiling on real edge hardware (ViT-B sized trunk)
=========  ===========  ==============================================================

The counts above are for the sim defaults (one 96x96 camera, a 64-word vocabulary); image size,
camera count and vocabulary only change the embedding tables, so the trunk dominates.

``feedforward_dims`` gives each transformer layer its own feed-forward width. Only structured
pruning (:mod:`vla_kit.optimize.prune`) sets it, because it keeps a different number of hidden
units in each layer; ``None`` (what every preset gives) means ``feedforward_dim`` in every layer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vla_kit.errors import InputError, RegistryError

__all__ = ["ModelConfig", "PRESETS", "preset_names", "model_config"]


class ModelConfig(BaseModel):
    """Every shape and constant of the reference VLA. Frozen; unknown keys are errors.

    Image normalisation lives here, not with the data statistics, because the network applies it
    itself (see :mod:`vla_kit.policy.model`): whatever runs the graph gets it for free.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_height: int = Field(96, ge=1)  # px, every camera
    image_width: int = Field(96, ge=1)  # px, every camera
    num_cameras: int = Field(1, ge=1)  # images per observation, in the artifact's camera order
    channels: int = Field(3, ge=1)  # colour channels per image (RGB)
    patch_size: int = Field(12, ge=1)  # px; side of the square patches (conv kernel = stride)
    # Conv stem before patchifying (0 = patchify raw pixels). With a stem, the instruction modulates
    # its features (FiLM) and a spatial-softmax keypoint token per camera says *where* they fire.
    stem_channels: int = Field(32, ge=0)
    # Per-channel mean and std applied to pixels scaled to [0, 1].
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.25, 0.25, 0.25)
    d_model: int = Field(128, ge=1)  # token width
    num_layers: int = Field(4, ge=1)  # transformer encoder layers
    num_heads: int = Field(4, ge=1)  # attention heads; must divide d_model
    mlp_ratio: float = Field(4.0, gt=0)  # feed-forward width / d_model
    # Hidden units of each layer's feed-forward block, one per layer; None = feedforward_dim in all.
    feedforward_dims: tuple[int, ...] | None = None
    vocab_size: int = Field(64, ge=2)  # words, including <pad> (0) and <unk> (1)
    max_tokens: int = Field(16, ge=1)  # instruction tokens the model reads; longer are truncated
    proprio_dim: int = Field(14, ge=1)  # length of the proprioception vector
    chunk_length: int = Field(8, ge=1)  # T: actions predicted per call
    action_dim: int = Field(7, ge=1)  # width of one action
    dropout: float = Field(0.0, ge=0, lt=1)  # in attention and feed-forward, training only
    # Auxiliary head (training only, needs a conv stem): predicts this many numbers, e.g. the named
    # cube's position, from the keypoints. Its loss teaches the vision *where* to look; inference
    # and exported graphs never compute it. 0 = no head.
    goal_dim: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _shapes_fit(self) -> "ModelConfig":
        for side, name in ((self.image_height, "image_height"), (self.image_width, "image_width")):
            if side % self.patch_size:
                raise ValueError(f"{name}={side} is not a multiple of patch_size={self.patch_size}")
        if self.stem_channels and self.patch_size % 2:
            raise ValueError(f"patch_size={self.patch_size} must be even with a conv stem (it halves the resolution)")
        if self.goal_dim and not self.stem_channels:
            raise ValueError(f"goal_dim={self.goal_dim} needs a conv stem (stem_channels > 0): the head reads its keypoints")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not a multiple of num_heads={self.num_heads}")
        dims = self.feedforward_dims
        if dims is not None and (len(dims) != self.num_layers or min(dims, default=1) < 1):
            raise ValueError(
                f"feedforward_dims={list(dims)} must hold one positive width per layer (num_layers={self.num_layers})"
            )
        for stat, name in ((self.image_mean, "image_mean"), (self.image_std, "image_std")):
            if len(stat) != self.channels:
                raise ValueError(f"{name} has {len(stat)} values; expected one per channel ({self.channels})")
        if min(self.image_std) <= 0:
            raise ValueError(f"image_std must be > 0, got {self.image_std}")
        return self

    @property
    def patches_per_image(self) -> int:
        """Vision tokens contributed by one camera."""
        return (self.image_height // self.patch_size) * (self.image_width // self.patch_size)

    @property
    def sequence_length(self) -> int:
        """Tokens the trunk attends over: patches of every camera, words, proprio, action queries."""
        return self.num_cameras * self.vision_tokens_per_image + self.max_tokens + 1 + self.chunk_length

    @property
    def vision_tokens_per_image(self) -> int:
        """Patches plus, with a conv stem, one keypoint token."""
        return self.patches_per_image + (1 if self.stem_channels else 0)

    @property
    def feedforward_dim(self) -> int:
        """Feed-forward hidden width given by ``mlp_ratio`` (every layer's unless ``feedforward_dims``)."""
        return int(round(self.d_model * self.mlp_ratio))

    @property
    def layer_feedforward_dims(self) -> tuple[int, ...]:
        """Feed-forward hidden width of each layer, first layer first."""
        if self.feedforward_dims is not None:
            return self.feedforward_dims
        return (self.feedforward_dim,) * self.num_layers


# Architecture-only presets: data-dependent sizes (vocabulary, cameras, proprio, image size) are
# passed alongside, so one preset serves any dataset.
PRESETS: dict[str, dict[str, Any]] = {
    "nano": {"patch_size": 12, "d_model": 64, "num_layers": 2, "num_heads": 2, "mlp_ratio": 4.0, "stem_channels": 16},
    "tiny": {"patch_size": 12, "d_model": 128, "num_layers": 4, "num_heads": 4, "mlp_ratio": 4.0},
    "small": {"patch_size": 8, "d_model": 384, "num_layers": 6, "num_heads": 6, "mlp_ratio": 4.0},
    "base": {"patch_size": 8, "d_model": 768, "num_layers": 12, "num_heads": 12, "mlp_ratio": 4.0},
}


def preset_names() -> list[str]:
    """The size presets, smallest first."""
    return list(PRESETS)


def model_config(preset: str, **overrides: Any) -> ModelConfig:
    """A preset's :class:`ModelConfig` with some fields replaced.

    Args:
        preset: one of :func:`preset_names`.
        **overrides: any :class:`ModelConfig` field, typically ``vocab_size`` (from the
            tokenizer), ``image_height``/``image_width``, ``num_cameras``, ``chunk_length``.

    Returns:
        The validated config.

    Raises:
        RegistryError: ``preset`` is not a known preset.
        InputError: an override is unknown or makes the shapes inconsistent.
    """
    if preset not in PRESETS:
        raise RegistryError("model preset", preset, preset_names())
    try:
        return ModelConfig(**{**PRESETS[preset], **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"model_config({preset!r})", problems) from None
