"""Techniques that build a vendor runtime's model: ``openvino-int8``, ``tensorrt-fp16``, ``tensorrt-int8``.

Each starts from a float ONNX artifact (the ``onnx`` technique's output) and needs an optional
package (and, for TensorRT, a CUDA GPU); :meth:`~vla_kit.optimize.techniques.Technique.unavailable`
says exactly what is missing and how to install it, so the optimize stage marks such a candidate
skipped instead of failing.

* ``openvino-int8``: NNCF post-training quantisation of the OpenVINO model (``model_type=
  TRANSFORMER``, which keeps the attention's softmax and LayerNorms in float), calibrated on
  ``ctx.calibration``; writes IR (``model.xml`` + ``model.bin``) for the ``openvino`` backend.
* ``tensorrt-fp16``: a TensorRT engine with the FP16 builder flag.
* ``tensorrt-int8``: the ONNX graph quantised to QDQ by the same calibration as
  ``ort-int8-static``, in TensorRT's dialect (symmetric activations: zero point 0; float
  biases), then built strongly typed.

TensorRT artifacts keep the ONNX graph next to ``model.engine`` and record the TensorRT version,
GPU and parameter count under ``provenance.tensorrt``: an engine only runs on the GPU model and
TensorRT version that built it, so the techniques are meant to run on the target device.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from vla_kit.deps import install_hint, is_available, require
from vla_kit.optimize.quantize import (
    ObservationReader,
    OrtInt8Static,
    log_quantization_error,
    prepared_float_onnx,
    quantize_qdq,
    quiet_quantizer,
    require_float_onnx,
)
from vla_kit.optimize.techniques import OptimizeContext, Technique, TechniqueOptions, register_technique, write_derived
from vla_kit.policy.backends.onnxruntime_backend import ONNX_FILE, onnx_parameter_count
from vla_kit.policy.backends.openvino_backend import IR_FILE
from vla_kit.policy.backends.tensorrt_backend import ENGINE_FILE, build_engine, cuda_unavailable_reason, engine_provenance
from vla_kit.policy.spec import PolicySpec

__all__ = ["OpenVinoInt8", "TensorRtFp16", "TensorRtInt8"]


class OpenVinoInt8(Technique):
    """NNCF int8 post-training quantisation into OpenVINO IR."""

    name = "openvino-int8"
    summary = "OpenVINO int8 IR, NNCF post-training quantisation calibrated on recorded observations"
    accepts = ("onnxruntime",)

    class Options(TechniqueOptions):
        preset: Literal["performance", "mixed"] = "performance"  # mixed: asymmetric activations
        subset_size: int = Field(300, ge=1)  # calibration observations NNCF uses, at most
        batch_size: int = Field(1, ge=1)  # observations per calibration sample
        fast_bias_correction: bool = True  # False: slower, sometimes more accurate bias correction
        exclude_nodes: tuple[str, ...] = ()  # OpenVINO node names to keep float

    def unavailable(self) -> str | None:
        for package in ("openvino", "nncf"):
            if not is_available(package):
                return f"the '{package}' package is not installed: {install_hint(package)}"
        return None

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, OpenVinoInt8.Options)
        ov, nncf = require("openvino"), require("nncf")
        require_float_onnx(source / ONNX_FILE, self.name)
        max_samples = options.subset_size * options.batch_size
        reader = ObservationReader(spec, ctx.calibration, batch_size=options.batch_size, max_samples=max_samples)
        model = ov.Core().read_model(str(source / ONNX_FILE))
        ctx.log(f"{self.name}: calibrating on {reader.num_samples} observations")
        with quiet_quantizer():
            quantized = nncf.quantize(
                model,
                nncf.Dataset(list(reader)),
                preset=nncf.QuantizationPreset.PERFORMANCE if options.preset == "performance" else nncf.QuantizationPreset.MIXED,
                subset_size=options.subset_size,
                fast_bias_correction=options.fast_bias_correction,
                model_type=nncf.ModelType.TRANSFORMER,
                ignored_scope=nncf.IgnoredScope(names=list(options.exclude_nodes)) if options.exclude_nodes else None,
            )

        def write_files(folder: Path) -> None:
            ov.save_model(quantized, str(folder / IR_FILE), compress_to_fp16=False)

        write_derived(source, spec, target, (self.name, options), write_files, backend="openvino")


class _TensorRtOptions(TechniqueOptions):
    max_batch: int = Field(8, ge=1)  # largest batch the engine accepts
    opt_batch: int = Field(1, ge=1)  # batch size the kernels are tuned for (1: a control loop)


class TensorRtFp16(Technique):
    """A TensorRT engine built with fp16 kernels allowed."""

    name = "tensorrt-fp16"
    summary = "TensorRT engine, fp16 (built on the target GPU)"
    accepts = ("onnxruntime",)
    Options = _TensorRtOptions

    def unavailable(self) -> str | None:
        return cuda_unavailable_reason()

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, _TensorRtOptions)
        require_float_onnx(source / ONNX_FILE, self.name)

        def write_files(folder: Path) -> None:
            shutil.copyfile(source / ONNX_FILE, folder / ONNX_FILE)
            build_engine(
                folder / ONNX_FILE, folder / ENGINE_FILE, spec, precision="fp16", max_batch=options.max_batch, opt_batch=options.opt_batch
            )

        write_derived(source, spec, target, (self.name, options), write_files, backend="tensorrt", provenance=_provenance(spec, source))


class TensorRtInt8(Technique):
    """Symmetric QDQ int8 (calibrated like ``ort-int8-static``), built strongly typed by TensorRT."""

    name = "tensorrt-int8"
    summary = "TensorRT engine, int8 from explicit symmetric Q/DQ calibrated on recorded observations"
    accepts = ("onnxruntime",)

    class Options(_TensorRtOptions, OrtInt8Static.Options):
        pass

    def unavailable(self) -> str | None:
        return cuda_unavailable_reason()

    def apply(self, source: Path, spec: PolicySpec, target: Path, ctx: OptimizeContext, options: TechniqueOptions) -> None:
        assert isinstance(options, TensorRtInt8.Options)
        reader = ObservationReader(spec, ctx.calibration, batch_size=options.batch_size, max_samples=options.max_samples)
        with prepared_float_onnx(source, self.name, options) as prepared:

            def write_files(folder: Path) -> None:
                quantize_qdq(prepared, folder / ONNX_FILE, reader, options, for_tensorrt=True)
                log_quantization_error(folder / ONNX_FILE, source, spec, ctx, self.name)
                sizes = {"max_batch": options.max_batch, "opt_batch": options.opt_batch}
                build_engine(folder / ONNX_FILE, folder / ENGINE_FILE, spec, precision="int8", **sizes)

            write_derived(source, spec, target, (self.name, options), write_files, backend="tensorrt", provenance=_provenance(spec, source))


for _technique in (OpenVinoInt8, TensorRtFp16, TensorRtInt8):
    register_technique(_technique)


def _provenance(spec: PolicySpec, source: Path) -> dict:
    return {**spec.provenance, "tensorrt": {**engine_provenance(), "num_parameters": onnx_parameter_count(source / ONNX_FILE)}}
