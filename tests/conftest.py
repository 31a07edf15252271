"""Shared fixtures: fixture notebooks (one per failure mode), params files, the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent


def make_notebook(path: Path, cells: Iterable[str], params: str | None = "deployment = 'x'\nseed = 0\ntarget = 'x86-cpu'") -> Path:
    """Write a notebook: an optional tagged parameters cell, then one code cell per source."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(new_markdown_cell("# fixture"))
    if params is not None:
        cell = new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(new_code_cell(src) for src in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def write_params(tmp_path: Path):
    """Write a params YAML (dict or text) into tmp_path and return its path."""

    def _write(data: dict | str, name: str = "p.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return _write


@pytest.fixture
def cli(tmp_path: Path):
    """Run `vla-kit ...` in a subprocess (the way a user does) with outputs under tmp_path."""

    def _run(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env.setdefault("VLA_KIT_OUTPUTS", str(tmp_path / "outputs"))
        return subprocess.run(
            [sys.executable, "-m", "vla_kit.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )

    return _run
