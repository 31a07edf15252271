"""Every episode of the battery on disk, in the format ``vla-kit safety audit`` reads.

The report plots one episode per scenario; a reviewer who wants another — the one a gate check
failed on, a seed from last month's run — finds each under the run's
``artifacts/traces/<scenario>/seed-<seed>.npz``, next to ``seed-<seed>.yaml``: the exact envelope
the layer ran under in that episode (the simulated arm's period, and the ``obstacle``
scenario's keep-out sphere), as a params file. So the episode can be audited again, independently
of the layer and of the report::

    vla-kit safety audit --params artifacts/traces/spike/seed-777000.yaml \\
                         --input  artifacts/traces/spike/seed-777000.npz

which finds exactly the envelope violations the battery counted for that episode (the battery
adds measured positions beyond the robot's hard limits and non-finite commands that reached the
arm, which the file records as ``q_meas`` and ``robot_faults``).

Keys: ``q`` (what the arm received, ``N × 7`` rad; where a non-finite command arrived the arm held
its previous target), ``q0`` (measured start, at rest), ``dt`` (s) and the joint envelope
(:func:`vla_kit.safety.logfile.envelope_arrays`); ``q_target`` (what the loop commanded the
layer), ``q_meas``, ``t_cycle`` (s), ``level``, ``intervened``, ``estop``, ``human_distance`` and
``protective`` (m, NaN without a person), ``injected_<fault>`` (cycles a fault was present at the
layer; ``injected_stale_frame``: the camera's newest frame was older than the loop's limit
``max_frame_age``, s), ``camera_age`` and ``frame_age`` (s: the camera's newest frame when the
cycle began, and the frame behind the row the cycle executed when the policy saw it, NaN where
the loop held), the episode's ``seed``, ``success`` and ``robot_faults``; ``q_sent`` (what the
layer sent) only when it differs from ``q``: a non-finite command reached the arm with the layer bypassed.
Compressed; float64 throughout, so the audit sees the same bits the battery judged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from vla_kit.reports.context import write_text_atomic
from vla_kit.safety.logfile import envelope_arrays, save_npz_atomic
from vla_kit.validate.episode import EpisodeTrace

__all__ = ["trace_arrays", "save_trace"]


def trace_arrays(trace: EpisodeTrace) -> dict[str, np.ndarray]:
    """The arrays of one episode's file (see the module docstring)."""
    q = trace.received()
    out = {
        "q": q, "q0": np.asarray(trace.q0, dtype=np.float64), **envelope_arrays(trace.envelope),
        "dt": np.float64(trace.dt),  # the period the battery judged with (the envelope's, to within 1e-9)
        "q_target": trace.q_cmd, "q_meas": trace.q_meas, "t_cycle": trace.t,
        "level": trace.level, "intervened": trace.intervened, "estop": trace.estop,
        "human_distance": trace.human_distance, "protective": trace.protective,
        "camera_age": trace.camera_age, "frame_age": trace.frame_age, "max_frame_age": np.float64(trace.max_frame_age),
        "seed": np.int64(trace.seed), "success": np.bool_(trace.success), "robot_faults": np.int64(trace.robot_faults),
    }
    if not np.array_equal(trace.q_sent, q):  # only when a non-finite command reached the arm (the layer bypassed)
        out["q_sent"] = trace.q_sent
    out.update({f"injected_{kind}": np.asarray(mask, dtype=bool) for kind, mask in trace.injected.items()})
    return out


def save_trace(trace: EpisodeTrace, folder: Path, deployment: str) -> Path:
    """Write ``seed-<seed>.npz`` and its envelope ``seed-<seed>.yaml`` into ``folder`` (created);
    both atomically. Returns the ``.npz`` path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"seed-{trace.seed}"
    params = {
        "deployment": deployment,
        "description": f"the safety envelope of one safety_validate episode (seed {trace.seed}), for `vla-kit safety audit`",
        "safety": trace.envelope.model_dump(mode="json"),
    }
    write_text_atomic(folder / f"{stem}.yaml", yaml.safe_dump(params, sort_keys=False))
    npz = folder / f"{stem}.npz"
    save_npz_atomic(npz, trace_arrays(trace), compressed=True)
    return npz
