"""Execute a stage notebook with papermill and archive it as a run.

``run_stage`` is the template method of a run: validate (stage, notebook parameters, inputs,
outputs folder) -> execute (papermill, explicit kernel, per-cell timeout) -> archive (notebook,
HTML, params, metrics, manifest) -> rename the hidden ``.partial`` folder to the run id. A failed
or dead notebook is archived too, with status ``failed`` and the failing cell marked, and then
reported as :class:`~vla_kit.errors.RunFailedError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

import vla_kit
from vla_kit.errors import ArchiveError, ParamsError, RunFailedError, UsageError
from vla_kit.params import STAGES, Params, StageSpec, input_ref_fields, notebook_parameters
from vla_kit.reports import archive
from vla_kit.reports.context import ENV_DEPLOYMENT_DIR, ENV_RUN_DIR, HEADLINE_FILE, METRICS_FILE, write_json_atomic
from vla_kit.reports.html import export_html
from vla_kit.reports.manifest import build_manifest, utc_now

__all__ = ["RunResult", "run_stage", "run_pipeline", "default_notebooks_dir", "resolve_notebook", "KERNEL_NAME"]

KERNEL_NAME = "vla-kit-python"


@dataclass(frozen=True)
class RunResult:
    """A finished, archived run."""

    stage: str
    run_id: str
    run_dir: Path
    status: str
    duration_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the vla_kit checkout (editable install), else ``./notebooks``."""
    repo = Path(vla_kit.__file__).resolve().parent.parent / "notebooks"
    return repo if repo.is_dir() else Path.cwd() / "notebooks"


def resolve_notebook(stage: str, notebooks_dir: Path) -> tuple[str, Path, StageSpec | None]:
    """Map a stage name or a notebook path to ``(stage label, notebook path, spec or None)``.

    Raises:
        UsageError: neither a registered stage nor an existing ``.ipynb``.
    """
    if stage in STAGES:
        spec = STAGES.get(stage)
        path = notebooks_dir / spec.notebook
        if not path.is_file():
            raise UsageError(f"stage {stage!r} has no notebook at {path} (is --notebooks right?)")
        return stage, path, spec
    path = Path(stage)
    if path.suffix == ".ipynb":
        if not path.is_file():
            raise UsageError(f"notebook {stage} does not exist")
        return path.stem, path.resolve(), None
    raise UsageError(f"unknown stage {stage!r}; stages: {', '.join(STAGES.names())} (or give the path of a .ipynb)")


def _check_declared_parameters(path: Path, spec: StageSpec, injected: dict[str, Any]) -> None:
    """A built-in notebook must declare exactly the parameters its params section defines."""
    import papermill as pm

    declared = set(pm.inspect_notebook(str(path)))
    extra = sorted(declared - set(injected))
    missing = sorted(set(injected) - declared)
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"declares {', '.join(extra)} which the '{spec.name}' params section does not define")
        if missing:
            parts.append(f"lacks {', '.join(missing)} in its parameters cell")
        raise UsageError(f"{path}: {'; '.join(parts)}")


@contextmanager
def _kernel_environment(run_dir: Path) -> Iterator[None]:
    """A kernelspec for *this* interpreter (found first via JUPYTER_PATH) and the run's env vars."""
    with tempfile.TemporaryDirectory(prefix="vla_kit-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            # The kernel's own log (transport notices) is noise in a headless run; cell output is kept.
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.log_level=ERROR"],
            "display_name": f"vla_kit ({Path(sys.executable).parent.parent.name})",
            "language": "python",
            "metadata": {"debugger": False},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", ENV_RUN_DIR, ENV_DEPLOYMENT_DIR, "PYDEVD_DISABLE_FILE_VALIDATION")}
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [tmp, saved["JUPYTER_PATH"]]))
        os.environ[ENV_RUN_DIR] = str(run_dir)
        os.environ[ENV_DEPLOYMENT_DIR] = str(run_dir.parent)  # shared caches (datasets) of this deployment
        os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences ipykernel's frozen-modules warning
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln for ln in str(text).splitlines() if ln.strip()), "")
    return line[:limit]


