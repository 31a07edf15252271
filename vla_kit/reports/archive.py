"""The run archive: ``outputs/<deployment>/<run-id>/`` folders, their index, and ``latest:`` refs.

A run folder is complete when it has a ``manifest.json``; runs are written under a hidden
``.<run-id>.partial`` name and renamed at the end, so a folder with a plain name is never half
written. Run ids sort by start time: ``20261121-041502-survey-3fa2``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vla_kit.errors import ArchiveError, RunNotFoundError

__all__ = [
    "RunRecord",
    "RUN_FILES",
    "new_run_id",
    "partial_dir",
    "prepare_outputs",
    "list_runs",
    "incomplete_runs",
    "latest_run",
    "resolve_ref",
    "is_ref",
    "sha256_path",
]

RUN_FILES = ("notebook.ipynb", "report.html", "params.yaml", "metrics.json", "manifest.json")
LATEST = "latest:"
_STAGE_SLUG = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class RunRecord:
    """What the archive knows about one finished run (read from its manifest and metrics)."""

    path: Path
    run_id: str
    stage: str
    deployment: str
    status: str
    started_at: str
    duration_s: float | None
    headline: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def new_run_id(stage: str, now: datetime) -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-<stage>-<4 hex>``."""
    slug = _STAGE_SLUG.sub("_", stage.lower()).strip("_") or "run"
    return f"{now:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(2)}"


def partial_dir(deployment_dir: Path, run_id: str) -> Path:
    """Where a run is written until it is complete."""
    return deployment_dir / f".{run_id}.partial"


def prepare_outputs(root: Path, deployment: str) -> Path:
    """Create ``root/deployment`` and prove it is writable.

    Raises:
        ArchiveError: the folder cannot be created or written, with the path and the OS reason.
    """
    folder = Path(root) / deployment
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ArchiveError(f"outputs folder {folder} is not writable: {e.strerror or e}", path=folder) from None
    return folder


def _read_record(run: Path) -> RunRecord | None:
    try:
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    headline: dict[str, Any] = {}
    names = manifest.get("headline_metrics") or []
    if names:
        try:
            metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            headline = {n: metrics[n] for n in names if n in metrics}
        except (OSError, ValueError):
            headline = {}
    err = manifest.get("error")
    return RunRecord(
        path=run,
        run_id=manifest.get("run_id", run.name),
        stage=manifest.get("stage", "?"),
        deployment=manifest.get("deployment", run.parent.name),
        status=manifest.get("status", "?"),
        started_at=manifest.get("started_at", ""),
        duration_s=manifest.get("duration_s"),
        headline=headline,
        error=err.get("reason") if isinstance(err, dict) else None,
    )


def list_runs(root: Path, deployment: str | None = None) -> list[RunRecord]:
    """Complete runs under ``root`` (one deployment or all), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    deps = [root / deployment] if deployment else sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for dep in deps:
        if not dep.is_dir():
            continue
        for run in dep.iterdir():
            if run.is_dir() and not run.name.startswith("."):
                rec = _read_record(run)
                if rec is not None:
                    out.append(rec)
    return sorted(out, key=lambda r: (r.started_at, r.run_id))


def incomplete_runs(root: Path, deployment: str | None = None) -> list[Path]:
    """``.partial`` folders left by runs that were interrupted (never shown as runs)."""
    root = Path(root)
    if not root.is_dir():
        return []
    deps = [root / deployment] if deployment else [p for p in root.iterdir() if p.is_dir()]
    return sorted(p for d in deps if d.is_dir() for p in d.iterdir() if p.name.endswith(".partial"))


def latest_run(root: Path, deployment: str, stage: str) -> RunRecord:
    """The newest *successful* run of ``stage`` for ``deployment``.

    Raises:
        RunNotFoundError: none exists; says what does exist for that deployment.
    """
    runs = list_runs(root, deployment)
    ok = [r for r in runs if r.stage == stage and r.status == "succeeded"]
    if ok:
        return ok[-1]
    have = sorted({f"{r.stage} ({r.status})" for r in runs})
    hint = f"runs in {Path(root) / deployment}: {', '.join(have)}" if have else f"no runs in {Path(root) / deployment}"
    raise RunNotFoundError(f"latest:{stage} matches no successful '{stage}' run of deployment '{deployment}' ({hint}); run `vla-kit run {stage}` first", path=Path(root) / deployment)


def is_ref(value: object) -> bool:
    """True for strings of the form ``latest:<stage>[/sub/path]``."""
    return isinstance(value, str) and value.startswith(LATEST)


def resolve_ref(value: str, root: Path, deployment: str) -> Path:
    """Resolve an input reference to an absolute, existing path.

    ``latest:train`` -> the newest successful train run folder; ``latest:train/artifacts/policy``
    -> that sub path inside it; anything else is a filesystem path.

    Raises:
        RunNotFoundError: no matching run, or the sub path is not in it.
        ArchiveError: a plain path that does not exist.
    """
    if is_ref(value):
        stage, _, sub = value[len(LATEST):].partition("/")
        if not stage:
            raise RunNotFoundError(f"{value!r}: expected latest:<stage>[/path inside the run]")
        run = latest_run(root, deployment, stage)
        target = (run.path / sub) if sub else run.path
        if not target.exists():
            raise RunNotFoundError(f"{value!r}: run {run.run_id} has no {sub}", path=target)
        return target.resolve()
    path = Path(value).expanduser()
    if not path.exists():
        raise ArchiveError(f"input path {value!r} does not exist", path=path)
    return path.resolve()


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder (over its sorted relative paths and file contents)."""
    path = Path(path)
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    h = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(child.relative_to(path)).encode())
        h.update(b"\0")
        h.update(sha256_path(child).encode())
    return h.hexdigest()
