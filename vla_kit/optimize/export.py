"""``onnx``: export a torch artifact to ONNX, checked before it is written.

The exporter is ``torch.onnx.export(..., dynamo=True)``, the ``torch.export``-based one (it needs
``onnxscript``, a dependency of vla_kit). It is the default since torch 2.9; the TorchScript
exporter still runs in 2.13 but warns that it will be removed, and an artifact format should not
start on a path with an announced end. The cost is export time (seconds, not sub-second).

The graph takes :data:`~vla_kit.policy.processing.INPUT_NAMES` and returns
:data:`~vla_kit.policy.processing.OUTPUT_NAME`, with a free batch dimension (traced on a batch of
two, since a batch of one would be specialised). Before the artifact is written:

1. ``onnx.checker.check_model(full_check=True)``;
2. a parity run: ONNX Runtime (CPU, fp32) against torch eager on up to 8 calibration observations
   (or seeded synthetic inputs when the context has none); the export fails if any output differs
   by more than ``parity_atol`` (normalised action units).

Node names are rewritten from the exporter's module scopes (``trunk.layers.0.linear1/MatMul``
instead of ``node_linear_6``), so ``exclude_nodes`` of the quantisation techniques can name layers
a reader recognises; the exporter's per-node metadata (stack traces with this machine's paths) is
dropped so the file depends only on the weights and the code.

``optimize=True`` stores ONNX Runtime's offline-optimised graph instead (``ORT_ENABLE_EXTENDED``:
fusions that are portable across CPUs; layout transforms specific to this CPU are left to load
time, where the backend applies ``ORT_ENABLE_ALL``). It may contain ``com.microsoft`` operators,
so only ONNX Runtime runs it.
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from pydantic import Field

from vla_kit.errors import ArtifactError, InputError
from vla_kit.optimize.techniques import OptimizeContext, Technique, TechniqueOptions, register_technique, write_derived
from vla_kit.policy.artifact import WEIGHTS_FILE
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE
from vla_kit.policy.backends.torch_backend import TorchPolicy
from vla_kit.policy.backends.torch_precision import Precision, read_weights
from vla_kit.policy.processing import INPUT_NAMES, OUTPUT_NAME, ModelInputs, Processor
from vla_kit.policy.spec import PolicySpec
from vla_kit.types import Observation

__all__ = [
    "OnnxExport",
    "export_onnx",
    "load_float32_torch",
    "parity_inputs",
    "synthetic_inputs",
    "ort_session",
    "max_abs_diff",
    "torch_threads",
]

_PARITY_SAMPLES = 8


class OnnxExport(Technique):
    """Export to ONNX (opset >= 17, free batch); the result runs on the ``onnxruntime`` backend."""

    name = "onnx"
    summary = "export to ONNX (dynamo exporter, free batch), checked by onnx.checker and an ORT parity run"
    accepts = ("torch",)

    class Options(TechniqueOptions):
        opset: int = Field(18, ge=17, le=21)  # ONNX opset of the exported graph
        optimize: bool = False  # store ONNX Runtime's offline-optimised graph (portable fusions only)
        parity_atol: float = Field(1e-4, gt=0)  # max |onnx - torch| accepted, normalised action units

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, OnnxExport.Options)
        policy = load_float32_torch(source, spec, self.name)
        inputs = parity_inputs(spec, ctx.calibration, seed=ctx.seed)

        def write_files(folder: Path) -> None:
            path = folder / ONNX_FILE
            with torch_threads(ctx.threads):
                export_onnx(policy.model, spec, path, opset=options.opset)
                expected = policy.infer(inputs)
            if options.optimize:
                _optimize_offline(path, ctx.threads)
            diff = max_abs_diff(ort_session(path, ctx.threads).run([OUTPUT_NAME], inputs.as_dict())[0], expected)
            ctx.log(f"onnx parity vs torch on {inputs.batch_size} inputs: max |diff| = {diff:.2e}")
            if not diff <= options.parity_atol:
                raise ArtifactError(path, f"ONNX Runtime differs from torch by {diff:.3g} > parity_atol={options.parity_atol}")

        write_derived(source, spec, target, (self.name, options), write_files, backend="onnxruntime")


register_technique(OnnxExport)



@contextlib.contextmanager
def _quiet_logger(name: str):
    """Silence a library logger below ERROR for the duration (the exporter logs a warning per
    torchvision operator it cannot register, and this project does not use torchvision)."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)

