"""The torch backend on reduced-precision weights: bf16 under autocast, int8 reloaded exactly.

Artifacts come from the ``bf16`` and ``torch-int8-dynamic`` techniques applied to the briefly
trained tiny policy. Bounds are relative to the spread of the float outputs over the parity set
(see ``trained.relative_error``); measured: bf16 ~0.02, int8 ~0.007.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests.policy.backends.trained import parity_set, relative_error, trained_artifact
from vla_kit.errors import ArtifactError, InputError
from vla_kit.optimize import OptimizeContext, build_chain, parse_step
from vla_kit.policy import load_policy, write_artifact
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.backends.torch_precision import PRECISION_KEY, Precision

BF16_BOUND = 0.05
INT8_BOUND = 0.05


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    work = tmp_path_factory.mktemp("precision")
    ctx = OptimizeContext()
    return {name: build_chain([parse_step(name, "test")], trained_artifact(), work / name, ctx) for name in ("bf16", "torch-int8-dynamic")}


@pytest.fixture(scope="module")
def reference():
    policy = load_policy(trained_artifact())
    inputs, _ = policy.processor.preprocess(parity_set())
    return inputs, policy.infer(inputs)


def test_bf16_artifact_stores_bf16_and_runs_under_bf16_autocast(reduced, reference):
    with safe_open(str(reduced["bf16"] / WEIGHTS_FILE), framework="pt") as f:
        assert f.metadata()[PRECISION_KEY] == "bfloat16"
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    policy = load_policy(reduced["bf16"])
    assert policy.dtype == "bfloat16" and policy.precision is Precision.BFLOAT16
    inputs, expected = reference
    assert relative_error(policy.infer(inputs), expected) < BF16_BOUND


def test_float32_artifact_runs_in_bf16_when_asked(reference):
    inputs, expected = reference
    policy = load_policy(trained_artifact(), dtype="bfloat16")
    out = policy.infer(inputs)
    assert 0 < relative_error(out, expected) < BF16_BOUND  # not zero: it really ran in bf16


def test_int8_artifact_stores_int8_weights_with_one_scale_per_row(reduced):
    with safe_open(str(reduced["torch-int8-dynamic"] / WEIGHTS_FILE), framework="pt") as f:
        weight, scale = f.get_tensor("trunk.layers.0.linear1.weight"), f.get_tensor("trunk.layers.0.linear1.weight_scale")
        assert f.get_tensor("action_head.weight").dtype == torch.float32  # 7 outputs: below min_features
    assert weight.dtype == torch.int8 and scale.shape == (weight.shape[0], 1)


def test_int8_reload_is_exactly_the_model_quantised_in_memory(reduced, reference):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    loaded = load_policy(reduced["torch-int8-dynamic"])
    names = {n for n, m in loaded.model.named_modules() if isinstance(m, torch.nn.Linear) and type(m.weight).__name__ == "Int8Tensor"}
    in_memory = load_policy(trained_artifact())
    quantize_(in_memory.model, Int8DynamicActivationInt8WeightConfig(set_inductor_config=False), filter_fn=lambda m, fqn: fqn in names)
    inputs, expected = reference
    out = loaded.infer(inputs)
    np.testing.assert_array_equal(out, in_memory.infer(inputs))
    assert relative_error(out, expected) < INT8_BOUND


def test_int8_weights_refuse_bf16_compute(reduced):
    with pytest.raises(InputError, match="int8-dynamic weights quantise float32 activations"):
        load_policy(reduced["torch-int8-dynamic"], dtype="bfloat16")


def test_unknown_precision_in_the_weights_file_is_an_artifact_error(tmp_path, spec, model):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = write_artifact(tmp_path / "p", spec, lambda d: save_file(tensors, str(d / WEIGHTS_FILE), metadata={PRECISION_KEY: "fp8"}))
    with pytest.raises(ArtifactError, match=r"vla_kit.precision='fp8' is not one of \['float32', 'bfloat16', 'int8-dynamic'\]"):
        load_policy(path)


def test_int8_tensors_without_the_int8_precision_are_an_artifact_error(tmp_path, spec, model):
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["action_head.weight"] = tensors["action_head.weight"].to(torch.int8)
    path = write_artifact(tmp_path / "p", spec, lambda d: save_file(tensors, str(d / WEIGHTS_FILE)))
    with pytest.raises(ArtifactError, match="integer tensors in a 'float32' weights file"):
        load_policy(path)
