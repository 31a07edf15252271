"""``manifest.json``: everything needed to re-run a report next month and trust its numbers.

vla_kit version, git revision and dirty flag, Python and every installed package version, the
host, seeds, the sha256 of every input artifact and of the notebook and params, timing and status.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import vla_kit
from vla_kit.profile.host import host_info

__all__ = ["git_state", "installed_packages", "build_manifest", "utc_now", "MANIFEST_SCHEMA"]

MANIFEST_SCHEMA = 1
_REPO_ROOT = Path(vla_kit.__file__).resolve().parent.parent


def utc_now() -> datetime:
    """Timezone-aware UTC now (manifest times are ISO-8601 UTC)."""
    return datetime.now(timezone.utc)


def git_state(repo: Path = _REPO_ROOT) -> dict[str, Any]:
    """``{revision, dirty, branch}`` of the vla_kit checkout, or ``{revision: None}`` outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    rev = git("rev-parse", "HEAD")
    if rev is None:
        return {"revision": None, "dirty": None, "branch": None}
    # outputs/ is the archive itself; a run in progress must not mark the tree dirty.
    status = git("status", "--porcelain", "--untracked-files=normal", "--", ".", ":(exclude)outputs")
    return {"revision": rev, "dirty": bool(status), "branch": git("rev-parse", "--abbrev-ref", "HEAD")}


def installed_packages() -> dict[str, str]:
    """Every installed distribution -> version (what ``pip freeze`` would list), sorted by name."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            out[name] = dist.version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def build_manifest(
    *,
    run_id: str,
    stage: str,
    deployment: str,
    notebook: Path,
    notebook_sha256: str,
    params_sha256: str,
    seeds: Mapping[str, int],
    inputs: Mapping[str, Mapping[str, str]],
    started_at: datetime,
    finished_at: datetime,
    status: str,
    error: Mapping[str, Any] | None,
    headline_metrics: list[str],
    command: list[str],
    kernel: str,
) -> dict[str, Any]:
    """Assemble the manifest of one run (see the module docstring for what it holds)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "run_id": run_id,
        "stage": stage,
        "deployment": deployment,
        "status": status,
        "error": dict(error) if error else None,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": finished_at.isoformat(timespec="seconds"),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "command": command,
        "notebook": {"source": str(notebook), "sha256": notebook_sha256, "kernel": kernel},
        "params_sha256": params_sha256,
        "seeds": dict(seeds),
        "inputs": {k: dict(v) for k, v in inputs.items()},
        "headline_metrics": headline_metrics,
        "vla_kit_version": vla_kit.__version__,
        "git": git_state(),
        "python": {"version": sys.version.split()[0], "implementation": sys.implementation.name, "executable": sys.executable},
        "packages": installed_packages(),
        "hardware": host_info().as_dict(),
    }
