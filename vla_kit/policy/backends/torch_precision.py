"""How ``model.safetensors`` holds reduced-precision weights, and how the torch backends run them.

The weights file describes itself: its safetensors metadata carries ``vla_kit.precision`` (absent
means ``float32``, which is what :func:`~vla_kit.policy.artifact.save_artifact` writes), so an
artifact made by the ``bf16`` or ``torch-int8-dynamic`` technique loads with plain
``load_policy(path)`` and nothing in ``policy.json`` has to change shape. The technique that wrote
it is in the spec's lineage as well.

=================  ==========================================================================
precision          stored as, and run as
=================  ==========================================================================
``float32``        every tensor float32; runs in float32
``bfloat16``       floating tensors rounded to bfloat16 (half the bytes); loaded into float32
                   parameters (exact: bf16 -> f32 is lossless) and run under
                   ``torch.autocast(dtype=bfloat16)``, so matmuls and convolutions run in bf16
                   while LayerNorm/softmax keep float32 (the model casts its inputs to float32,
                   so casting the weights alone would not run)
``int8-dynamic``   each quantised ``nn.Linear`` weight as ``int8 [out, in]`` plus
                   ``<name>_scale`` (``float32 [out, 1]``, symmetric, one scale per output row);
                   everything else float32. Loaded back into torchao ``Int8Tensor`` weights
                   with *the stored scales*, so the int8 values are exactly the ones written;
                   activations are quantised per token at run time (dynamic quantisation)
=================  ==========================================================================

Why int8 is stored as integers and scales rather than as torchao's tensor subclass: safetensors
holds plain tensors only (no pickles on a robot), and the int8 file is what the size comparison
should measure. Re-creating the subclass from ``(int8, scale)`` on load is deterministic.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from vla_kit.errors import ArtifactError, InputError

__all__ = [
    "Precision",
    "PRECISION_KEY",
    "SCALE_SUFFIX",
    "read_weights",
    "write_weights",
    "quantize_linears_int8",
    "linear_names",
    "load_into",
]

PRECISION_KEY = "vla_kit.precision"  # safetensors metadata key
SCALE_SUFFIX = "_scale"  # "<module>.weight_scale" next to an int8 "<module>.weight"


class Precision(str, Enum):
    """How the weights in ``model.safetensors`` are stored (and so how the torch backend runs them)."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"
    INT8_DYNAMIC = "int8-dynamic"


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], Precision]:
    """The tensors of a weights file and the precision its metadata records.

    Raises:
        ArtifactError: unreadable file, or an unknown ``vla_kit.precision``.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(path, f"unreadable safetensors file: {exc}") from None
    raw = metadata.get(PRECISION_KEY, Precision.FLOAT32.value)
    try:
        return tensors, Precision(raw)
    except ValueError:
        known = [p.value for p in Precision]
        raise ArtifactError(path, f"metadata {PRECISION_KEY}={raw!r} is not one of {known}") from None


def write_weights(path: Path, tensors: dict[str, torch.Tensor], precision: Precision) -> None:
    """Write ``tensors`` (CPU, contiguous) with the precision recorded in the metadata."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={"format": "pt", PRECISION_KEY: precision.value})