def _mark_stopped_cell(nb_path: Path, ename: str, evalue: str) -> dict[str, Any]:
    """Mark the cell that was running when the kernel died or timed out, the way papermill marks errors.

    papermill adds its error banner only for cells with an error output; a dead kernel leaves
    none. We add one to the last started cell, then let papermill write its usual banner.
    """
    import nbformat
    from papermill.exceptions import PapermillExecutionError
    from papermill.execute import raise_for_execution_errors

    nb = nbformat.read(str(nb_path), as_version=4)
    started = [i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return {"cell_index": None, "exec_count": None}
    idx = started[-1]
    cell = nb.cells[idx]
    cell.metadata.setdefault("papermill", {})
    cell.metadata["papermill"].update({"exception": True, "status": "failed"})
    if cell.get("cell_type") == "code":
        cell.setdefault("outputs", []).append(
            nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])
        )
    try:
        raise_for_execution_errors(nb, str(nb_path))
    except PapermillExecutionError:
        pass
    return {"cell_index": idx, "exec_count": cell.get("execution_count")}


def _execute(nb_in: Path, nb_out: Path, parameters: dict[str, Any], params: Params, run_dir: Path) -> dict[str, Any] | None:
    """Run papermill; return None on success or an error dict describing the failure."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    runner = params.common.runner
    with _kernel_environment(run_dir):
        try:
            pm.execute_notebook(
                str(nb_in),
                str(nb_out),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str(run_dir),
                progress_bar=runner.progress,
                execution_timeout=runner.cell_timeout_s,
                start_timeout=runner.start_timeout_s,
                log_output=False,
                # Stop the kernel as soon as the last cell has replied: a graceful shutdown of a
                # kernel that imported torch costs 1-3 s per stage. Every output and every file a
                # cell wrote is complete by then; only atexit hooks of the notebook are skipped.
                shutdown_kernel="immediate",
            )
            return None
        except PapermillExecutionError as e:
            return {
                "kind": "cell-error",
                "cell_index": e.cell_index,
                "exec_count": e.exec_count,
                "ename": e.ename,
                "evalue": e.evalue,
                "reason": f"{e.ename}: {_first_line(e.evalue)}",
                "source": _first_line(e.source, 120),
            }
        except (DeadKernelError, CellTimeoutError) as e:
            if isinstance(e, CellTimeoutError):
                ename, evalue = "CellTimeoutError", f"a cell ran longer than runner.cell_timeout_s = {runner.cell_timeout_s} s"
            else:
                ename, evalue = "DeadKernelError", f"the kernel died while running this cell ({_first_line(str(e), 200)})"
            where = _mark_stopped_cell(nb_out, ename, evalue) if nb_out.exists() else {"cell_index": None, "exec_count": None}
            return {"kind": ename, **where, "ename": ename, "evalue": evalue, "reason": f"{ename}: {evalue}"}
        except KeyboardInterrupt:
            where = _mark_stopped_cell(nb_out, "KeyboardInterrupt", "interrupted by the user") if nb_out.exists() else {}
            return {"kind": "interrupted", **where, "ename": "KeyboardInterrupt", "evalue": "interrupted by the user", "reason": "interrupted by the user (Ctrl-C)"}
        except Exception as e:  # kernel failed to start, notebook unreadable, ...: still archive the attempt
            return {"kind": "runner", "cell_index": None, "exec_count": None, "ename": type(e).__name__, "evalue": str(e), "reason": f"{type(e).__name__}: {_first_line(str(e))}"}


def _resolve_inputs(params: Params, stage: str, spec: StageSpec | None, root: Path) -> tuple[Params, dict[str, dict[str, str]]]:
    """Resolve ``latest:`` refs / paths of the stage's input fields and hash what they point to."""
    if spec is None:
        return params, {}
    section = params.section(stage)
    updates: dict[str, str] = {}
    inputs: dict[str, dict[str, str]] = {}
    for name in input_ref_fields(spec.params_model):
        value = getattr(section, name)
        if value in (None, ""):
            continue
        try:
            path = archive.resolve_ref(str(value), root, params.common.deployment)
        except ArchiveError as e:
            raise ParamsError(params.source, f"{stage}.{name}", value, str(e)) from None
        updates[name] = str(path)
        inputs[f"{stage}.{name}"] = {"ref": str(value), "path": str(path), "sha256": archive.sha256_path(path)}
    if updates:
        params = params.with_section(stage, section.model_copy(update=updates))
    return params, inputs


