"""The platform catalogue: edge targets with their published peak compute, bandwidth and power.

The data lives in ``platforms.yaml`` next to this module, so adding a platform is a data change.
:func:`comparison_table` puts this host's *measured* peaks (from the survey stage) next to the
catalogue, and :func:`roofline` gives the attainable throughput of a platform at an arithmetic
intensity — the profile stage uses both.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal, Mapping

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vla_kit.errors import ParamsError, RegistryError

__all__ = ["Platform", "load_catalogue", "get_platform", "comparison_table", "roofline", "PRECISIONS"]

CATALOGUE_FILE = Path(__file__).with_name("platforms.yaml")

# Precision -> (Platform attribute, label). Order is the order tables show them in.
PRECISIONS: dict[str, tuple[str, str]] = {
    "fp32": ("fp32_gflops", "fp32 GFLOP/s"),
    "bf16": ("bf16_gflops", "bf16 GFLOP/s"),
    "fp16": ("fp16_gflops", "fp16 GFLOP/s"),
    "int8": ("int8_gops", "int8 GOP/s"),
}


class Platform(BaseModel):
    """One catalogue entry. Peaks are dense, in GFLOP/s (GOP/s for int8); ``None`` = not supported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str
    kind: Literal["cpu", "gpu", "soc-gpu"]
    compute: str
    fp32_gflops: float = Field(gt=0)
    fp16_gflops: float | None = Field(None, gt=0)
    bf16_gflops: float | None = Field(None, gt=0)
    int8_gops: float | None = Field(None, gt=0)
    mem_bw_gbs: float = Field(gt=0)  # GB/s, 1e9 bytes per second
    memory_gib: float = Field(gt=0)
    power_w_min: float = Field(gt=0)  # W, lowest published power mode
    power_w_max: float = Field(gt=0)  # W, highest published power mode / TDP
    peak_basis: str  # how the peaks were obtained (published, derived, dense/sparse)
    source: str  # where the figures come from

    def peak(self, precision: str) -> float | None:
        """Peak for ``precision`` (``fp32``, ``bf16``, ``fp16``, ``int8``), or None if unsupported."""
        if precision not in PRECISIONS:
            raise RegistryError("precision", precision, list(PRECISIONS))
        return getattr(self, PRECISIONS[precision][0])


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[Platform, ...]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out = []
    for i, entry in enumerate(data.get("platforms", [])):
        try:
            out.append(Platform.model_validate(entry))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            raise ParamsError(path, f"platforms[{i}].{loc}", err.get("input"), err["msg"]) from None
    keys = [p.key for p in out]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ParamsError(path, "platforms", sorted(dupes), "unique platform keys")
    return tuple(out)


def load_catalogue() -> list[Platform]:
    """Every platform in the shipped catalogue, in file order."""
    return list(_load(str(CATALOGUE_FILE)))


def get_platform(key: str) -> Platform:
    """The platform with ``key``; raises RegistryError listing the known keys."""
    for p in load_catalogue():
        if p.key == key:
            return p
    raise RegistryError("platform", key, [p.key for p in load_catalogue()])


def comparison_table(measured: Mapping[str, Mapping[str, float | None]], keys: Iterable[str] = ()):
    """A table of this host's measured peaks next to the catalogue's published ones.

    Args:
        measured: row label -> measured peaks (``fp32_gflops``, ``bf16_gflops``, ``fp16_gflops``,
            ``int8_gops``, ``mem_bw_gbs``; missing or None = not measured / unsupported), e.g.
            ``{"this host, CPU (measured)": cpu_peaks}``. The first one is the reference for ratios.
        keys: catalogue keys to include; empty = all.

    Returns:
        A pandas DataFrame, one row per measured device then one per platform, with peaks,
        bandwidth, power, efficiency and ``fp32 × host``: each row's fp32 peak over the first
        measured device's (above 1: faster than this host).
    """
    import pandas as pd

    wanted = list(keys)
    plats = [get_platform(k) for k in wanted] if wanted else load_catalogue()
    ref_fp32 = next(iter(measured.values()), {}).get("fp32_gflops") if measured else None
    rows = []
    for label, host in measured.items():
        fp32 = host.get("fp32_gflops")
        rows.append(
            {
                "platform": label,
                "key": "host",
                **{lab: host.get(attr) for attr, lab in PRECISIONS.values()},
                "memory GB/s": host.get("mem_bw_gbs"),
                "power W": None,
                "fp32 GFLOP/s per W": None,
                "fp32 × host": round(fp32 / ref_fp32, 3) if ref_fp32 and fp32 else None,
                "basis": "measured by the survey stage (best of repeated timed samples)",
            }
        )
    for p in plats:
        rows.append(
            {
                "platform": p.name,
                "key": p.key,
                **{lab: getattr(p, attr) for attr, lab in PRECISIONS.values()},
                "memory GB/s": p.mem_bw_gbs,
                "power W": f"{p.power_w_min:g}-{p.power_w_max:g}",
                "fp32 GFLOP/s per W": round(p.fp32_gflops / p.power_w_max, 2),
                "fp32 × host": round(p.fp32_gflops / ref_fp32, 3) if ref_fp32 else None,
                "basis": p.peak_basis,
            }
        )
    return pd.DataFrame(rows)


def roofline(peak_gflops: float, mem_bw_gbs: float, intensity: np.ndarray | Iterable[float]) -> np.ndarray:
    """Attainable GFLOP/s at each arithmetic intensity (FLOP/byte): ``min(peak, bandwidth x AI)``."""
    ai = np.asarray(list(intensity) if not isinstance(intensity, np.ndarray) else intensity, dtype=float)
    return np.minimum(float(peak_gflops), float(mem_bw_gbs) * ai)
