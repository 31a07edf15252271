"""The ``.npz`` files the safety commands read and write: written atomically, self-describing.

``vla-kit safety filter`` writes one; every episode of ``safety_validate`` is kept as one
(:mod:`vla_kit.validate.traces`); ``vla-kit safety audit`` reads either. A file carries the
envelope it was filtered under (:func:`envelope_arrays`), so it explains itself without the params.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vla_kit.safety.envelope import Envelope

__all__ = ["ENVELOPE_KEYS", "envelope_arrays", "save_npz_atomic"]

ENVELOPE_KEYS = ("q_min", "q_max", "v_max", "a_max", "j_max", "max_step")  # per joint


def envelope_arrays(envelope: Envelope) -> dict[str, np.ndarray]:
    """The joint envelope as arrays: ``dt`` (s), ``joint_names`` and per joint :data:`ENVELOPE_KEYS`."""
    lim = envelope.limits
    out = {"dt": np.float64(envelope.period), "joint_names": np.array(lim.names)}
    out.update({k: np.array(getattr(lim, k)) for k in ENVELOPE_KEYS})
    return out


def save_npz_atomic(path: Path, arrays: Mapping[str, Any], *, compressed: bool = False) -> None:
    """Write ``arrays`` to ``path`` (``numpy.savez``, or ``savez_compressed``) through a temporary
    file in the same folder and a rename: a reader never sees half a file, a failure leaves none."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save = np.savez_compressed if compressed else np.savez
    try:
        with open(tmp, "wb") as fh:
            save(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
