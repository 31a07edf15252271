"""The ``onnx`` technique: a checked, readable graph with a free batch, recorded in the lineage.

Export parity with torch is tested by the backend (``tests/policy/backends/test_onnxruntime_backend.py``)
on the same exported artifact; here, what the technique writes and what it refuses.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from tests.policy.backends.trained import exported_artifact, parity_set, trained_artifact
from vla_kit.errors import ChecksumMismatchError, InputError, RegistryError
from vla_kit.optimize import OptimizeContext, build_chain, get_technique, parse_step
from vla_kit.policy import load_policy, verify_artifact
from vla_kit.policy.artifact import CHECKSUMS_FILE, WEIGHTS_FILE, sha256_file
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE
from vla_kit.policy.processing import INPUT_NAMES, OUTPUT_NAME


@pytest.fixture(scope="module")
def graph() -> onnx.ModelProto:
    return onnx.load(str(exported_artifact() / ONNX_FILE))


def test_export_records_backend_and_lineage_with_the_parent_hash():
    spec = verify_artifact(exported_artifact())
    assert spec.backend == "onnxruntime"
    [step] = spec.lineage
    assert step.technique == "onnx" and step.options == {"opset": 18, "optimize": False, "parity_atol": 1e-4}
    assert step.parent_sha256 == sha256_file(trained_artifact() / CHECKSUMS_FILE)
    assert {p.name for p in exported_artifact().iterdir()} == {"policy.json", ONNX_FILE, CHECKSUMS_FILE}


def test_graph_passes_the_checker_at_opset_17_or_later_with_a_free_batch(graph):
    onnx.checker.check_model(graph, full_check=True)
    assert next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in graph.graph.input] == list(INPUT_NAMES) and [o.name for o in graph.graph.output] == [OUTPUT_NAME]
    for value in (*graph.graph.input, *graph.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param, f"{value.name} has a fixed batch dimension"


def test_nodes_are_named_after_modules_and_carry_no_local_paths(graph):
    names = {n.name for n in graph.graph.node}
    assert {"trunk.layers.0.linear1/MatMul", "trunk.layers.3.self_attn/Softmax", "stem.0/Conv"} <= names
    assert not any(n.metadata_props for n in graph.graph.node)
    assert len(names) == len(graph.graph.node)


def test_offline_optimised_graph_still_matches_torch(tmp_path):
    out = build_chain([parse_step({"onnx": {"optimize": True}}, "test")], trained_artifact(), tmp_path, OptimizeContext())
    policy = load_policy(out)
    inputs, _ = policy.processor.preprocess(parity_set()[:8])
    np.testing.assert_allclose(policy.infer(inputs), load_policy(trained_artifact()).infer(inputs), rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"opset": 13}, r"candidates\[0\].onnx: opset: Input should be greater than or equal to 17"),
        ({"dynamic": True}, r"candidates\[0\].onnx: dynamic: Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(options, message):
    with pytest.raises(InputError, match=message):
        parse_step({"onnx": options}, "candidates[0]")


def test_unknown_technique_lists_the_available_ones():
    message = r"unknown optimization technique 'onnx-fp8'; available: .*bf16.*onnx.*ort-int8-static.*tensorrt-int8"
    with pytest.raises(RegistryError, match=message):
        parse_step("onnx-fp8", "candidates[0]")


def test_tampered_source_is_refused_before_exporting(tmp_path):
    source = shutil.copytree(trained_artifact(), tmp_path / "source")
    data = bytearray((source / WEIGHTS_FILE).read_bytes())
    data[-10] ^= 0xFF
    (source / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        build_chain([parse_step("onnx", "test")], source, tmp_path / "out", OptimizeContext())
    assert not (tmp_path / "out").exists()


def test_exporting_an_onnx_artifact_again_is_refused_by_the_chain(tmp_path):
    with pytest.raises(InputError, match=r"step 1 \(onnx\): starts from a 'onnxruntime' artifact but accepts only \['torch'\]"):
        build_chain([parse_step("onnx", "test")], exported_artifact(), tmp_path, OptimizeContext())


def test_reduced_precision_torch_source_is_refused(tmp_path):
    chain = [parse_step("bf16", "test"), parse_step("onnx", "test")]
    with pytest.raises(InputError, match="holds bfloat16 weights; onnx starts from a float32 torch artifact"):
        build_chain(chain, trained_artifact(), tmp_path, OptimizeContext())
    assert get_technique("onnx").unavailable() is None
