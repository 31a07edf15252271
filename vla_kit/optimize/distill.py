"""Distillation: train a smaller student on the teacher's predicted action chunks.

The teacher (the parent artifact, run in torch) predicts a normalised chunk for every frame of the
training dataset once; the student, built fresh from a size preset (``nano`` by default), is then
behaviour-cloned on targets that blend the two sources per step::

    target = alpha * teacher_chunk + (1 - alpha) * demonstration_chunk

Past an episode's end the demonstration has no action (its mask is False), but the teacher's
prediction is still a target, so with ``alpha > 0`` every step of every chunk is trained on. The
blend is of targets, not of losses (the trainer's L1 takes one target); ``alpha=0`` is plain
behaviour cloning of the smaller network. The teacher sees each frame as recorded while the
student trains on augmented copies (shift, brightness, ``<unk>`` words), as behaviour cloning
pairs augmented frames with the recorded action: the target is what the clean scene calls for.

The student keeps the teacher's tokenizer, normalisation statistics, cameras and action space:
only ``model`` and ``preset`` differ in its spec, so it is a drop-in replacement. Its data-dependent
shapes (image size, cameras, vocabulary, proprio and action widths, chunk length) come from the
teacher's config; its architecture (patch size, stem, width, depth, heads) from the preset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, field_validator

from vla_kit.errors import InputError
from vla_kit.optimize.prune import (  # the fine-tuning plumbing pruning and distillation share
    finetune,
    load_torch_model,
    require_dataset,
    torch_threads,
    training_data,
    training_unavailable,
    val_action_l1,
    write_torch_artifact,
)
from vla_kit.optimize.techniques import OptimizeContext, Step, Technique, TechniqueOptions, register_technique
from vla_kit.policy.config import ModelConfig, model_config, preset_names
from vla_kit.policy.model import VLAModel, build_model, count_parameters
from vla_kit.policy.spec import PolicySpec

__all__ = ["Distill", "student_config", "teacher_targets"]

# ModelConfig fields a preset decides; every other field describes the data and is kept.
_ARCHITECTURE = frozenset({"patch_size", "stem_channels", "d_model", "num_layers", "num_heads", "mlp_ratio", "feedforward_dims"})
_TEACHER_BATCH = 256  # frames per teacher forward pass


def student_config(teacher: ModelConfig, preset: str) -> ModelConfig:
    """The ``preset`` architecture with ``teacher``'s data-dependent shapes and constants.

    Raises:
        RegistryError: unknown preset.
        InputError: the preset does not fit the data (e.g. its patch size does not divide the image).
    """
    return model_config(preset, **{k: v for k, v in teacher.model_dump().items() if k not in _ARCHITECTURE})


@torch.inference_mode()
def teacher_targets(teacher: VLAModel, data) -> torch.Tensor:
    """The teacher's normalised chunk ``[N, T, D]`` for every frame of ``data`` (TrainingTensors), un-augmented."""
    teacher.eval()
    n = len(data.images)
    chunks = [teacher(*data.model_inputs(torch.arange(i, min(i + _TEACHER_BATCH, n)))) for i in range(0, n, _TEACHER_BATCH)]
    return torch.cat(chunks).to(torch.float32)


@register_technique
class Distill(Technique):
    """Train a student of a smaller preset on the teacher's predicted chunks (blended with the demonstrations)."""

    name = "distill"
    summary = "train a smaller student (preset nano by default) on the teacher's predicted action chunks"
    accepts = ("torch",)

    class Options(TechniqueOptions):
        preset: str = "nano"  # the student's size preset
        steps: int | None = Field(None, ge=1)  # training steps; None = OptimizeContext.finetune_steps
        lr: float = Field(1e-3, gt=0, allow_inf_nan=False)  # peak AdamW learning rate (the student starts from scratch)
        batch_size: int = Field(64, ge=1)  # samples per step
        alpha: float = Field(0.5, ge=0, le=1)  # weight of the teacher's chunk in each target; 1 - alpha the demonstration's

        @field_validator("preset")
        @classmethod
        def _known_preset(cls, v: str) -> str:
            if v not in preset_names():
                raise ValueError(f"unknown preset {v!r}; expected one of {', '.join(preset_names())}")
            return v

    def unavailable(self) -> str | None:
        return training_unavailable()

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, self.Options)
        steps = options.steps if options.steps is not None else int(ctx.finetune_steps)
        root = require_dataset(ctx, self.name, "distillation runs the teacher over the training frames and trains the student on them")
        config = student_config(spec.model, options.preset)  # before any heavy work: a misfit fails fast
        if steps < 1:
            raise InputError(
                f"{self.name}: steps", f"a student starts from scratch and needs >= 1 training step, got {steps} (OptimizeContext.finetune_steps)"
            )
        with torch_threads(ctx.threads):
            data = demonstrations = training_data(root, spec, ctx)
            teacher = load_torch_model(source)
            if options.alpha > 0:  # alpha = 0 is plain behaviour cloning of the student
                taught = teacher_targets(teacher, data)
                mixed = options.alpha * taught + (1 - options.alpha) * data.targets
                blended = torch.where(data.valid.unsqueeze(-1), mixed, taught)
                data = dataclasses.replace(data, targets=blended, valid=torch.ones_like(data.valid))
            student = build_model(config, seed=ctx.seed)
            before, after = count_parameters(spec.model), count_parameters(config)
            ctx.log(f"{self.name}: teacher {before:,} parameters -> {options.preset} student {after:,}")
            student_spec = spec.model_copy(update={"model": config, "preset": options.preset})
            record: dict[str, Any] = {
                "preset": options.preset, "parameters_before": before, "parameters_after": after,
                "train": finetune(
                    student, student_spec, data, ctx, technique=self.name, steps=steps, lr=options.lr, batch_size=options.batch_size
                ),
                "val_action_l1": {"teacher": val_action_l1(teacher, demonstrations), "student": val_action_l1(student, demonstrations)},
            }
            write_torch_artifact(source, spec, target, Step(self.name, options), student, record, model=config, preset=options.preset)
