"""Compiled forward kinematics of a revolute chain: one loop per configuration, no temporaries.

Each joint ``i`` is ``cos(q_i) C_i + sin(q_i) S_i + K_i`` (see :mod:`vla_kit.robots.kinematics`);
the frames are the running products of those, then the tool transform. In numpy a single 7-DoF
pose costs about fifteen microseconds of per-call overhead, which the safety layer pays several
times a cycle; compiled (numba, cached next to this file) it is well under one. The arithmetic is
a plain 4x4 product, all four rows, so a non-finite joint value spreads exactly as it does in
numpy.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

__all__ = ["chain_frames", "fk_one"]


_RO3 = types.Array(types.float64, 3, "A", readonly=True)


@njit(cache=True)
def fk_one(q, cos_m, sin_m, const_m, tool, out) -> None:  # noqa: ANN001 - typed by its compiled callers
    """Fill ``out`` ``(n + 2, 4, 4)`` with the base, every joint frame and the TCP frame of one
    configuration ``q`` ``(n,)``; for other compiled code (the safety layer's Cartesian kernels)."""
    n = q.shape[0]
    joint = out[n + 1]  # each joint's transform is built in the TCP slot, which is written last (no allocation)
    for r in range(4):
        for c in range(4):
            out[0, r, c] = 1.0 if r == c else 0.0
    for i in range(n):
        cq, sq = math.cos(q[i]), math.sin(q[i])
        if i == 0:  # the first frame is the first joint's transform itself
            for r in range(4):
                for c in range(4):
                    out[1, r, c] = cq * cos_m[0, r, c] + sq * sin_m[0, r, c] + const_m[0, r, c]
            continue
        for r in range(4):
            for c in range(4):
                joint[r, c] = cq * cos_m[i, r, c] + sq * sin_m[i, r, c] + const_m[i, r, c]
        for r in range(4):
            for c in range(4):
                out[i + 1, r, c] = (out[i, r, 0] * joint[0, c] + out[i, r, 1] * joint[1, c]
                                    + out[i, r, 2] * joint[2, c] + out[i, r, 3] * joint[3, c])
    for r in range(4):
        for c in range(4):
            out[n + 1, r, c] = (out[n, r, 0] * tool[0, c] + out[n, r, 1] * tool[1, c]
                                + out[n, r, 2] * tool[2, c] + out[n, r, 3] * tool[3, c])


# One signature, compiled (or loaded from the cache) at import: never in a control cycle.
@njit(types.void(types.Array(types.float64, 2, "C", readonly=True), _RO3, _RO3, _RO3, types.Array(types.float64, 2, "A", readonly=True),
                 types.float64[:, :, :, ::1]), cache=True)
def chain_frames(q: np.ndarray, cos_m: np.ndarray, sin_m: np.ndarray, const_m: np.ndarray, tool: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` ``(B, n + 2, 4, 4)`` with the base, every joint frame and the TCP frame of ``q`` ``(B, n)``."""
    for b in range(q.shape[0]):
        fk_one(q[b], cos_m, sin_m, const_m, tool, out[b])
