"""Checking and clipping ``EE_DELTA`` actions before the simulator executes them.

Pure functions, kept apart from the physics so their guarantees can be tested exhaustively: a
non-finite or malformed action is refused whole (nothing moves), an in-limit action comes back
unchanged, and an oversized one is scaled down along its own direction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vla_kit.errors import InputError
from vla_kit.sim.geometry import clip_norm
from vla_kit.types import ACTION_DIMS, ActionSpace

__all__ = ["EE_DELTA_DIM", "as_ee_delta", "clip_ee_delta"]

EE_DELTA_DIM: int = ACTION_DIMS[ActionSpace.EE_DELTA]  # type: ignore[assignment]


def as_ee_delta(action: Any) -> np.ndarray:
    """Check that ``action`` is 7 finite numbers and return them as ``float64 (7,)``.

    Args:
        action: ``(dx, dy, dz, rx, ry, rz, gripper)`` as any array-like.

    Returns:
        A new float64 array.

    Raises:
        InputError: non-numeric, wrong shape, or NaN/infinite entries (named by index).
    """
    try:
        a = np.array(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("action", f"expected {EE_DELTA_DIM} numbers, got {type(action).__name__}") from None
    if a.shape != (EE_DELTA_DIM,):
        raise InputError("action", f"expected shape ({EE_DELTA_DIM},) for {ActionSpace.EE_DELTA.value}, got {a.shape}")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise InputError("action", f"non-finite values at indices {bad.tolist()}; refusing to move")
    return a


def clip_ee_delta(action: np.ndarray, *, max_translation: float, max_rotation: float) -> tuple[np.ndarray, bool]:
    """Limit one checked ``EE_DELTA`` action to what the arm may do in one step.

    The translation and the rotation vector are each scaled down to their maximum norm, which
    keeps the direction of motion; the gripper command is clamped to ``[0, 1]``.

    Args:
        action: output of :func:`as_ee_delta`.
        max_translation: largest allowed norm of ``(dx, dy, dz)``, m.
        max_rotation: largest allowed norm of ``(rx, ry, rz)``, rad.

    Returns:
        ``(executed, clipped)``: the action to execute (float64 ``(7,)``, equal to ``action``
        when in limits) and whether anything was changed.
    """
    executed = np.empty_like(action)
    executed[:3] = clip_norm(action[:3], max_translation)
    executed[3:6] = clip_norm(action[3:6], max_rotation)
    executed[6] = min(max(float(action[6]), 0.0), 1.0)
    return executed, not np.array_equal(executed, action)
