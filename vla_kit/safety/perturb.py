"""Faults and perturbations the safety_validate battery injects: images, instructions, policy actions.

Pure numpy and deterministic given a generator, so a scenario replays exactly. Nothing here knows
about the safety layer: these are the things that go wrong *upstream* of it.

Images (``uint8 (H, W, 3)`` in, a new array out):

===============  ====================================================================
``dark``         brightness scaled to 15 % (a lamp failed, a cloud, an aperture stuck)
``overexposed``  gain 3x, clipped (sun on the lens, auto-exposure lost)
``occlusion``    a grey rectangle over a third of the frame, placed by the generator
``motion-blur``  a 9-pixel horizontal box blur (the camera shook, long exposure)
``noise``        additive Gaussian noise, sigma 25 grey levels (sensor gain, bad cable)
===============  ====================================================================

Action faults (on the policy's ``EE_DELTA`` rows, from control step ``start`` for ``length`` steps):

=============  ==========================================================================
``nan-burst``  every value NaN (a numerical blow-up in the network or its runtime)
``spike``      the translation replaced by ``magnitude`` m straight down-and-out (a bit flip)
``frozen``     the row the policy gave when the fault began, repeated (a hung producer)
``drift``      a growing offset, ``magnitude`` m per step along -z (an integrator running away)
``sign-flip``  translation and rotation negated (a frame or wiring mistake)
=============  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from vla_kit.errors import InputError

__all__ = [
    "IMAGE_PERTURBATIONS",
    "ACTION_FAULTS",
    "perturb_image",
    "ActionFault",
]


def _dark(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (img.astype(np.float32) * 0.15).round().astype(np.uint8)


def _overexposed(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img.astype(np.float32) * 3.0, 0.0, 255.0).round().astype(np.uint8)


def _occlusion(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = img.copy()
    h, w = img.shape[:2]
    oh, ow = max(1, round(h * 0.58)), max(1, round(w * 0.58))  # 0.58^2 ~ a third of the frame
    y = int(rng.integers(0, h - oh + 1))
    x = int(rng.integers(0, w - ow + 1))
    out[y:y + oh, x:x + ow] = 128
    return out


def _motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = 9
    pad = np.pad(img.astype(np.float32), ((0, 0), (k // 2, k // 2), (0, 0)), mode="edge")
    csum = np.cumsum(pad, axis=1)
    csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
    out = (csum[:, k:] - csum[:, :-k]) / k
    return out.round().clip(0, 255).astype(np.uint8)


def _noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0.0, 25.0, size=img.shape).astype(np.float32)
    return noisy.round().clip(0, 255).astype(np.uint8)


IMAGE_PERTURBATIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "dark": _dark,
    "overexposed": _overexposed,
    "occlusion": _occlusion,
    "motion-blur": _motion_blur,
    "noise": _noise,
}


def perturb_image(name: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply the image perturbation ``name`` to an ``uint8 (H, W, 3)`` frame; returns a new array.

    Raises:
        InputError: unknown perturbation (lists the known ones) or a frame that is not ``uint8 (H, W, 3)``.
    """
    fn = IMAGE_PERTURBATIONS.get(name)
    if fn is None:
        raise InputError("image perturbation", f"unknown {name!r}; expected one of {', '.join(IMAGE_PERTURBATIONS)}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError("image", f"expected a uint8 (H, W, 3) frame, got {got}")
    return fn(image, rng)


ACTION_FAULTS = ("nan-burst", "spike", "frozen", "drift", "sign-flip")

# Direction of spikes and drift: down and out, towards the table in front of the robot.
_SPIKE_DIRECTION = np.array([0.6, 0.0, -0.8])


@dataclass(frozen=True)
class ActionFault:
    """A fault in the policy's output, active for control steps ``start .. start + length - 1``.

    Attributes:
        kind: one of :data:`ACTION_FAULTS`.
        start: first control step (0-based, counted over the episode) the fault is active.
        length: how many steps it lasts (``>= 1``).
        magnitude: metres for ``spike`` (the spike's length) and ``drift`` (offset added per
            step); unused by the others.
    """

    kind: str
    start: int = 5
    length: int = 3
    magnitude: float = 0.3

    def __post_init__(self) -> None:
        if self.kind not in ACTION_FAULTS:
            raise InputError("action fault", f"unknown {self.kind!r}; expected one of {', '.join(ACTION_FAULTS)}")
        if self.start < 0 or self.length < 1:
            raise InputError("action fault", f"expected start >= 0 and length >= 1, got start={self.start}, length={self.length}")
        if not np.isfinite(self.magnitude) or self.magnitude <= 0:
            raise InputError("action fault", f"expected a finite magnitude > 0 m, got {self.magnitude!r}")

    def active(self, step: int) -> bool:
        """Whether the fault corrupts control step ``step``."""
        return self.start <= step < self.start + self.length

    def apply(self, step: int, action: np.ndarray, frozen: np.ndarray | None) -> np.ndarray:
        """The row actually emitted at ``step``: ``action`` itself when inactive, else corrupted.

        Args:
            step: control step in the episode.
            action: the policy's row, ``float32 (7,)``.
            frozen: the row emitted just before the fault began (for ``frozen``); ``None``: ``action``.
        """
        if not self.active(step):
            return action
        out = np.array(action, dtype=np.float32, copy=True)
        if self.kind == "nan-burst":
            out[:] = np.nan
        elif self.kind == "spike":
            out[:3] = (self.magnitude * _SPIKE_DIRECTION).astype(np.float32)
        elif self.kind == "frozen":
            out = np.array(action if frozen is None else frozen, dtype=np.float32, copy=True)
        elif self.kind == "drift":
            k = step - self.start + 1
            out[:3] += (k * self.magnitude * _SPIKE_DIRECTION).astype(np.float32)
        else:  # sign-flip
            out[:6] = -out[:6]
        return out
