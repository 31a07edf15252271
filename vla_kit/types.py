"""The plain data that flows between camera, policy, safety layer and robot.

``Observation`` is what a policy sees; ``ActionChunk`` is what it answers: ``T`` future actions in
one ``ActionSpace``. Both validate on construction so a malformed frame fails where it is made,
not deep inside a backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

import numpy as np

from vla_kit.errors import InputError

__all__ = ["ActionSpace", "Observation", "ActionChunk", "ACTION_DIMS"]


class ActionSpace(str, Enum):
    """Where an action lives.

    ``EE_DELTA``: end-effector delta position (m, base frame) [3], delta rotation as a rotation
    vector (rad, base frame) [3], gripper command in [0 = open, 1 = closed] [1].
    ``JOINT_DELTA``: joint position deltas (rad) per joint, plus gripper.
    ``JOINT_POSITION``: absolute joint position targets (rad) per joint, plus gripper.
    """

    EE_DELTA = "ee_delta"
    JOINT_DELTA = "joint_delta"
    JOINT_POSITION = "joint_position"


# Fixed action widths; joint spaces depend on the robot and are checked against it elsewhere.
ACTION_DIMS: dict[ActionSpace, int | None] = {
    ActionSpace.EE_DELTA: 7,
    ActionSpace.JOINT_DELTA: None,
    ActionSpace.JOINT_POSITION: None,
}


@dataclass(frozen=True)
class Observation:
    """One synchronised observation.

    Attributes:
        images: camera name -> RGB image, ``uint8`` array of shape ``(H, W, 3)``.
        instruction: the natural-language task, e.g. ``"pick up the red cube"``.
        proprio: robot proprioception, ``float32`` 1-D (layout defined by the robot / sim).
        timestamp: seconds (monotonic clock of the producer).
    """

    images: Mapping[str, np.ndarray]
    instruction: str
    proprio: np.ndarray
    timestamp: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.instruction, str):
            raise InputError("observation.instruction", f"expected str, got {type(self.instruction).__name__}")
        for name, img in self.images.items():
            where = f"observation.images[{name!r}]"
            if not isinstance(img, np.ndarray):
                raise InputError(where, f"expected a numpy array, got {type(img).__name__}")
            if img.dtype != np.uint8:
                raise InputError(where, f"expected dtype uint8, got {img.dtype}")
            if img.ndim != 3 or img.shape[2] != 3:
                raise InputError(where, f"expected shape (H, W, 3), got {img.shape}")
        proprio = np.asarray(self.proprio)
        if proprio.ndim != 1:
            raise InputError("observation.proprio", f"expected a 1-D array, got shape {proprio.shape}")
        if not np.all(np.isfinite(proprio)):
            raise InputError("observation.proprio", "contains NaN or infinite values")
        object.__setattr__(self, "proprio", proprio.astype(np.float32, copy=False))


@dataclass(frozen=True)
class ActionChunk:
    """``T`` future actions predicted at once.

    Attributes:
        actions: ``float32`` array of shape ``(T, action_dim)``; row 0 is executed first.
        space: the action space the rows live in.
        timestamp: when the chunk was produced (seconds, producer's monotonic clock).
        warnings: things the producer wants recorded (e.g. unknown words in the instruction).
    """

    actions: np.ndarray
    space: ActionSpace
    timestamp: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        a = np.asarray(self.actions)
        if a.ndim != 2 or a.shape[0] < 1:
            raise InputError("action_chunk.actions", f"expected shape (T>=1, action_dim), got {a.shape}")
        width = ACTION_DIMS[ActionSpace(self.space)]
        if width is not None and a.shape[1] != width:
            raise InputError("action_chunk.actions", f"{self.space.value} actions have {width} columns, got {a.shape[1]}")
        object.__setattr__(self, "actions", a.astype(np.float32, copy=False))
        object.__setattr__(self, "space", ActionSpace(self.space))

    @property
    def horizon(self) -> int:
        """Number of actions ``T`` in the chunk."""
        return int(self.actions.shape[0])
