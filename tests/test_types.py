from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.types import ActionChunk, ActionSpace, Observation


def _obs(**kw):
    base = dict(images={"front": np.zeros((8, 8, 3), np.uint8)}, instruction="pick up the red cube", proprio=np.zeros(4))
    base.update(kw)
    return Observation(**base)


def test_valid_observation_casts_proprio_to_float32():
    assert _obs().proprio.dtype == np.float32


@pytest.mark.parametrize(
    "kw, where",
    [
        ({"images": {"front": np.zeros((8, 8, 3), np.float32)}}, "dtype uint8"),
        ({"images": {"front": np.zeros((8, 8), np.uint8)}}, "shape (H, W, 3)"),
        ({"proprio": np.array([0.0, np.nan])}, "NaN"),
        ({"proprio": np.zeros((2, 2))}, "1-D"),
        ({"instruction": 3}, "expected str"),
    ],
)
def test_malformed_observation_names_the_problem(kw, where):
    with pytest.raises(InputError, match=where.replace("(", r"\(").replace(")", r"\)")):
        _obs(**kw)


def test_action_chunk_checks_width_of_fixed_spaces():
    c = ActionChunk(np.zeros((5, 7)), ActionSpace.EE_DELTA)
    assert c.horizon == 5 and c.actions.dtype == np.float32
    with pytest.raises(InputError, match="7 columns"):
        ActionChunk(np.zeros((5, 6)), ActionSpace.EE_DELTA)
    with pytest.raises(InputError, match="T>=1"):
        ActionChunk(np.zeros((0, 7)), "ee_delta")
