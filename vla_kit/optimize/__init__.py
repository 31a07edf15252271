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
    get_technique,
    parse_step,
    register_technique,
    write_derived,
)

__all__ = [
    "TECHNIQUES",
    "OptimizeContext",
    "Step",
    "Technique",
    "TechniqueOptions",
    "build_chain",
    "get_technique",
    "parse_step",
    "register_technique",
    "write_derived",
]
