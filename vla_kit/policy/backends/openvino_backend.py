"""The OpenVINO backend: runs OpenVINO IR (``model.xml`` + ``model.bin``) or ``model.onnx``.

``openvino`` is optional (``pip install 'vla_kit[openvino]'``) and imported only when this backend
loads. An artifact written by ``openvino-int8`` holds IR; any ONNX artifact (``onnx``,
``ort-int8-*``) also runs here, read by OpenVINO's ONNX frontend. IR wins when both are present.

Defaults match the other CPU backends: one inference thread, the latency hint, and **f32**
inference precision. OpenVINO's CPU plugin otherwise picks bf16 by itself on CPUs with bf16
instructions, which would make an "fp32" comparison silently a bf16 one; ask for
``precision="bf16"`` to get it on purpose. Int8 IR runs its int8 kernels either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from vla_kit.deps import install_hint, is_available, require
from vla_kit.errors import ArtifactError, BackendError, InputError
from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE
from vla_kit.policy.processing import INPUT_NAMES, OUTPUT_NAME, ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["OpenVinoPolicy", "IR_FILE", "IR_WEIGHTS_FILE"]

IR_FILE = "model.xml"
IR_WEIGHTS_FILE = "model.bin"


class OpenVinoPolicy(PolicyBackend):
    """A policy run by an OpenVINO compiled model.

    Attributes:
        compiled: the ``openvino.CompiledModel``.
        model_file: the file it was read from (``model.xml`` or ``model.onnx``).
    """

    name = "openvino"
    weights_file = ONNX_FILE  # the fallback; IR is preferred when present (see load)

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run on this host (the package is missing), or ``None``."""
        if not is_available("openvino"):
            return f"the 'openvino' package is not installed: {install_hint('openvino')}"
        return None

    def __init__(self, compiled: Any, spec: PolicySpec, *, source: str, model_file: Path, num_parameters: int) -> None:
        super().__init__(spec, source=source)
        self.compiled = compiled
        self.model_file = model_file
        self._request = compiled.create_infer_request()
        self._output = compiled.output(OUTPUT_NAME)
        self._num_parameters = num_parameters

    @classmethod
    def load(cls, artifact_dir: Path, spec: PolicySpec, **options: Any) -> "OpenVinoPolicy":
        """Load IR when the artifact has it, else ``model.onnx`` (see :meth:`PolicyBackend.load`)."""
        if (Path(artifact_dir) / IR_FILE).is_file():
            return cls._load(Path(artifact_dir), spec, **options)
        return super().load(artifact_dir, spec, **options)

    @classmethod
    def _load(
        cls,
        artifact_dir: Path,
        spec: PolicySpec,
        *,
        device: str = "CPU",
        threads: int = 1,
        precision: Literal["f32", "bf16", "f16"] = "f32",
    ) -> "OpenVinoPolicy":
        """Read and compile the model.

        Args:
            artifact_dir: the verified artifact folder.
            spec: its spec.
            device: an OpenVINO device name (``"CPU"``, ``"GPU"``, ``"NPU"``).
            threads: inference threads (CPU).
            precision: ``INFERENCE_PRECISION_HINT`` for floating-point layers.

        Raises:
            MissingDependencyError: ``openvino`` is not installed (names the extra).
            InputError: ``threads`` < 1 or an unknown ``precision``.
            BackendError: ``device`` is not available on this host.
            ArtifactError: the model cannot be read, or has other inputs/outputs.
        """
        ov = require("openvino")
        if threads < 1:
            raise InputError("threads", f"expected at least 1, got {threads}")
        if precision not in ("f32", "bf16", "f16"):
            raise InputError("precision", f"expected 'f32', 'bf16' or 'f16', got {precision!r}")
        core = ov.Core()
        if device not in core.available_devices:
            raise BackendError(cls.name, f"device {device!r} is not available; this host has {core.available_devices}")
        path = artifact_dir / (IR_FILE if (artifact_dir / IR_FILE).is_file() else ONNX_FILE)
        try:
            model = core.read_model(str(path))
        except Exception as exc:  # openvino raises RuntimeError subclasses with the parser's message
            raise ArtifactError(path, f"OpenVINO cannot read it: {exc}") from None
        names = {name for port in model.inputs for name in port.get_names()}
        outputs = {name for port in model.outputs for name in port.get_names()}
        if not set(INPUT_NAMES) <= names or OUTPUT_NAME not in outputs:
            raise ArtifactError(
                path, f"graph takes {sorted(names)} and returns {sorted(outputs)}; expected {list(INPUT_NAMES)} -> {OUTPUT_NAME!r}"
            )
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if device == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, device, config)
        return cls(compiled, spec, source=str(artifact_dir), model_file=path, num_parameters=_count_constants(model))

    @property
    def num_parameters(self) -> int:
        """Elements of the model's weight constants (floating or 8-bit, more than one element)."""
        return self._num_parameters

    def _infer(self, inputs: ModelInputs) -> np.ndarray:
        result = self._request.infer({k: np.ascontiguousarray(v) for k, v in inputs.as_dict().items()})
        return np.array(result[self._output])


def _count_constants(model: Any) -> int:
    kinds = {"f32", "f16", "bf16", "i8", "u8"}
    total = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        numel = int(np.prod(list(op.get_output_shape(0)))) if len(op.get_output_shape(0)) else 1
        if op.get_output_element_type(0).get_type_name() in kinds and numel > 1:
            total += numel
    return total
