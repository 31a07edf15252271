"""The ONNX Runtime backend: runs ``model.onnx`` (fp32, or int8 from the ``ort-int8-*`` techniques).

The graph's inputs are :data:`~vla_kit.policy.processing.INPUT_NAMES` and its output
:data:`~vla_kit.policy.processing.OUTPUT_NAME`, with a free batch dimension, so
:meth:`ModelInputs.as_dict` feeds it as is. Sessions run with graph optimisation level
``ORT_ENABLE_ALL`` and sequential execution.

Threads default to **one** intra-op thread (and one inter-op): on a robot the policy shares the CPU
with drivers, the control loop and the safety layer, and one thread gives the steadiest latency
and numbers comparable with the torch backend measured the same way. Raise ``threads`` for
throughput on a machine of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vla_kit.errors import ArtifactError, BackendError, InputError
from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.processing import INPUT_NAMES, OUTPUT_NAME, ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["OrtPolicy", "ONNX_FILE", "onnx_parameter_count"]

ONNX_FILE = "model.onnx"
_CPU = "CPUExecutionProvider"
# Inputs of quantisation nodes that hold quantisation parameters, not weights.
_QPARAM_INPUTS = {"QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "MatMulInteger": (2, 3), "ConvInteger": (2, 3)}
_QPARAM_SUFFIXES = ("_scale", "_zero_point")  # how onnxruntime.quantization names them


class OrtPolicy(PolicyBackend):
    """A policy run by an ``onnxruntime.InferenceSession``.

    Args:
        session: the ready session.
        spec: the policy spec.
        source: the artifact folder.
        num_parameters: weights stored in the graph (see :func:`onnx_parameter_count`).

    Attributes:
        session: the ONNX Runtime session (``session.get_providers()`` says where it runs).
    """

    name = "onnxruntime"
    weights_file = ONNX_FILE

    def __init__(self, session, spec: PolicySpec, *, source: str, num_parameters: int) -> None:
        super().__init__(spec, source=source)
        self.session = session
        self._num_parameters = num_parameters

    @classmethod
    def _load(
        cls,
        artifact_dir: Path,
        spec: PolicySpec,
        *,
        threads: int = 1,
        providers: Sequence[str] = (_CPU,),
    ) -> "OrtPolicy":
        """Open ``model.onnx`` in an inference session.

        Args:
            artifact_dir: the verified artifact folder.
            spec: its spec.
            threads: intra-op threads (inter-op is 1: the graph is one chain).
            providers: execution providers in priority order, e.g.
                ``["CUDAExecutionProvider", "CPUExecutionProvider"]``.

        Raises:
            InputError: ``threads`` < 1 or no provider given.
            BackendError: a requested provider is not in this onnxruntime build, or the session
                silently fell back from it to another.
            ArtifactError: the file is not a loadable ONNX model, or its inputs/output are not
                the ones :class:`ModelInputs` feeds.
        """
        import onnxruntime as ort  # noqa: PLC0415 (only when this backend is used)

        if threads < 1:
            raise InputError("threads", f"expected at least 1, got {threads}")
        providers = list(providers)
        if not providers:
            raise InputError("providers", "expected at least one execution provider, e.g. ['CPUExecutionProvider']")
        available = ort.get_available_providers()
        absent = [p for p in providers if p not in available]
        if absent:
            raise BackendError(cls.name, f"execution providers {absent} are not in this onnxruntime build; available: {available}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the fallback check below reports what matters
        path = artifact_dir / ONNX_FILE
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise ArtifactError(path, f"ONNX Runtime cannot load it: {exc}") from None
        # A provider whose library fails to load (no CUDA driver, wrong cuDNN) is dropped with only
        # a log line; running on CPU while the user asked for a GPU is not a silent matter.
        fell_back = [p for p in providers if p not in session.get_providers()]
        if fell_back:
            raise BackendError(
                cls.name,
                f"requested {fell_back} but the session runs on {session.get_providers()} (the provider failed to "
                "initialise: check its libraries and drivers, or ask for ['CPUExecutionProvider'])",
            )
        _check_signature(session, path)
        return cls(session, spec, source=str(artifact_dir), num_parameters=onnx_parameter_count(path))

    @property
    def num_parameters(self) -> int:
        """Weights stored in the graph (int8 weights count once; their scales do not)."""
        return self._num_parameters

    def _infer(self, inputs: ModelInputs) -> np.ndarray:
        feed = {k: np.ascontiguousarray(v) for k, v in inputs.as_dict().items()}
        return self.session.run([OUTPUT_NAME], feed)[0]


def _check_signature(session, path: Path) -> None:
    names = tuple(i.name for i in session.get_inputs())
    outputs = [o.name for o in session.get_outputs()]
    if set(names) != set(INPUT_NAMES) or OUTPUT_NAME not in outputs:
        raise ArtifactError(
            path, f"graph takes {list(names)} and returns {outputs}; expected inputs {list(INPUT_NAMES)} and output {OUTPUT_NAME!r}"
        )


def onnx_parameter_count(path: Path) -> int:
    """Elements of the graph's weight initializers.

    Counted: floating and 8-bit integer initializers with more than one element. Not counted:
    scalars, shape constants (int64) and the scales / zero points of quantisation nodes. Constant
    buffers the exporter folded into initializers (the keypoint grid) count, as they are stored.
    """
    import onnx  # noqa: PLC0415
    from onnx import TensorProto  # noqa: PLC0415

    model = onnx.load(str(path), load_external_data=False)
    qparams = {
        node.input[i]
        for node in model.graph.node
        for i in _QPARAM_INPUTS.get(node.op_type, ())
        if i < len(node.input)
    }
    kinds = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.INT8, TensorProto.UINT8}
    total = 0
    for init in model.graph.initializer:
        numel = int(np.prod(init.dims)) if init.dims else 1
        if init.data_type in kinds and numel > 1 and init.name not in qparams and not init.name.endswith(_QPARAM_SUFFIXES):
            total += numel
    return total
