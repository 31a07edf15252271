"""``vla-kit safety``: filter a command stream through the safety layer; audit a recorded trajectory.

::

    vla-kit safety filter --params P --input raw.npz --output safe.npz
    vla-kit safety audit  --params P --input log.npz [--json OUT] [--rows N]

``filter`` reads ``q0`` (measured joint positions, robot at rest) and ``q_target`` (N × joints,
one commanded position per ``dt``), optionally ``humans`` (N × H × 3 person positions, m, for
separation monitoring), filters them in order assuming the robot follows what was sent, and
writes ``q_sent``, ``intervened``, ``level``, ``estop`` (per step), ``q0`` and the envelope it
applied (``dt``, per joint ``q_min``, ``q_max``, ``v_max``, ``a_max``, ``j_max``, ``max_step``,
``joint_names``) — atomically (temporary file, then rename).

``audit`` reads ``q`` (or ``q_sent``), optional ``dt`` (scalar or one per interval) or ``t``
(timestamps) and ``q0`` (start at rest), and lists every envelope violation
(:mod:`vla_kit.safety.audit`).

Exit codes: **0** success (audit: clean) · **1** the audit found violations · **2** bad usage,
params or input (the message names the file, the key and the shape got vs expected).
"""

from __future__ import annotations

import argparse
import json
import math
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["register"]

_EXIT_CODES = "exit codes: 0 success (audit: clean), 1 audit found violations, 2 bad usage, params or input"