def load_float32_torch(source: Path, spec: PolicySpec, technique: str) -> TorchPolicy:
    """The source artifact as a float32 :class:`TorchPolicy` on CPU.

    Raises:
        InputError: its weights are stored at reduced precision (start from the float32 parent).
    """
    _, precision = read_weights(source / WEIGHTS_FILE)
    if precision is not Precision.FLOAT32:
        raise InputError(
            f"{technique} source", f"{source} holds {precision.value} weights; {technique} starts from a float32 torch artifact"
        )
    return TorchPolicy.load(source, spec)


def export_onnx(model: torch.nn.Module, spec: PolicySpec, path: Path, *, opset: int = 18) -> None:
    """Export ``model`` to ``path`` (single file) and check it with ``onnx.checker``.

    Raises:
        ArtifactError: the exporter failed or the checker rejected the graph.
    """
    import onnx  # noqa: PLC0415

    example = tuple(torch.from_numpy(a) for a in synthetic_inputs(spec, 2, seed=0).as_dict().values())
    batch = torch.export.Dim("batch", min=1, max=4096)
    model = model.eval()
    try:
        # The exporter prints progress and warns about deprecations of its own internals.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_logger("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                example,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # torch.export / onnxscript raise many types
        raise ArtifactError(path, f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    proto = program.model_proto
    _readable_node_names(proto)
    onnx.save_model(proto, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ArtifactError(path, f"onnx.checker rejected the exported graph: {exc}") from None


def _readable_node_names(proto) -> None:
    used: set[str] = set()
    for node in proto.graph.node:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        # name_scopes is ['', 'trunk', 'trunk.layers.0', 'trunk.layers.0.linear1', 'linear_6']: the
        # module path, widening, then the traced op. Keep the innermost module and the ONNX op.
        parts = [s for s in ast.literal_eval(scopes) if s] if scopes else []
        base = f"{parts[-2]}/{node.op_type}" if len(parts) > 1 else node.op_type
        name, k = base, 0
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        node.name = name
        del node.metadata_props[:]


def _optimize_offline(path: Path, threads: int) -> None:
    import onnxruntime as ort  # noqa: PLC0415

    optimized = path.with_suffix(".opt.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimized)
    options.intra_op_num_threads = threads
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized.replace(path)


def ort_session(path: Path, threads: int = 1):
    """A CPU ONNX Runtime session as the ``onnxruntime`` backend opens it (for checks in techniques)."""
    import onnxruntime as ort  # noqa: PLC0415

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference; ``inf`` when either holds a non-finite value."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    return float(np.abs(a - b).max())


def parity_inputs(spec: PolicySpec, observations: Sequence[Observation], *, seed: int, n: int = _PARITY_SAMPLES) -> ModelInputs:
    """Up to ``n`` of ``observations`` as one batch, or seeded synthetic inputs when there are none."""
    if observations:
        return Processor(spec).preprocess(list(observations[:n]))[0]
    return synthetic_inputs(spec, n, seed=seed)


def synthetic_inputs(spec: PolicySpec, batch: int, *, seed: int) -> ModelInputs:
    """Random pixels, a few known words, normal proprio: valid inputs for tracing and checks."""
    m = spec.model
    rng = np.random.default_rng(seed)
    words = rng.integers(1, m.max_tokens + 1, size=batch)
    mask = np.arange(m.max_tokens)[None, :] < words[:, None]
    ids = np.where(mask, rng.integers(2, max(m.vocab_size, 3), size=(batch, m.max_tokens)), 0).astype(np.int64)
    return ModelInputs(
        images=rng.integers(0, 256, size=(batch, m.num_cameras, m.image_height, m.image_width, m.channels), dtype=np.uint8),
        token_ids=ids,
        token_mask=mask,
        proprio=rng.normal(size=(batch, m.proprio_dim)).astype(np.float32),
    )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
