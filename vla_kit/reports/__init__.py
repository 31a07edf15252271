"""Runs and their archive: papermill orchestration, ``record()``, manifests, offline HTML reports.

Notebook side: :func:`record`, :func:`artifacts_dir`, :func:`setup_notebook`.
Runner side: :func:`run_stage`, :func:`run_pipeline`, :func:`list_runs`, :func:`latest_run`.
"""

from vla_kit.reports.archive import RunRecord, latest_run, list_runs, resolve_ref
from vla_kit.reports.context import artifacts_dir, git_revision, latest_metrics, log_line, markdown, table, record, record_many, recorded, run_dir, setup_notebook
from vla_kit.reports.runner import RunResult, run_pipeline, run_stage

__all__ = [
    "markdown",
    "log_line",
    "latest_metrics",
    "git_revision",
    "table",
    "record",
    "record_many",
    "recorded",
    "artifacts_dir",
    "run_dir",
    "setup_notebook",
    "run_stage",
    "run_pipeline",
    "RunResult",
    "RunRecord",
    "list_runs",
    "latest_run",
    "resolve_ref",
]
