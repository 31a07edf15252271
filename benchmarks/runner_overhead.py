"""Papermill overhead per stage: wall time of `vla-kit run` minus the time the notebook's cells ran.

Target (issue #2): <= 3 s over the notebook's own work. Overhead is measured in one run as
  wall(run_stage) - sum(cell durations recorded by papermill)
and split into HTML export (re-timed on the archived notebook) and the rest (kernel start-up,
papermill bookkeeping, manifest, archive).

Usage:  .venv/bin/python benchmarks/runner_overhead.py [--params params/ci.yaml] [--stages survey] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from vla_kit.params import load_params
from vla_kit.reports.html import export_html
from vla_kit.reports.runner import run_stage

TARGET_S = 3.0


def measure(stage: str, params, outputs: Path) -> dict:
    t0 = time.perf_counter()
    res = run_stage(stage, params, outputs_root=outputs, log=lambda _m: None)
    wall = time.perf_counter() - t0
    nb = nbformat.read(str(res.run_dir / "notebook.ipynb"), as_version=4)
    cells = sum(float(c.metadata.get("papermill", {}).get("duration") or 0.0) for c in nb.cells)
    t1 = time.perf_counter()
    export_html(res.run_dir / "notebook.ipynb", Path(tempfile.mkdtemp()) / "r.html")
    html = time.perf_counter() - t1
    return {"wall_s": wall, "cells_s": cells, "overhead_s": wall - cells, "html_s": html, "rest_s": wall - cells - html}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/ci.yaml")
    ap.add_argument("--stages", nargs="*", default=None, help="default: the params file's pipeline")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", metavar="OUT", help="also write the numbers as JSON")
    args = ap.parse_args()
    params = load_params(args.params, ["runner.progress=false"])
    stages = args.stages or params.common.pipeline
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in stages:
            runs = [measure(stage, params, Path(tmp)) for _ in range(args.repeats)]
            results[stage] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"{'stage':<16}{'wall s':>9}{'cells s':>9}{'overhead s':>12}{'  of which HTML':>16}{'  kernel+rest':>14}   target <= {TARGET_S:g} s")
    ok = True
    for stage, r in results.items():
        verdict = "ok" if r["overhead_s"] <= TARGET_S else "OVER"
        ok &= verdict == "ok"
        print(f"{stage:<16}{r['wall_s']:>9.2f}{r['cells_s']:>9.2f}{r['overhead_s']:>12.2f}{r['html_s']:>16.2f}{r['rest_s']:>14.2f}   {verdict}")
    print(f"(median of {args.repeats} runs each; overhead = wall - sum of cell durations papermill recorded)")
    if args.json:
        Path(args.json).write_text(json.dumps({"target_s": TARGET_S, "repeats": args.repeats, "stages": results}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