def run_stage(
    stage: str,
    params: Params,
    *,
    outputs_root: Path,
    notebooks_dir: Path | None = None,
    command: list[str] | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> RunResult:
    """Execute one stage notebook and archive the run.

    Args:
        stage: a registered stage name, or the path of a user notebook (gets the common keys).
        params: validated params.
        outputs_root: the archive root; the run lands in ``outputs_root/<deployment>/<run-id>``.
        notebooks_dir: where built-in stage notebooks live (default: the checkout's ``notebooks/``).
        command: the command line, recorded in the manifest.
        log: where progress lines go.

    Returns:
        The archived :class:`RunResult` (status ``succeeded``).

    Raises:
        UsageError, ParamsError, ArchiveError: before anything runs (exit 2).
        RunFailedError: the notebook failed; it is archived with status ``failed`` (exit 1).
    """
    label, nb_path, spec = resolve_notebook(stage, notebooks_dir or default_notebooks_dir())
    outputs_root = Path(outputs_root).resolve()
    params, inputs = _resolve_inputs(params, label, spec, outputs_root)
    injected = notebook_parameters(params, label if spec else None)
    if spec is not None:
        _check_declared_parameters(nb_path, spec, injected)
    dep_dir = archive.prepare_outputs(outputs_root, params.common.deployment)

    started = utc_now()
    run_id = archive.new_run_id(label, started)
    tmp = archive.partial_dir(dep_dir, run_id)
    tmp.mkdir()
    (tmp / "artifacts").mkdir()
    params_text = yaml.safe_dump(params.resolved(), sort_keys=False)
    (tmp / "params.yaml").write_text(params_text, encoding="utf-8")
    final = dep_dir / run_id
    log(f"vla-kit: running {label} for deployment '{params.common.deployment}' -> {final}")

    error = _execute(nb_path, tmp / "notebook.ipynb", injected, params, tmp)
    status = "failed" if error else "succeeded"
    finished = utc_now()

    metrics_path = tmp / METRICS_FILE
    if not metrics_path.exists():
        write_json_atomic(metrics_path, {})
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    head_path = tmp / HEADLINE_FILE
    headline_names = json.loads(head_path.read_text(encoding="utf-8")) if head_path.exists() else []
    head_path.unlink(missing_ok=True)

    manifest = build_manifest(
        run_id=run_id,
        stage=label,
        deployment=params.common.deployment,
        notebook=nb_path,
        notebook_sha256=archive.sha256_path(nb_path),
        params_sha256=hashlib.sha256(params_text.encode()).hexdigest(),
        seeds={"seed": params.common.seed},
        inputs=inputs,
        started_at=started,
        finished_at=finished,
        status=status,
        error=error,
        headline_metrics=headline_names,
        command=command or [],
        kernel=KERNEL_NAME,
    )
    if params.common.runner.html and (tmp / "notebook.ipynb").exists():
        try:
            export_html(
                tmp / "notebook.ipynb",
                tmp / "report.html",
                header={
                    "title": f"vla_kit · {label} · {params.common.deployment}",
                    "status": status,
                    "run": run_id,
                    "started (UTC)": manifest["started_at"],
                    "duration": f"{manifest['duration_s']:.1f} s",
                    "git": f"{(manifest['git']['revision'] or 'not a git checkout')[:12]}{' (dirty)' if manifest['git']['dirty'] else ''}",
                    "error": error["reason"] if error else None,
                },
            )
        except Exception as e:  # a report that cannot render must not lose the run
            manifest["report_html_error"] = f"{type(e).__name__}: {_first_line(str(e))}"
    write_json_atomic(tmp / "manifest.json", manifest)
    os.rename(tmp, final)

    if error:
        raise RunFailedError(label, final, error["reason"], cell_index=error.get("cell_index"), exec_count=error.get("exec_count"))
    headline = {n: metrics[n] for n in headline_names if n in metrics}
    return RunResult(label, run_id, final, status, manifest["duration_s"], metrics, headline)


def run_pipeline(
    params: Params,
    *,
    outputs_root: Path,
    notebooks_dir: Path | None = None,
    command: list[str] | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> list[RunResult]:
    """Run ``params.common.pipeline`` in order; stop at the first failure (re-raised).

    Each stage's ``latest:`` inputs resolve when it starts, so they see the runs just made.

    Raises:
        UsageError: the pipeline is empty.
        RunFailedError: a stage failed (the stages after it did not run).
    """
    stages = params.common.pipeline
    if not stages:
        raise UsageError(f"{params.source}: 'pipeline' lists no stages; add e.g. `pipeline: [survey]`")
    done: list[RunResult] = []
    for i, stage in enumerate(stages, 1):
        log(f"vla-kit: pipeline step {i}/{len(stages)}: {stage}")
        try:
            done.append(run_stage(stage, params, outputs_root=outputs_root, notebooks_dir=notebooks_dir, command=command, log=log))
        except RunFailedError:
            skipped = stages[i:]
            if skipped:
                log(f"vla-kit: pipeline stopped; not run: {', '.join(skipped)}")
            raise
    return done
