"""The policy artifact: a folder that holds one policy completely.

Layout::

    <artifact>/
      policy.json        the PolicySpec (see vla_kit.policy.spec for the schema)
      model.safetensors  PyTorch weights (other backends add model.onnx, model.engine, …)
      checksums.json     {"algorithm": "sha256", "files": {"policy.json": "<hex>", …}}

``checksums.json`` records every other file, so a missing, extra or altered file is caught before
a single weight is loaded. Artifacts are written into a temporary sibling folder and renamed into
place when complete: a crash leaves either the old artifact or the new one, never half of one.

A *run folder* of the train stage holds its artifact at ``<run>/artifacts/policy``; every reader
here accepts either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from safetensors.torch import save_file

from vla_kit.errors import ArtifactError, ChecksumMismatchError, InputError
from vla_kit.policy.model import VLAModel
from vla_kit.policy.spec import PolicySpec, check_format_version, parse_spec

__all__ = [
    "POLICY_FILE",
    "WEIGHTS_FILE",
    "CHECKSUMS_FILE",
    "RUN_ARTIFACT_SUBDIR",
    "sha256_file",
    "write_artifact",
    "save_artifact",
    "resolve_artifact_dir",
    "verify_artifact",
]

POLICY_FILE = "policy.json"
WEIGHTS_FILE = "model.safetensors"
CHECKSUMS_FILE = "checksums.json"
RUN_ARTIFACT_SUBDIR = Path("artifacts") / "policy"
_ALGORITHM = "sha256"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_artifact(
    path: str | Path,
    spec: PolicySpec,
    write_files: Callable[[Path], None] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write an artifact atomically: ``policy.json``, the caller's files, then ``checksums.json``.

    This is the one writer; :func:`save_artifact` and exporters (ONNX, TensorRT) call it with
    their own ``write_files``.

    Args:
        path: the artifact folder to create.
        spec: written as ``policy.json``.
        write_files: called with the (temporary) folder to write weights and other files into.
        overwrite: replace an existing artifact at ``path`` instead of failing.

    Returns:
        ``path``.

    Raises:
        ArtifactError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(path, "already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an artifact is meant to be shared
        (tmp / POLICY_FILE).write_text(spec.to_json(), encoding="utf-8")
        if write_files is not None:
            write_files(tmp)
        files = {rel: sha256_file(tmp / rel) for rel in _files_in(tmp)}
        record = {"algorithm": _ALGORITHM, "files": files}
        (tmp / CHECKSUMS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def save_artifact(path: str | Path, model: VLAModel, spec: PolicySpec, *, overwrite: bool = False) -> Path:
    """Save a PyTorch policy: ``spec`` plus the model's weights in ``model.safetensors``.

    Args:
        path: the artifact folder to create.
        model: the network; its config must equal ``spec.model``.
        spec: the policy spec (see :func:`~vla_kit.policy.spec.make_spec`).
        overwrite: replace an existing artifact at ``path``.

    Returns:
        ``path``.

    Raises:
        InputError: the model's config differs from ``spec.model``.
        ArtifactError: ``path`` exists and ``overwrite`` is False.
    """
    if model.config != spec.model:
        diff = {k: (v, getattr(model.config, k)) for k, v in spec.model if getattr(model.config, k) != v}
        raise InputError("model", f"config differs from spec.model: {{field: (spec, model)}} = {diff}")
    # Weights go to CPU, contiguous, detached: safetensors stores exactly the bytes it is given.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}

    def write_weights(folder: Path) -> None:
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})

    return write_artifact(path, spec, write_weights, overwrite=overwrite)


def resolve_artifact_dir(path: str | Path) -> Path:
    """The artifact folder for ``path``: the folder itself, or ``<run>/artifacts/policy``.

    Raises:
        ArtifactError: ``path`` is not a folder, or holds neither ``policy.json`` nor
            ``artifacts/policy/``.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ArtifactError(path, "no such artifact folder")
    if (path / POLICY_FILE).exists():
        return path
    if (path / RUN_ARTIFACT_SUBDIR).is_dir():
        return path / RUN_ARTIFACT_SUBDIR
    raise ArtifactError(path / POLICY_FILE, f"missing (and no {RUN_ARTIFACT_SUBDIR.as_posix()}/ as in a run folder)")


def verify_artifact(path: str | Path) -> PolicySpec:
    """Check an artifact completely and return its spec.

    Order: the folder, ``policy.json`` readable and of a known ``format_version``, every file's
    sha256 against ``checksums.json`` (no file missing, none unrecorded), then the schema.

    Args:
        path: an artifact folder or a run folder.

    Returns:
        The parsed ``policy.json``.

    Raises:
        ArtifactError: a missing folder or file, malformed JSON, an unknown format version, an
            unrecorded file or a schema violation.
        ChecksumMismatchError: a file's bytes differ from its recorded sha256.
    """
    folder = resolve_artifact_dir(path)
    policy_file = folder / POLICY_FILE
    data = _read_json(policy_file)
    check_format_version(data, policy_file)
    _verify_checksums(folder)
    return parse_spec(data, policy_file)


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise ArtifactError(path, "missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(path, f"not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(path, f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


def _verify_checksums(folder: Path) -> None:
    checksums_file = folder / CHECKSUMS_FILE
    record = _read_json(checksums_file)
    files = record.get("files") if isinstance(record, dict) else None
    if (
        not isinstance(record, dict)
        or record.get("algorithm") != _ALGORITHM
        or not isinstance(files, dict)
        or not all(isinstance(v, str) for v in files.values())
    ):
        raise ArtifactError(checksums_file, f'expected {{"algorithm": "{_ALGORITHM}", "files": {{"<name>": "<hex>", …}}}}')
    present = set(_files_in(folder)) - {CHECKSUMS_FILE}
    missing = sorted(set(files) - present)
    if missing:
        raise ArtifactError(folder / missing[0], f"recorded in {CHECKSUMS_FILE} but missing")
    unrecorded = sorted(present - set(files))
    if unrecorded:
        raise ArtifactError(folder / unrecorded[0], f"not recorded in {CHECKSUMS_FILE}; the artifact was altered after it was written")
    for rel in sorted(files):
        actual = sha256_file(folder / rel)
        if actual != files[rel]:
            raise ChecksumMismatchError(folder / rel, files[rel], actual)


def _files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _fsync_tree(folder: Path) -> None:
    # Edge devices lose power; make the bytes durable before the rename publishes them.
    for rel in _files_in(folder):
        with (folder / rel).open("rb") as f:
            os.fsync(f.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, path: Path) -> None:
    if not path.exists():
        tmp.rename(path)
        return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    path.rename(old)
    try:
        tmp.rename(path)
    except BaseException:
        old.rename(path)  # put the previous artifact back rather than leave nothing
        raise
    shutil.rmtree(old, ignore_errors=True)
