"""Optional heavy dependencies: decided here, imported lazily, with the exact extra to install.

Everything else in vla_kit asks this module instead of importing ``tensorrt`` or ``openvino``
itself, so a missing package produces one clear line, and a present one is imported only when
used.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from vla_kit.errors import MissingDependencyError, RegistryError

__all__ = ["OptionalDependency", "OPTIONAL", "is_available", "require", "install_hint", "version_of"]


@dataclass(frozen=True)
class OptionalDependency:
    """An optional package: its import name, the vla_kit extra that installs it, what it is for."""

    module: str
    extra: str
    purpose: str
    note: str = ""  # where it can run, when that is not "anywhere"


OPTIONAL: dict[str, OptionalDependency] = {
    "tensorrt": OptionalDependency(
        "tensorrt", "tensorrt", "TensorRT engines", note="needs an NVIDIA GPU with CUDA (Jetson, desktop or datacenter)"
    ),
    "openvino": OptionalDependency("openvino", "openvino", "OpenVINO inference"),
    "nncf": OptionalDependency("nncf", "openvino", "OpenVINO int8 quantisation (NNCF)"),
}


def _spec(name: str) -> OptionalDependency:
    if name not in OPTIONAL:
        raise RegistryError("optional dependency", name, list(OPTIONAL))
    return OPTIONAL[name]


def is_available(name: str) -> bool:
    """True when the optional package ``name`` can be imported (without importing it)."""
    return importlib.util.find_spec(_spec(name).module) is not None


def install_hint(name: str) -> str:
    """One line telling the user how to get ``name`` and where it runs."""
    dep = _spec(name)
    line = f"pip install 'vla_kit[{dep.extra}]'"
    return f"{line} ({dep.note})" if dep.note else line


def require(name: str) -> ModuleType:
    """Import and return the optional package ``name``.

    Raises:
        MissingDependencyError: it is not installed; the message names the extra to install.
    """
    dep = _spec(name)
    if not is_available(name):
        raise MissingDependencyError(dep.module, dep.extra, dep.purpose)
    return importlib.import_module(dep.module)


def version_of(distribution: str) -> str | None:
    """Installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