def register(subparsers: Any) -> None:
    """Add ``vla-kit safety {filter,audit}`` to the top-level subparsers."""
    p = subparsers.add_parser("safety", help="filter a command stream through the safety layer, or audit a recorded trajectory",
                              description="Filter a command stream through the safety layer, or audit a recorded trajectory.",
                              epilog=_EXIT_CODES)
    sub = p.add_subparsers(dest="safety_command", required=True, metavar="SUBCOMMAND")
    f = sub.add_parser("filter", help="filter commanded joint targets (npz) through the safety layer", epilog=_EXIT_CODES,
                       description="Filter q_target (N x joints) from q0 (at rest) through the layer; write q_sent, intervened, "
                                   "level, estop and the applied envelope.")
    _common(f)
    f.add_argument("--output", required=True, metavar="FILE", help="where to write the filtered stream (.npz)")
    a = sub.add_parser("audit", help="list every envelope violation of a recorded joint trajectory (exit 1 if any)", epilog=_EXIT_CODES,
                       description="List every envelope violation of q (or q_sent), N x joints, with optional dt or t and q0.")
    _common(a)
    a.add_argument("--json", metavar="OUT", help="also write every violation as JSON to OUT")
    a.add_argument("--rows", type=int, default=20, metavar="N", help="violations printed in the table (default 20)")
    a.add_argument("--max-records", type=int, default=100_000, metavar="N",
                   help="violations written to the JSON (default 100000; counts are always complete)")
    p.set_defaults(handler=run)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", required=True, metavar="FILE", help="params YAML with a safety: section (e.g. params/demo.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter, e.g. --set safety.on_violation=reject (repeatable)")
    p.add_argument("--input", required=True, metavar="FILE", help="input .npz")


def run(args: argparse.Namespace) -> int:
    """Run ``vla-kit safety <subcommand>``; returns the exit code (errors raise VlaKitError)."""
    from vla_kit.params import load_params

    envelope = load_params(args.params, args.overrides).safety
    if args.safety_command == "filter":
        return _filter(envelope, Path(args.input), Path(args.output))
    return _audit(envelope, Path(args.input), args)


# ---------------------------------------------------------------------------------- npz input


def _load(path: Path) -> dict[str, Any]:
    import numpy as np

    from vla_kit.errors import InputError

    if not path.is_file():
        raise InputError(str(path), "no such file (expected a .npz archive written by numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(str(path), f"not a readable .npz archive of plain arrays ({exc})") from None


def _array(data: dict[str, Any], key: str, path: Path, shape: tuple[Any, ...], *, finite: bool = False,
           required: bool = True) -> Any:
    """``data[key]`` as float64 with ``shape``, or an InputError naming file, key and shapes.

    ``None`` in ``shape``: any length >= 1 (shown as N); -1: any length (shown as H).
    """
    import numpy as np

    from vla_kit.errors import InputError

    want = "(" + ", ".join("N" if s is None else "H" if s == -1 else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if key not in data:
        if not required:
            return None
        raise InputError(f"{path}: key {key!r}", f"missing; expected an array of shape {want} (keys present: {', '.join(sorted(data)) or 'none'})")
    try:
        arr = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: key {key!r}", f"expected numbers of shape {want}, got dtype {data[key].dtype}") from None
    fits = arr.ndim == len(shape) and all((s is None and d >= 1) or s == -1 or d == s for s, d in zip(shape, arr.shape))
    if not fits:
        raise InputError(f"{path}: key {key!r}", f"got shape {arr.shape}, expected {want}")
    if finite and not np.isfinite(arr).all():
        raise InputError(f"{path}: key {key!r}", "expected finite values (a measured position), got NaN or inf")
    return arr


# ---------------------------------------------------------------------------------- filter


def _filter(envelope: Any, src: Path, out: Path) -> int:
    import numpy as np

    from vla_kit.errors import InputError
    from vla_kit.robots import get_robot_model
    from vla_kit.safety import Level, RobotState, SafetyLayer
    from vla_kit.safety.logfile import envelope_arrays, save_npz_atomic

    model = get_robot_model(envelope.robot)
    n = model.dof
    data = _load(src)
    q0 = _array(data, "q0", src, (n,), finite=True)
    targets = _array(data, "q_target", src, (None, n))
    steps = targets.shape[0]
    humans = _array(data, "humans", src, (steps, -1, 3), required=False)
    if not out.parent.is_dir():
        raise InputError(str(out), f"the folder {out.parent} does not exist")
    layer = SafetyLayer(envelope, model)
    sent = np.empty((steps, n))
    intervened = np.zeros(steps, dtype=bool)
    level = np.zeros(steps, dtype=np.int8)
    estop = np.zeros(steps, dtype=bool)
    measured = q0
    for k in range(steps):
        d = layer.filter(targets[k], RobotState(q=measured, humans=None if humans is None else humans[k]), envelope.period)
        sent[k] = d.command_sent
        intervened[k], level[k], estop[k] = d.intervened, int(d.level), d.estop_latched
        measured = d.command_sent
    arrays = {"q_sent": sent, "intervened": intervened, "level": level, "estop": estop, "q0": q0, **envelope_arrays(envelope)}
    save_npz_atomic(out, arrays)
    worst = Level(int(level.max())) if steps else Level.SAFE
    first_stop = int(np.argmax(estop)) if estop.any() else None
    print(f"filtered {steps} commands for {envelope.robot} at dt = {envelope.period:g} s -> {out}")
    print(f"  intervened {int(intervened.sum())} ({intervened.mean() if steps else 0.0:.1%}), worst level {worst.name}"
          + (f", e-stop latched at step {first_stop}" if first_stop is not None else ""))
    return 0


# ---------------------------------------------------------------------------------- audit


def _audit(envelope: Any, src: Path, args: argparse.Namespace) -> int:
    from vla_kit.errors import InputError
    from vla_kit.robots import get_robot_model
    from vla_kit.safety.audit import audit_trajectory

    model = get_robot_model(envelope.robot)
    data = _load(src)
    key = "q" if "q" in data else "q_sent" if "q_sent" in data else "q"
    q = _array(data, key, src, (None, model.dof))
    if "dt" in data and "t" in data:
        raise InputError(f"{src}: keys 'dt' and 't'", "give the period (dt) or the timestamps (t), not both")
    q0 = _array(data, "q0", src, (model.dof,), required=False)
    try:
        report = audit_trajectory(envelope, q, dt=data.get("dt"), t=data.get("t"), q0=q0, model=model)
    except InputError as exc:
        raise InputError(f"{src}: key {exc.what!r}", exc.problem) from None
    print(f"audit of {src}: {report.samples} samples of {envelope.robot} against the envelope of {args.params}")
    print(report.table(max(args.rows, 0)))
    if args.json:
        _write_json_atomic(Path(args.json), report.as_dict(max_records=max(args.max_records, 0)))
        print(f"violations written to {args.json}")
    return 0 if report.clean else 1


def _write_json_atomic(path: Path, data: Any) -> None:
    def clean(x: Any) -> Any:  # JSON has no NaN/inf: write null
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    from vla_kit.reports.context import write_text_atomic

    write_text_atomic(path, json.dumps(clean(data), indent=1, allow_nan=False) + "\n")
