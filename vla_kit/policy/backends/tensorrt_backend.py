"""The TensorRT backend: runs a serialized engine, ``model.engine``, on an NVIDIA GPU.

``tensorrt`` (10.x) is optional (``pip install 'vla_kit[tensorrt]'``) and imported only when used;
I/O buffers are torch CUDA tensors (so a CUDA build of torch is needed too, and no pycuda).

An engine is specific to the GPU model and the TensorRT version that built it, so it is built on
the target by the ``tensorrt-fp16`` / ``tensorrt-int8`` techniques (:func:`build_engine`), which
record both under ``provenance.tensorrt`` in ``policy.json``; loading on another GPU or version is
a :class:`~vla_kit.errors.BackendError` that says so, rather than a deserialisation crash. The
artifact keeps the ONNX graph the engine was built from (``model.onnx``), which any CPU backend
can run for comparison.

Precision:

* **fp16**: the fp32 ONNX graph, built with ``BuilderFlag.FP16`` (TensorRT picks fp16 kernels
  where they are faster; layer norms and softmax may stay fp32).
* **int8**: an ONNX graph with explicit Q/DQ nodes (symmetric, as TensorRT requires), built as a
  *strongly typed* network: the Q/DQ nodes alone decide what runs in int8, which is what the
  TensorRT 10 documentation recommends over the INT8 builder flag and its calibrators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from vla_kit.deps import require
from vla_kit.errors import ArtifactError, BackendError
from vla_kit.policy.backends.base import PolicyBackend
from vla_kit.policy.processing import INPUT_NAMES, OUTPUT_NAME, ModelInputs
from vla_kit.policy.spec import PolicySpec

__all__ = ["TensorRtPolicy", "ENGINE_FILE", "build_engine", "engine_provenance", "cuda_unavailable_reason"]

ENGINE_FILE = "model.engine"
_WORKSPACE_BYTES = 1 << 30  # builder scratch memory; the tiny..base presets need far less


def cuda_unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (no tensorrt, no CUDA torch, no GPU), or ``None``."""
    from vla_kit.deps import install_hint, is_available  # noqa: PLC0415

    if not is_available("tensorrt"):
        return f"the 'tensorrt' package is not installed: {install_hint('tensorrt')}"
    import torch  # noqa: PLC0415

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build; TensorRT I/O needs a CUDA build of torch"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible (torch.cuda.is_available() is False)"
    return None


