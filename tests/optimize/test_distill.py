"""Distillation: a nano student with the teacher's tokenizer and statistics, trained on the teacher's chunks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vla_kit.errors import InputError
from vla_kit.optimize import TECHNIQUES, build_chain, get_technique, parse_step
from vla_kit.optimize.distill import student_config, teacher_targets
from vla_kit.optimize.prune import training_data
from vla_kit.policy import load_policy, verify_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, sha256_file
from vla_kit.types import Observation


def test_distill_is_registered_and_available():
    assert "distill" in TECHNIQUES.names() and get_technique("distill").unavailable() is None


def test_student_takes_the_preset_architecture_and_the_teachers_data_shapes(parent):
    teacher = verify_artifact(parent).model
    student = student_config(teacher, "nano")
    assert (student.d_model, student.num_layers, student.num_heads, student.stem_channels) == (64, 2, 2, 16)
    same = ("vocab_size", "image_height", "image_width", "num_cameras", "proprio_dim", "action_dim", "chunk_length", "max_tokens", "goal_dim")
    assert all(getattr(student, k) == getattr(teacher, k) for k in same)


def test_teacher_targets_cover_every_frame(parent, dataset, ctx):
    spec = verify_artifact(parent)
    data = training_data(dataset.root, spec, ctx)
    targets = teacher_targets(load_policy(parent).model, data)
    assert targets.shape == data.targets.shape and torch.isfinite(targets).all()


def test_distill_writes_a_smaller_nano_student_with_lineage(parent, tmp_path, ctx, dataset):
    out = build_chain([parse_step({"distill": {"steps": 10, "batch_size": 8, "alpha": 0.7}}, "test")], parent, tmp_path / "chain", ctx)
    teacher, student = load_policy(parent), load_policy(out)
    assert student.spec.preset == "nano" and student.spec.model.d_model == 64
    assert student.num_parameters < teacher.num_parameters / 4
    (step,) = student.spec.lineage
    assert step.technique == "distill" and step.options["alpha"] == 0.7
    assert step.parent_sha256 == sha256_file(parent / CHECKSUMS_FILE)
    assert student.spec.tokenizer == teacher.spec.tokenizer and student.spec.normalization == teacher.spec.normalization
    record = student.spec.provenance["optimize"][-1]
    assert record["train"]["steps"] == 10 and np.isfinite(record["train"]["train_loss"])
    assert set(record["val_action_l1"]) == {"teacher", "student"} and np.isfinite(list(record["val_action_l1"].values())).all()
    obs = Observation({"front": dataset.images()[0]}, dataset.instructions()[0], dataset.states()[0])
    assert student.predict(obs).actions.shape == (teacher.spec.chunk_length, 7)


@pytest.mark.parametrize(
    "options, problem",
    [({"preset": "huge"}, "nano, tiny"), ({"alpha": 1.5}, "alpha"), ({"steps": 0}, "steps"), ({"teacher": "x"}, "teacher")],
)
def test_bad_options_name_the_option(options, problem):
    with pytest.raises(InputError, match=problem):
        parse_step({"distill": options}, "candidates[0]")


def test_distill_without_the_dataset_is_an_input_error(parent, tmp_path, ctx):
    with pytest.raises(InputError, match="needs the training dataset"):
        build_chain([parse_step("distill", "test")], parent, tmp_path / "chain", replace(ctx, dataset_root=None))


def test_distill_without_any_training_step_is_an_input_error(parent, tmp_path, ctx):
    with pytest.raises(InputError, match="needs >= 1 training step"):
        build_chain([parse_step("distill", "test")], parent, tmp_path / "chain", replace(ctx, finetune_steps=0))


def test_alpha_zero_is_behaviour_cloning_of_the_smaller_network(parent, tmp_path, ctx):
    step = parse_step({"distill": {"steps": 2, "batch_size": 8, "alpha": 0.0}}, "test")
    out = build_chain([step], parent, tmp_path / "chain", ctx)
    assert load_policy(out).spec.preset == "nano"
