"""Precision techniques: int8/bf16 artifacts that load from their spec and stay close to float.

All start from the briefly trained tiny policy (``tests/policy/backends/trained.py``): on a random
network int8 parity would be meaningless. Errors are relative to the spread of the float outputs
over 32 held-out observations (``relative_error``); measured on this model: ORT dynamic
0.03-0.05, ORT static minmax / percentile 0.05-0.065, OpenVINO/NNCF 0.02-0.04, torch int8
~0.006, bf16 ~0.02. The bound, 0.15, leaves room for other BLAS builds and CPUs without hiding a
broken graph (a quantised attention mask gives > 1). Centred cosine stays above 0.99.

Entropy calibration is not held to the bound: it clips the tails of regression inputs (proprio,
keypoints), where this policy's signal is; measured 0.06-0.27 at 256 bins, 1.2-1.4 at 2048, so
it is tested for doing what it says (other ranges than min-max, a graph that runs).
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.policy.backends.trained import calibration_set, centred_cosine, exported_artifact, parity_set, relative_error, trained_artifact
from vla_kit import deps
from vla_kit.errors import InputError
from vla_kit.optimize import OptimizeContext, build_chain, get_technique, parse_step
from vla_kit.optimize.export import ort_session
from vla_kit.optimize.quantize import quantized_ops
from vla_kit.policy import load_policy, verify_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, sha256_file
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE
from vla_kit.policy.processing import OUTPUT_NAME

INT8_BOUND = 0.15
COSINE_FLOOR = 0.99


@pytest.fixture(scope="module")
def reference():
    policy = load_policy(trained_artifact())
    inputs, _ = policy.processor.preprocess(parity_set())
    return inputs, policy.infer(inputs)


@pytest.fixture(scope="module")
def ctx() -> OptimizeContext:
    return OptimizeContext(calibration=calibration_set(), seed=0, threads=1)


@pytest.fixture(scope="module")
def quantise(tmp_path_factory, ctx):
    work = tmp_path_factory.mktemp("quantised")
    made = {}

    def run(step, base=None):
        key = repr(step)
        if key not in made:
            made[key] = build_chain([parse_step(step, "test")], base or exported_artifact(), work / str(len(made)), ctx)
        return made[key]

    return run


def assert_close_to_float(path, reference, backend: str):
    policy = load_policy(path)
    assert policy.name == backend  # the backend comes from the written spec
    inputs, expected = reference
    out = policy.infer(inputs)
    assert relative_error(out, expected) < INT8_BOUND
    assert centred_cosine(out, expected) > COSINE_FLOOR
    return policy


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_ort_static_int8_stays_close_to_float(quantise, reference, method):
    path = quantise({"ort-int8-static": {"method": method}})
    assert {"QuantizeLinear", "DequantizeLinear"} <= quantized_ops(path / ONNX_FILE)
    assert_close_to_float(path, reference, "onnxruntime")


def test_entropy_calibration_chooses_other_ranges_than_minmax_and_runs(quantise, reference):
    def scales(path):
        graph = onnx.load(str(path / ONNX_FILE)).graph
        wanted = {n.input[1] for n in graph.node if n.op_type == "QuantizeLinear"}
        return {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer if i.name in wanted}

    minmax = scales(quantise({"ort-int8-static": {"method": "minmax"}}))
    entropy = scales(quantise({"ort-int8-static": {"method": "entropy"}}))
    assert minmax.keys() == entropy.keys()
    assert any(entropy[k] < minmax[k] * 0.99 for k in minmax)  # it clipped outliers somewhere: not min-max renamed
    inputs, expected = reference
    out = load_policy(quantise({"ort-int8-static": {"method": "entropy"}})).infer(inputs)
    assert np.isfinite(out).all() and relative_error(out, expected) < 1.0


def test_ort_dynamic_int8_stays_close_to_float(quantise, reference):
    path = quantise("ort-int8-dynamic")
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= quantized_ops(path / ONNX_FILE)
    assert_close_to_float(path, reference, "onnxruntime")


def test_lineage_chains_back_to_the_trained_policy(quantise):
    spec = verify_artifact(quantise("ort-int8-dynamic"))
    assert [s.technique for s in spec.lineage] == ["onnx", "ort-int8-dynamic"]
    assert spec.lineage[0].parent_sha256 == sha256_file(trained_artifact() / CHECKSUMS_FILE)
    assert spec.lineage[1].parent_sha256 == sha256_file(exported_artifact() / CHECKSUMS_FILE)
    assert spec.lineage[1].options["op_types"] == ["MatMul"]


def test_excluded_node_stays_float(quantise):
    path = quantise({"ort-int8-static": {"exclude_nodes": ["action_head/MatMul"]}})
    graph = onnx.load(str(path / ONNX_FILE)).graph
    producers = {o: n.op_type for n in graph.node for o in n.output}
    head = next(n for n in graph.node if n.name == "action_head/MatMul")
    assert all(producers.get(i) != "DequantizeLinear" for i in head.input)


def test_unknown_excluded_node_is_rejected_with_examples(ctx, tmp_path):
    step = parse_step({"ort-int8-static": {"exclude_nodes": ["head"]}}, "test")
    message = r"ort-int8-static.exclude_nodes: \['head'\] are not nodes of the graph; quantisable nodes look like \[.*/"
    with pytest.raises(InputError, match=message):
        build_chain([step], exported_artifact(), tmp_path, ctx)


def test_static_quantisation_without_calibration_data_is_refused(tmp_path):
    with pytest.raises(InputError, match="calibration: static quantisation needs calibration observations"):
        build_chain([parse_step("ort-int8-static", "test")], exported_artifact(), tmp_path, OptimizeContext())


def test_quantising_a_quantised_graph_is_refused(quantise, ctx, tmp_path):
    with pytest.raises(InputError, match="is already quantised"):
        build_chain([parse_step("ort-int8-static", "test")], quantise("ort-int8-dynamic"), tmp_path, ctx)


def test_onnx_techniques_refuse_a_torch_artifact(ctx, tmp_path):
    with pytest.raises(InputError, match=r"accepts only \['onnxruntime'\]"):
        build_chain([parse_step("ort-int8-dynamic", "test")], trained_artifact(), tmp_path, ctx)


@pytest.mark.parametrize(
    "step, message",
    [
        ({"ort-int8-static": {"method": "kl"}}, r"method: Input should be 'minmax', 'entropy' or 'percentile'"),
        ({"ort-int8-static": {"percentile": 50}}, r"percentile: Input should be greater than 90"),
        ({"ort-int8-dynamic": {"calibration": 3}}, r"calibration: Extra inputs are not permitted"),
        ({"torch-int8-dynamic": {"min_features": 0}}, r"min_features: Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(step, message):
    with pytest.raises(InputError, match=message):
        parse_step(step, "candidates[1]")


def test_torch_int8_and_bf16_write_torch_artifacts_close_to_float(quantise, reference):
    int8 = assert_close_to_float(quantise({"torch-int8-dynamic": {"exclude": ["film"]}}, trained_artifact()), reference, "torch")
    assert type(int8.model.trunk.layers[0].linear1.weight).__name__ == "Int8Tensor"
    assert type(int8.model.film.weight).__name__ == "Parameter"
    bf16 = assert_close_to_float(quantise("bf16", trained_artifact()), reference, "torch")
    assert bf16.dtype == "bfloat16"


def test_torch_int8_unknown_exclusion_lists_linear_layers(tmp_path):
    with pytest.raises(InputError, match=r"exclude: \['head'\] are not Linear layers of the model; Linear layers: \['action_head'"):
        build_chain([parse_step({"torch-int8-dynamic": {"exclude": ["head"]}}, "test")], trained_artifact(), tmp_path, OptimizeContext())


@pytest.mark.skipif(get_technique("openvino-int8").unavailable() is not None, reason=str(get_technique("openvino-int8").unavailable()))
def test_openvino_int8_writes_ir_close_to_float(quantise, reference):
    path = quantise({"openvino-int8": {"subset_size": 64}})
    assert (path / "model.xml").is_file() and not (path / ONNX_FILE).exists()
    assert_close_to_float(path, reference, "openvino")


def test_missing_package_makes_the_technique_report_why_and_what_to_install(monkeypatch):
    # Whether or not openvino itself is installed here, a missing NNCF must be named with its extra.
    ghost = deps.OptionalDependency("vla_kit_no_such_nncf", "openvino", "OpenVINO int8 quantisation (NNCF)")
    monkeypatch.setitem(deps.OPTIONAL, "nncf", ghost)
    assert re.fullmatch(r"the '(openvino|nncf)' package is not installed: pip install 'vla_kit\[openvino\]'", get_technique("openvino-int8").unavailable())
    if deps.is_available("openvino"):
        assert "'nncf'" in get_technique("openvino-int8").unavailable()
    monkeypatch.setitem(deps.OPTIONAL, "tensorrt", deps.OptionalDependency("vla_kit_no_such_tensorrt", "tensorrt", "TensorRT engines"))
    for name in ("tensorrt-fp16", "tensorrt-int8"):
        assert get_technique(name).unavailable() == "the 'tensorrt' package is not installed: pip install 'vla_kit[tensorrt]'"


def test_tensorrt_dialect_qdq_is_symmetric_with_float_biases_and_runs_on_cpu(tmp_path, ctx, reference):
    # What tensorrt-int8 hands TensorRT's parser, checked where no GPU is needed.
    from vla_kit.optimize.quantize import ObservationReader, OrtInt8Static, prepared_float_onnx, quantize_qdq

    spec = verify_artifact(exported_artifact())
    options = OrtInt8Static.Options()
    with prepared_float_onnx(exported_artifact(), "tensorrt-int8", options) as prepared:
        quantize_qdq(prepared, tmp_path / ONNX_FILE, ObservationReader(spec, ctx.calibration), options, for_tensorrt=True)
    graph = onnx.load(str(tmp_path / ONNX_FILE)).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    zero_points = [initializers[n.input[2]] for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all((z == 0).all() and z.dtype.name == "int8" for z in zero_points)
    assert not any(a.dtype.name == "int32" for a in initializers.values())  # no int32 (quantised) biases
    session = ort_session(tmp_path / ONNX_FILE)
    inputs, expected = reference
    out = session.run([OUTPUT_NAME], inputs.as_dict())[0]
    assert relative_error(out, expected) < INT8_BOUND