def engine_provenance(device: int = 0) -> dict[str, str]:
    """What an engine is tied to: TensorRT version, GPU name and compute capability."""
    import torch  # noqa: PLC0415

    trt = require("tensorrt")
    major, minor = torch.cuda.get_device_capability(device)
    return {"version": trt.__version__, "gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}"}


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    spec: PolicySpec,
    *,
    precision: Literal["fp16", "int8"],
    max_batch: int = 8,
    opt_batch: int = 1,
    workspace_bytes: int = _WORKSPACE_BYTES,
) -> None:
    """Build and serialize a TensorRT engine from an ONNX graph with a free batch dimension.

    Args:
        onnx_path: fp32 ONNX (``fp16``) or ONNX with symmetric Q/DQ nodes (``int8``).
        engine_path: where to write the serialized engine.
        spec: the policy spec (gives the static input shapes).
        precision: ``"fp16"`` (FP16 builder flag) or ``"int8"`` (strongly typed Q/DQ network).
        max_batch: largest batch the engine accepts.
        opt_batch: the batch size kernels are tuned for (1 for a control loop).
        workspace_bytes: builder workspace limit.

    Raises:
        MissingDependencyError: tensorrt is not installed.
        BackendError: no CUDA GPU, or TensorRT could not parse or build the network (its errors
            are in the message).
    """
    reason = cuda_unavailable_reason()
    if reason:
        raise BackendError("tensorrt", reason)
    trt = require("tensorrt")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if precision == "int8":
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError("tensorrt", f"the ONNX parser rejected {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        if not hasattr(trt.BuilderFlag, "FP16"):  # removed in TensorRT 11 (strong typing only)
            raise BackendError("tensorrt", f"TensorRT {trt.__version__} has no FP16 builder flag; this build path needs TensorRT 10")
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shape in _input_shapes(spec).items():
        profile.set_shape(name, (1, *shape), (opt_batch, *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError("tensorrt", f"building the {precision} engine failed (see the TensorRT log above)")
    Path(engine_path).write_bytes(bytes(serialized))


def _input_shapes(spec: PolicySpec) -> dict[str, tuple[int, ...]]:
    m = spec.model
    return {
        "images": (m.num_cameras, m.image_height, m.image_width, m.channels),
        "token_ids": (m.max_tokens,),
        "token_mask": (m.max_tokens,),
        "proprio": (m.proprio_dim,),
    }


class TensorRtPolicy(PolicyBackend):
    """A policy run by a TensorRT execution context on one CUDA device.

    Attributes:
        engine: the deserialized ``ICudaEngine``.
        context: its execution context.
        device: the torch CUDA device its buffers live on.
    """

    name = "tensorrt"
    weights_file = ENGINE_FILE

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run on this host (package, CUDA torch, GPU), or ``None``."""
        return cuda_unavailable_reason()

    def __init__(self, engine: Any, spec: PolicySpec, *, source: str, device: Any, num_parameters: int) -> None:
        import torch  # noqa: PLC0415

        super().__init__(spec, source=source)
        self.engine = engine
        self.context = engine.create_execution_context()
        self.device = device
        self._num_parameters = num_parameters
        self._stream = torch.cuda.Stream(device=device)
        trt = require("tensorrt")
        self._dtypes = {name: _torch_dtype(engine.get_tensor_dtype(name), trt) for name in (*INPUT_NAMES, OUTPUT_NAME)}

    @classmethod
    def _load(cls, artifact_dir: Path, spec: PolicySpec, *, device: str = "cuda:0") -> "TensorRtPolicy":
        """Deserialize ``model.engine`` for ``device``.

        Raises:
            MissingDependencyError: tensorrt is not installed.
            BackendError: no CUDA GPU; or the engine was built with another TensorRT version or
                on another GPU model (both recorded at build time); or TensorRT refused it.
            ArtifactError: the engine's I/O tensors are not the policy's inputs and output.
        """
        reason = cuda_unavailable_reason()
        if reason:
            raise BackendError(cls.name, reason)
        import torch  # noqa: PLC0415

        trt = require("tensorrt")
        torch_device = torch.device(device)
        built = spec.provenance.get("tensorrt", {})
        here = engine_provenance(torch_device.index or 0)
        for key in ("version", "compute_capability"):
            if built.get(key) not in (None, here[key]):
                raise BackendError(
                    cls.name,
                    f"the engine was built for {key} {built[key]} ({built.get('gpu', '?')}); this host has {here[key]} "
                    f"({here['gpu']}): rebuild it here with the tensorrt-* technique from the artifact's model.onnx",
                )
        path = artifact_dir / ENGINE_FILE
        with torch.cuda.device(torch_device):
            engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            raise BackendError(cls.name, f"TensorRT {trt.__version__} could not deserialize {path} (see its log above)")
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        if names != {*INPUT_NAMES, OUTPUT_NAME}:
            raise ArtifactError(path, f"engine tensors {sorted(names)}; expected {[*INPUT_NAMES, OUTPUT_NAME]}")
        count = int(spec.provenance.get("tensorrt", {}).get("num_parameters", 0))
        return cls(engine, spec, source=str(artifact_dir), device=torch_device, num_parameters=count)

    @property
    def num_parameters(self) -> int:
        """Weights of the ONNX graph the engine was built from (an engine does not expose its own)."""
        return self._num_parameters

    def _infer(self, inputs: ModelInputs) -> np.ndarray:
        import torch  # noqa: PLC0415

        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            feed = {}
            for name, array in inputs.as_dict().items():
                tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self._dtypes[name], non_blocking=True)
                feed[name] = tensor  # kept referenced until the stream is synchronised
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            shape = tuple(self.context.get_tensor_shape(OUTPUT_NAME))
            output = torch.empty(shape, dtype=self._dtypes[OUTPUT_NAME], device=self.device)
            self.context.set_tensor_address(OUTPUT_NAME, output.data_ptr())
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise BackendError(self.name, "execute_async_v3 failed (see the TensorRT log above)")
            self._stream.synchronize()
        return output.float().cpu().numpy()


def _torch_dtype(trt_dtype: Any, trt: Any):
    import torch  # noqa: PLC0415

    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT8: torch.int8,
        trt.DataType.INT32: torch.int32,
        trt.DataType.INT64: torch.int64,
        trt.DataType.BOOL: torch.bool,
        trt.DataType.UINT8: torch.uint8,
    }
    if trt_dtype not in table:
        raise BackendError("tensorrt", f"engine I/O type {trt_dtype} has no torch equivalent here")
    return table[trt_dtype]
