"""``vla-kit``: run stages, pipelines and look at the archive.

Exit codes: 0 success; 1 a run failed (it is archived as failed), or `vla-kit safety audit`
found violations; 2 bad usage, bad params or bad input (nothing ran); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from vla_kit import __version__
from vla_kit.errors import VlaKitError

__all__ = ["main", "build_parser"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value)


def _add_params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", required=True, metavar="FILE", help="params YAML (e.g. params/demo.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a parameter, e.g. --set survey.gemm_repeats=3 (repeatable; same checks as the file)",
    )


def _add_outputs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--outputs", default=os.environ.get("VLA_KIT_OUTPUTS", "outputs"), metavar="DIR",
        help="archive root (default: ./outputs or $VLA_KIT_OUTPUTS)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="vla-kit", description="VLA policies from checkpoint to safe, monitored edge deployment.")
    parser.add_argument("--version", action="version", version=f"vla_kit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="execute one stage notebook and archive the run")
    run.add_argument("stage", help="stage name (see `vla-kit stages`) or the path of your own .ipynb")
    _add_params_args(run)
    _add_outputs_arg(run)
    run.add_argument("--notebooks", metavar="DIR", help="folder of the stage notebooks (default: the checkout's notebooks/)")

    pipe = sub.add_parser("pipeline", help="run the stages listed under `pipeline:` in order; stop at the first failure")
    _add_params_args(pipe)
    _add_outputs_arg(pipe)
    pipe.add_argument("--notebooks", metavar="DIR", help="folder of the stage notebooks")

    rep = sub.add_parser("reports", help="list archived runs")
    rep.add_argument("--deployment", metavar="NAME", help="only this deployment")
    rep.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_outputs_arg(rep)

    ev = sub.add_parser("evaluate", help="closed-loop success and language grounding of a policy in simulation")
    ev.add_argument("policy", help="policy artifact folder, or a run folder (its artifacts/policy is used)")
    ev.add_argument("--episodes", type=int, default=60, help="closed-loop episodes (default 60)")
    ev.add_argument("--seed", type=int, default=12345, help="first episode seed (default 12345; recording seeds start at 1,000,000)")
    ev.add_argument("--tasks", nargs="+", metavar="TASK", help="task families (default: those the policy was trained on)")
    ev.add_argument("--colours", nargs="+", metavar="COLOUR", help="target colours (default: those it was trained on)")
    ev.add_argument("--execute-steps", type=int, default=4, help="chunk actions executed before re-planning (default 4)")
    ev.add_argument("--grounding-scenes", type=int, default=10, help="scenes for the grounding test, 0 to skip (default 10)")
    ev.add_argument("--backend", default=None, help="inference backend (default: the one the artifact records)")
    ev.add_argument("--json", metavar="OUT", help="also write the numbers as JSON to OUT")

    sub.add_parser("stages", help="list the stages")

    chk = sub.add_parser("params", help="validate a params file and print it resolved (defaults filled in)")
    _add_params_args(chk)

    from vla_kit.safety.cli import register as register_safety  # `vla-kit safety filter|audit`

    register_safety(sub)
    return parser


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vla_kit.params import load_params
    from vla_kit.reports.runner import run_stage

    params = load_params(args.params, args.overrides)
    res = run_stage(
        args.stage, params, outputs_root=Path(args.outputs),
        notebooks_dir=Path(args.notebooks) if args.notebooks else None, command=["vla-kit", *argv],
    )
    _print_result(res)
    return 0


def _print_result(res) -> None:
    head = "  ".join(f"{k}={_fmt(v)}" for k, v in res.headline.items())
    print(f"{res.stage}: {res.status} in {res.duration_s:.1f} s -> {res.run_dir}")
    if head:
        print(f"  {head}")


def _cmd_pipeline(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vla_kit.params import load_params
    from vla_kit.reports.runner import run_pipeline

    params = load_params(args.params, args.overrides)
    results = run_pipeline(
        params, outputs_root=Path(args.outputs),
        notebooks_dir=Path(args.notebooks) if args.notebooks else None, command=["vla-kit", *argv],
    )
    for res in results:
        _print_result(res)
    return 0


def _cmd_reports(args: argparse.Namespace) -> int:
    from vla_kit.reports.archive import incomplete_runs, list_runs

    runs = list_runs(Path(args.outputs), args.deployment)
    if args.json:
        print(json.dumps([
            {"run_id": r.run_id, "deployment": r.deployment, "stage": r.stage, "status": r.status,
             "started_at": r.started_at, "duration_s": r.duration_s, "path": str(r.path), "headline": r.headline, "error": r.error}
            for r in runs
        ], indent=2))
        return 0
    if not runs:
        where = Path(args.outputs) / (args.deployment or "")
        print(f"no runs in {where}")
    else:
        rows = [("run", "deployment", "stage", "status", "duration", "headline")]
        for r in runs:
            dur = f"{r.duration_s:.1f} s" if r.duration_s is not None else "?"
            head = "  ".join(f"{k}={_fmt(v)}" for k, v in r.headline.items()) if r.status == "succeeded" else (r.error or "")
            rows.append((r.run_id, r.deployment, r.stage, r.status, dur, head))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    partial = incomplete_runs(Path(args.outputs), args.deployment)
    if partial:
        print(f"({len(partial)} interrupted run folder(s) not listed, e.g. {partial[0]})")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from vla_kit.learn.evaluate import evaluate_policy, grounding_test
    from vla_kit.policy import load_policy
    from vla_kit.reports.context import write_json_atomic

    policy = load_policy(args.policy, backend=args.backend)
    trained = (policy.spec.provenance or {}).get("dataset", {})
    tasks = args.tasks or trained.get("tasks") or ["reach"]
    colours = args.colours or trained.get("colours") or None
    size = policy.spec.cameras.height
    extra = {"colours": colours} if colours else {}
    progress = _progress_printer("episodes")
    jitter = float(trained.get("start_jitter", 0.0))
    report = evaluate_policy(policy, tasks=tasks, episodes=args.episodes, seed=args.seed, execute_steps=args.execute_steps,
                             image_size=size, start_jitter=jitter, keep_filmstrip=False, progress=progress, **extra)
    out = report.as_dict()
    if args.grounding_scenes > 0:
        g = grounding_test(policy, scenes=args.grounding_scenes, seed=args.seed + args.episodes, execute_steps=args.execute_steps,
                           image_size=size, start_jitter=jitter, progress=_progress_printer("grounding episodes"), **extra)
        out["grounding"] = g.as_dict()
        out["grounding_accuracy"] = g.accuracy
    print(f"policy {policy.spec.preset or ''} ({policy.num_parameters:,} parameters) · {args.episodes} episodes from seed {args.seed} · execute {args.execute_steps} steps per chunk")
    print(f"{'group':<8}{'name':<14}{'success':>9}{'rate':>8}   95% CI")
    for _, row in report.table().iterrows():
        print(f"{row['group']:<8}{row['name']:<14}{row['success']:>4}/{row['episodes']:<4}{row['rate']:>8.1%}   [{row['95% CI low']:.1%}, {row['95% CI high']:.1%}]")
    if "grounding_accuracy" in out:
        print(f"grounding accuracy {out['grounding_accuracy']:.1%} over {int(sum(map(sum, out['grounding']['matrix'])))} episodes (chance {out['grounding']['chance']:.0%})")
    if args.json:
        write_json_atomic(Path(args.json), out)
        print(f"numbers written to {args.json}")
    return 0


def _progress_printer(what: str):
    def show(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{what}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return show


def _cmd_stages() -> int:
    from vla_kit.params import STAGES

    for name in STAGES.names():
        spec = STAGES.get(name)
        print(f"{name:<18} notebooks/{spec.notebook:<26} {spec.summary}")
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    import yaml

    from vla_kit.params import load_params

    params = load_params(args.params, args.overrides)
    print(yaml.safe_dump(params.resolved(), sort_keys=False), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vla-kit`` console script. Returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "pipeline":
            return _cmd_pipeline(args, argv)
        if args.command == "reports":
            return _cmd_reports(args)
        if args.command == "evaluate":
            return _cmd_evaluate(args)
        if args.command == "stages":
            return _cmd_stages()
        if args.command == "params":
            return _cmd_params(args)
        if getattr(args, "handler", None) is not None:  # commands registered by a package's register() hook
            return args.handler(args)
    except VlaKitError as e:
        print(f"vla-kit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vla-kit: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # argparse restricts the choices


if __name__ == "__main__":
    sys.exit(main())
