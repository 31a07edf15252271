"""The vla_kit exception hierarchy.

Every error a user can meet derives from :class:`VlaKitError` and carries structured fields (which
file, which key, which cell, which joint) plus the process exit code the CLI should use::

    VlaKitError                      exit 1 unless stated
    ├── UsageError                   exit 2  bad command line: unknown stage, bad flag value
    ├── ParamsError                  exit 2  params file / --set / notebook parameter is wrong
    ├── ArchiveError                 exit 2  outputs folder unusable, run folder malformed
    │   └── RunNotFoundError         exit 2  `latest:<stage>` or a run id matched nothing
    ├── RunFailedError               exit 1  a stage notebook raised, timed out or its kernel died
    ├── GateError                    exit 1  a stage's gate failed (no candidate met the budgets)
    ├── RegistryError                exit 2  unknown name in a registry, or a duplicate registration
    ├── MissingDependencyError       exit 2  an optional package is absent; names the extra
    ├── BackendError                 exit 2  an inference backend cannot run here (provider, compiler, GPU)
    ├── InputError                   exit 2  an observation/action/array has the wrong shape, dtype or value
    ├── ArtifactError                exit 2  a policy artifact / model file is missing or malformed
    │   └── ChecksumMismatchError    exit 2  a file does not match its recorded sha256
    └── SafetyError                  exit 1  the safety layer refused (envelope invalid, gate failed)

The CLI maps ``exc.exit_code`` straight to the process status and prints ``str(exc)``; messages
are written to be read on their own, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = [
    "VlaKitError",
    "UsageError",
    "ParamsError",
    "ArchiveError",
    "RunNotFoundError",
    "RunFailedError",
    "GateError",
    "RegistryError",
    "MissingDependencyError",
    "BackendError",
    "InputError",
    "ArtifactError",
    "ChecksumMismatchError",
    "SafetyError",
]


class VlaKitError(Exception):
    """Base of every vla_kit error. ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class UsageError(VlaKitError):
    """The command line asked for something that does not exist or cannot be done."""

    exit_code = 2


class ParamsError(VlaKitError):
    """A parameter is wrong. Names where it came from, the key path, the value and what was expected.

    Args:
        source: the file (or ``--set``/notebook origin) the value came from.
        key_path: dotted path of the key, e.g. ``survey.gemm_sizes[1]``; empty for whole-file errors.
        value: the offending value (``None`` when the key is missing).
        expected: a short description of what would have been accepted.
        line: 1-based line in ``source`` when known.
    """

    exit_code = 2

    def __init__(
        self,
        source: str | Path,
        key_path: str,
        value: Any,
        expected: str,
        *,
        line: int | None = None,
    ) -> None:
        self.source = str(source)
        self.key_path = key_path
        self.value = value
        self.expected = expected
        self.line = line
        where = self.source + (f":{line}" if line else "")
        if key_path:
            msg = f"{where}: {key_path}: got {value!r}; expected {expected}"
        else:
            msg = f"{where}: {expected}"
        super().__init__(msg)


class ArchiveError(VlaKitError):
    """The run archive (``outputs/``) cannot be used as asked."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(message)


class RunNotFoundError(ArchiveError):
    """A ``latest:<stage>`` reference or a run id matched no successful run."""


class RunFailedError(VlaKitError):
    """A stage run failed. The run is archived with status ``failed``; this says where and why.

    Args:
        stage: stage name or notebook path.
        run_dir: the archived run folder (its notebook has the failing cell marked).
        reason: one line: the exception name and message, or why the kernel stopped.
        cell_index: 0-based index of the failing cell in the source notebook, if known.
        exec_count: the ``In [n]`` number shown in the notebook, if known.
    """

    exit_code = 1

    def __init__(
        self,
        stage: str,
        run_dir: str | Path | None,
        reason: str,
        *,
        cell_index: int | None = None,
        exec_count: int | None = None,
    ) -> None:
        self.stage = stage
        self.run_dir = None if run_dir is None else str(run_dir)
        self.reason = reason
        self.cell_index = cell_index
        self.exec_count = exec_count
        where = ""
        if cell_index is not None:
            where = f" in cell {cell_index}" + (f" (In [{exec_count}])" if exec_count else "")
        archived = f"; archived as failed at {self.run_dir}" if self.run_dir else ""
        super().__init__(f"stage {stage!r} failed{where}: {reason}{archived}")


class RegistryError(VlaKitError):
    """Unknown name in a registry (lists what exists), or a duplicate registration."""

    exit_code = 2

    def __init__(self, family: str, name: str, available: Sequence[str], *, duplicate: bool = False) -> None:
        self.family = family
        self.name = name
        self.available = sorted(available)
        self.duplicate = duplicate
        if duplicate:
            msg = f"{family} {name!r} is already registered"
        else:
            msg = f"unknown {family} {name!r}; available: {', '.join(self.available) or '(none)'}"
        super().__init__(msg)


class MissingDependencyError(VlaKitError):
    """An optional package is not installed. Says exactly what to install."""

    exit_code = 2

    def __init__(self, package: str, extra: str | None, purpose: str) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        how = f"pip install 'vla_kit[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{purpose} needs the '{package}' package, which is not installed: {how}")


class BackendError(VlaKitError):
    """An inference backend is installed but cannot run this artifact on this host.

    Examples: an ONNX Runtime execution provider that is absent or silently fell back to CPU,
    ``torch.compile`` without a working C compiler, a TensorRT engine built for another GPU.

    Args:
        backend: the backend's registry name (``"onnxruntime"``).
        problem: what failed and what to do instead.
    """

    exit_code = 2

    def __init__(self, backend: str, problem: str) -> None:
        self.backend = backend
        self.problem = problem
        super().__init__(f"{backend} backend: {problem}")


class InputError(VlaKitError):
    """Data handed to an API is malformed: wrong shape, dtype, or a non-finite value.

    Args:
        what: the name of the argument or field, e.g. ``observation.images['front']``.
        problem: what is wrong and what was expected.
    """

    exit_code = 2

    def __init__(self, what: str, problem: str) -> None:
        self.what = what
        self.problem = problem
        super().__init__(f"{what}: {problem}")


class ArtifactError(VlaKitError):
    """A policy artifact or model file is missing, unreadable or malformed."""

    exit_code = 2

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ChecksumMismatchError(ArtifactError):
    """A file's sha256 differs from the one recorded next to it."""

    def __init__(self, path: str | Path, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(path, f"sha256 mismatch: recorded {expected[:16]}…, file has {actual[:16]}…")


class GateError(VlaKitError):
    """A stage's gate failed: e.g. no optimisation candidate met the budgets. The message lists why."""

    exit_code = 1


class SafetyError(VlaKitError):
    """The safety layer refused: an invalid envelope, or a gate that failed."""

    exit_code = 1