def quantize_linears_int8(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` with the weights of the Linear layers ``names`` as int8 + scale.

    Symmetric per-output-row quantisation, as torchao's ``Int8DynamicActivationInt8WeightConfig``
    does it (``scale = max|w_row| / 127.5``, round to nearest, clamp to [-128, 127]).
    """
    from torchao.quantization import Int8Tensor  # noqa: PLC0415 (heavy import, only when quantising)
    from torchao.quantization.granularity import PerRow  # noqa: PLC0415

    state = {k: v.detach() for k, v in model.state_dict().items()}
    for name in names:
        weight = state[f"{name}.weight"].to(torch.float32)
        q = Int8Tensor.from_hp(weight, PerRow())
        state[f"{name}.weight"] = q.qdata.to(torch.int8)
        state[f"{name}.weight{SCALE_SUFFIX}"] = q.scale.reshape(weight.shape[0], 1).to(torch.float32)
    return state


def load_into(model: nn.Module, tensors: dict[str, torch.Tensor], precision: Precision, source: Path) -> nn.Module:
    """Load stored ``tensors`` into a freshly built float32 ``model``, ready to run at ``precision``.

    Raises:
        ArtifactError: the tensors do not fit the model, or the int8 layout is inconsistent.
    """
    quantized: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    if precision is Precision.INT8_DYNAMIC:
        tensors = dict(tensors)
        for key in [k for k in tensors if k.endswith(f".weight{SCALE_SUFFIX}")]:
            weight_key = key[: -len(SCALE_SUFFIX)]
            q, scale = tensors.get(weight_key), tensors.pop(key)
            if q is None or q.dtype != torch.int8 or scale.shape != (q.shape[0], 1):
                raise ArtifactError(source, f"{key}: expected an int8 {weight_key} of [out, in] and a float32 [out, 1] scale")
            quantized[weight_key[: -len(".weight")]] = (q, scale.to(torch.float32))
            tensors[weight_key] = q.to(torch.float32) * scale.to(torch.float32)  # dequantised, to fit the fp32 model
        if not quantized:
            raise ArtifactError(source, f"precision {precision.value!r} but no '*.weight{SCALE_SUFFIX}' tensors")
    elif any(not t.is_floating_point() for t in tensors.values()):
        raise ArtifactError(source, f"integer tensors in a {precision.value!r} weights file")
    try:
        model.load_state_dict(tensors, strict=True)  # bf16 tensors are upcast into the fp32 parameters
    except RuntimeError as exc:
        raise ArtifactError(source, f"weights do not fit the architecture in policy.json: {exc}") from None
    if quantized:
        _attach_int8(model, quantized, source)
    return model


def _attach_int8(model: nn.Module, quantized: dict[str, tuple[torch.Tensor, torch.Tensor]], source: Path) -> None:
    from torchao.quantization import Int8Tensor  # noqa: PLC0415
    from torchao.quantization.granularity import PerRow  # noqa: PLC0415
    from torchao.quantization.quantize_.workflows.int8.int8_tensor import QuantizeTensorToInt8Kwargs  # noqa: PLC0415

    modules = dict(model.named_modules())
    for name, (q, scale) in quantized.items():
        module = modules.get(name)
        if not isinstance(module, nn.Linear):
            raise ArtifactError(source, f"{name}.weight{SCALE_SUFFIX}: {name!r} is not a Linear layer of the model")
        # Re-quantising the dequantised weight with the stored scale gives back the stored ints
        # (|q*s/s - q| is far below 0.5); checked, because that is what makes the reload exact.
        weight = Int8Tensor.from_hp(
            module.weight.detach(),
            PerRow(),
            scale=scale,
            act_quant_kwargs=QuantizeTensorToInt8Kwargs(granularity=PerRow()),
        )
        if not torch.equal(weight.qdata, q):
            raise ArtifactError(source, f"{name}.weight: int8 values do not survive the reload (has torchao changed its rounding?)")
        module.weight = nn.Parameter(weight, requires_grad=False)


def linear_names(model: nn.Module, *, min_features: int, exclude: Iterable[str] = ()) -> list[str]:
    """Names of the Linear layers worth quantising: both sides at least ``min_features`` wide.

    Raises:
        InputError: an ``exclude`` entry names no Linear layer (lists some that exist).
    """
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    unknown = sorted(set(exclude) - set(linears))
    if unknown:
        raise InputError("exclude", f"{unknown} are not Linear layers of the model; Linear layers: {sorted(linears)[:8]} …")
    return [
        n for n, m in linears.items() if n not in set(exclude) and min(m.in_features, m.out_features) >= min_features
    ]
