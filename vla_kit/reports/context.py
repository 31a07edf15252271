"""The notebook side of a run: ``record()`` numbers, find the artifacts folder, set up display.

When ``vla-kit run`` executes a notebook it sets ``VLA_KIT_RUN_DIR`` for the kernel; ``record``
then writes ``metrics.json`` in that folder after every call (atomically, so a dying kernel leaves
the numbers recorded so far). A notebook stepped through by hand has no run folder: values go to
a scratch folder under the system temp directory, named once on first use.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from vla_kit.errors import InputError

__all__ = ["log_line", "latest_metrics", "git_revision", "table", "markdown", "record", "record_many", "recorded", "artifacts_dir", "run_dir", "setup_notebook", "to_jsonable", "write_json_atomic", "write_text_atomic"]

ENV_RUN_DIR = "VLA_KIT_RUN_DIR"
ENV_DEPLOYMENT_DIR = "VLA_KIT_DEPLOYMENT_DIR"  # outputs/<deployment>: caches shared by its runs
METRICS_FILE = "metrics.json"
HEADLINE_FILE = ".headline.json"  # consumed by the runner into manifest.json, then removed
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}$")

_interactive_dir: Path | None = None


def run_dir() -> Path:
    """The folder of the current run (or of this interactive session)."""
    global _interactive_dir
    env = os.environ.get(ENV_RUN_DIR)
    if env:
        return Path(env)
    if _interactive_dir is None:
        _interactive_dir = Path(tempfile.mkdtemp(prefix="vla_kit-interactive-"))
        print(f"vla_kit: not running under `vla-kit run`; recording to {_interactive_dir}")
    return _interactive_dir


def artifacts_dir() -> Path:
    """``<run>/artifacts``, created on first use: where a stage puts the files it produces."""
    path = run_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas/dataclass/pydantic values to plain JSON data; non-finite floats -> None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):  # pydantic
        return to_jsonable(value.model_dump(mode="json"))
    mod = type(value).__module__
    if mod.startswith("numpy"):
        import numpy as np

        if isinstance(value, np.ndarray):
            return to_jsonable(value.tolist())
        if isinstance(value, np.generic):
            return to_jsonable(value.item())
    if mod.startswith("pandas"):
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return to_jsonable(value.to_dict(orient="records"))
        if isinstance(value, pd.Series):
            return to_jsonable(value.to_dict())
    if hasattr(value, "item") and callable(value.item):  # torch scalars
        try:
            return to_jsonable(value.item())
        except (TypeError, ValueError):
            pass
    raise InputError("record value", f"cannot store a {type(value).__name__} in metrics.json; record numbers, strings, lists, dicts or tables")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a rename:
    readers never see half a file, and a failure leaves no temporary file behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so readers never see half a file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def record(name: str, value: Any, *, headline: bool = False) -> Any:
    """Record ``value`` under ``name`` in the run's ``metrics.json`` and return it unchanged.

    Later stages and CI read numbers from ``metrics.json``, never from HTML, so a notebook records
    everything it shows.

    Args:
        name: metric name: letters, digits, ``_ . - /``; recording a name again replaces it.
        value: JSON-able data; numpy/pandas/dataclasses/pydantic are converted, NaN/inf become null.
        headline: list this metric in ``vla-kit reports`` and in the manifest's headline.

    Returns:
        ``value``, so a cell can record and display in one line.

    Raises:
        InputError: a bad name, or a value that cannot be stored.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError("record name", f"{name!r} is not a metric name (letters, digits, '_', '.', '-', '/'; at most 128)")
    data = to_jsonable(value)
    folder = run_dir()
    folder.mkdir(parents=True, exist_ok=True)
    metrics_path = folder / METRICS_FILE
    metrics = _read(metrics_path, {})
    metrics[name] = data
    write_json_atomic(metrics_path, metrics)
    if headline:
        head_path = folder / HEADLINE_FILE
        heads = _read(head_path, [])
        if name not in heads:
            heads.append(name)
            write_json_atomic(head_path, heads)
    return value


def record_many(values: dict[str, Any], *, headline: bool = False) -> dict[str, Any]:
    """:func:`record` each ``name: value`` pair; returns ``values``."""
    for name, value in values.items():
        record(name, value, headline=headline)
    return values


def recorded() -> dict[str, Any]:
    """Everything recorded so far in this run."""
    return _read(run_dir() / METRICS_FILE, {})


def setup_notebook() -> None:
    """Prepare a notebook for archived reports; call once in the first code cell.

    Sets the plotly renderer so every figure shows interactively in Jupyter *and* survives in the
    offline ``report.html``, and tidies pandas display.
    """
    from vla_kit.reports.figures import install_renderer

    install_renderer()
    try:
        import pandas as pd

        pd.set_option("display.max_columns", 50)
        pd.set_option("display.width", 200)
        pd.set_option("display.precision", 4)
    except ImportError:  # pandas is a core dependency; keep the notebook alive if it is broken
        pass


def markdown(text: str) -> None:
    """Display ``text`` as Markdown in the notebook (and in the HTML report), right away.

    It displays itself rather than returning a display object, so a call inside an ``if`` or
    before other statements of a cell shows up too (a returned object would only be shown as the
    cell's last expression).
    """
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(df, *, precision: int = 2, index: bool = False):
    """A DataFrame styled for reading: thousands separators, fixed decimals, '—' for missing."""
    styler = df.style.format(precision=precision, thousands=",", na_rep="—")
    return styler if index else styler.hide(axis="index")


def log_line(entry: dict) -> None:
    """Print one progress entry compactly (``key value · key value``), for long-running cells."""
    parts = []
    for key, value in entry.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key} {value}")
    print(" · ".join(parts), flush=True)


def latest_metrics(stage: str) -> dict[str, Any]:
    """``metrics.json`` of this deployment's newest successful ``stage`` run (e.g. the survey's peaks).

    Raises:
        RunNotFoundError: not running under ``vla-kit run``, or no such run exists.
    """
    from vla_kit.errors import RunNotFoundError
    from vla_kit.reports.archive import latest_run

    env = os.environ.get(ENV_DEPLOYMENT_DIR)
    if not env:
        raise RunNotFoundError(f"no deployment folder (not running under `vla-kit run`), so no '{stage}' run to read")
    folder = Path(env)
    record_ = latest_run(folder.parent, folder.name, stage)
    return _read(record_.path / METRICS_FILE, {})


def git_revision() -> str | None:
    """The checkout's git revision, suffixed ``+dirty`` when it has uncommitted changes (for provenance)."""
    from vla_kit.reports.manifest import git_state

    g = git_state()
    if g["revision"] is None:
        return None
    return g["revision"] + ("+dirty" if g["dirty"] else "")
