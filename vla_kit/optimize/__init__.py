"""The optimize stage's machinery: techniques (one registry), candidate chains, judging, selection.

Importing this package registers every built-in technique; see :mod:`vla_kit.optimize.techniques`
for how a technique is written.
"""

from __future__ import annotations

from vla_kit.optimize.techniques import (
    TECHNIQUES,
    OptimizeContext,
    Step,
    Technique,
    TechniqueOptions,
    build_chain,
    chain_key,
    get_technique,
    parse_step,
    register_technique,
    write_derived,
)

# Registers prune-structured, prune-unstructured and distill.
from vla_kit.optimize import distill, prune  # noqa: F401
# Registers onnx; bf16, torch-int8-dynamic, ort-int8-dynamic, ort-int8-static; openvino-int8, tensorrt-fp16/int8.
from vla_kit.optimize import engines, export, quantize  # noqa: F401

__all__ = [
    "TECHNIQUES",
    "OptimizeContext",
    "Step",
    "Technique",
    "TechniqueOptions",
    "build_chain",
    "chain_key",
    "get_technique",
    "parse_step",
    "register_technique",
    "write_derived",
]
