"""What this host is: CPU, instruction-set features that matter for inference, memory, GPUs.

Cheap to call (no torch import, a few file reads and at most one ``nvidia-smi`` call), so the run
manifest can record it for every run.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import psutil

__all__ = ["GpuInfo", "HostInfo", "host_info", "INFERENCE_FLAGS"]

# CPU features that decide which inference kernels run fast (x86 and Arm names as /proc/cpuinfo spells them).
INFERENCE_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx_vnni",
    "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve",
)


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as the driver reports it."""

    name: str
    memory_gib: float | None
    driver: str | None
    compute_capability: str | None


@dataclass(frozen=True)
class HostInfo:
    """This machine, as far as inference performance is concerned."""

    hostname: str
    os: str
    arch: str
    cpu_model: str
    physical_cores: int | None
    logical_cores: int | None
    cpu_max_mhz: float | None
    inference_flags: list[str]
    memory_total_gib: float
    memory_available_gib: float
    gpus: list[GpuInfo] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Plain data for ``metrics.json`` / ``manifest.json``."""
        return asdict(self)

    def summary_rows(self) -> list[tuple[str, str]]:
        """(property, value) rows for a two-column table."""
        gpus = "; ".join(f"{g.name} ({g.memory_gib:g} GiB)" if g.memory_gib else g.name for g in self.gpus)
        return [
            ("CPU", self.cpu_model),
            ("architecture", self.arch),
            ("cores (physical / logical)", f"{self.physical_cores} / {self.logical_cores}"),
            ("max clock", f"{self.cpu_max_mhz:.0f} MHz" if self.cpu_max_mhz else "not reported"),
            ("inference ISA features", ", ".join(self.inference_flags) or "none of note"),
            ("memory (total / available)", f"{self.memory_total_gib:.1f} / {self.memory_available_gib:.1f} GiB"),
            ("GPUs", gpus or "none found"),
            ("OS", self.os),
        ]


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def _nvidia_gpus() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version,compute_cap", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            mem = round(float(parts[1]) / 1024, 1)
        except ValueError:
            mem = None
        gpus.append(GpuInfo(parts[0], mem, parts[2] or None, parts[3] or None))
    return gpus


@lru_cache(maxsize=1)
def _static() -> tuple:
    model, flags = _cpuinfo()
    try:
        freq = psutil.cpu_freq()
        max_mhz = float(freq.max) if freq and freq.max else None
    except (OSError, NotImplementedError, AttributeError):
        max_mhz = None
    return (
        platform.node(),
        f"{platform.system()} {platform.release()}",
        platform.machine(),
        model,
        psutil.cpu_count(logical=False),
        psutil.cpu_count(logical=True) or os.cpu_count(),
        max_mhz,
        [f for f in INFERENCE_FLAGS if f in flags],
        tuple(_nvidia_gpus()),
    )


def host_info() -> HostInfo:
    """Describe this host. Static facts are read once per process; memory is read fresh."""
    hostname, os_name, arch, model, phys, logical, max_mhz, flags, gpus = _static()
    vm = psutil.virtual_memory()
    return HostInfo(
        hostname=hostname,
        os=os_name,
        arch=arch,
        cpu_model=model,
        physical_cores=phys,
        logical_cores=logical,
        cpu_max_mhz=max_mhz,
        inference_flags=list(flags),
        memory_total_gib=round(vm.total / 2**30, 2),
        memory_available_gib=round(vm.available / 2**30, 2),
        gpus=list(gpus),
    )
