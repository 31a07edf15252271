"""Per-dimension mean/std statistics for proprioception and actions.

The network sees proprio and predicts actions in normalised units (zero mean, unit std per
dimension over the training set). :func:`compute_norm_stats` measures the statistics from dataset
arrays; :class:`NormStats` stores them in ``policy.json`` and applies them.

The std has a floor: a dimension that never moved in the data (a joint the expert never used, a
gripper always closed) has std ~0, and dividing by it would turn sensor noise at deployment into
enormous inputs. With the floor, such a dimension's normalised value stays small and finite.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vla_kit.errors import InputError

__all__ = ["NormStats", "compute_norm_stats", "DEFAULT_STD_FLOOR"]

DEFAULT_STD_FLOOR = 1e-3  # in the data's own units (m, rad, gripper fraction)


class NormStats(BaseModel):
    """Mean and std per dimension, in the data's units. Frozen; validated on construction.

    ``std`` is stored with the floor already applied, so ``normalize`` divides by it directly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: tuple[float, ...]  # per dimension, data units
    std: tuple[float, ...]  # per dimension, data units, each >= std_floor
    std_floor: float = Field(DEFAULT_STD_FLOOR, gt=0)  # smallest std allowed, data units
    count: int = Field(0, ge=0)  # samples the statistics were measured on (0 = not measured)

    @model_validator(mode="after")
    def _consistent(self) -> "NormStats":
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean and std need the same non-zero length, got {len(self.mean)} and {len(self.std)}")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise ValueError("mean and std must be finite")
        low = [i for i, s in enumerate(self.std) if s < self.std_floor]
        if low:
            raise ValueError(f"std below std_floor={self.std_floor} at dimensions {low}")
        return self

    @property
    def dim(self) -> int:
        """Number of dimensions."""
        return len(self.mean)

    @classmethod
    def identity(cls, dim: int) -> "NormStats":
        """Statistics that leave values unchanged (mean 0, std 1): for tests and hand-made policies."""
        return cls(mean=(0.0,) * dim, std=(1.0,) * dim)

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """``(values - mean) / std`` over the last axis, as ``float32``.

        Raises:
            InputError: the last axis is not :attr:`dim` long.
        """
        values = self._check(values)
        return ((values - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """``values * std + mean`` over the last axis, as ``float32``.

        Raises:
            InputError: the last axis is not :attr:`dim` long.
        """
        values = self._check(values)
        return (values * np.asarray(self.std) + np.asarray(self.mean)).astype(np.float32)

    def _check(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 0 or values.shape[-1] != self.dim:
            raise InputError("values", f"expected a last axis of {self.dim}, got shape {values.shape}")
        return values


def compute_norm_stats(
    data: np.ndarray | Iterable[np.ndarray], *, std_floor: float = DEFAULT_STD_FLOOR
) -> NormStats:
    """Per-dimension mean and std of a dataset column.

    Args:
        data: one array ``[..., D]`` (every leading axis counts as samples, so ``[N, D]`` proprio
            and ``[N, T, D]`` action chunks both work) or an iterable of such arrays with the same
            ``D`` (e.g. one per episode).
        std_floor: smallest std kept (data units); smaller ones are raised to it.

    Returns:
        The statistics, with ``count`` = number of samples.

    Raises:
        InputError: no samples, mismatched widths, or a NaN/inf value.
    """
    if not (isinstance(std_floor, (int, float)) and math.isfinite(std_floor) and std_floor > 0):
        raise InputError("std_floor", f"expected a finite number > 0, got {std_floor!r}")
    parts = [data] if isinstance(data, (np.ndarray, np.generic)) else list(data)
    rows = []
    for i, part in enumerate(parts):
        arr = np.asarray(part, dtype=np.float64)
        if arr.ndim == 0:
            raise InputError(f"data[{i}]", "expected an array with a last axis of dimensions, got a scalar")
        if rows and arr.shape[-1] != rows[0].shape[-1]:
            raise InputError(f"data[{i}]", f"has {arr.shape[-1]} dimensions; the first array has {rows[0].shape[-1]}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"data[{i}]", "contains NaN or infinite values")
        rows.append(arr.reshape(-1, arr.shape[-1]))
    samples = np.concatenate(rows) if rows else np.empty((0, 0))
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise InputError("data", "no samples to compute statistics from")
    # float64 throughout: a million float32 rows would otherwise lose digits in the sum.
    mean = samples.mean(axis=0)
    std = np.maximum(samples.std(axis=0), std_floor)
    return NormStats(
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        std_floor=float(std_floor),
        count=int(samples.shape[0]),
    )
