"""EE_DELTA checking and clipping: refuse malformed or non-finite, keep in-limit, scale oversized."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vla_kit.errors import InputError
from vla_kit.sim.action import as_ee_delta, clip_ee_delta

MAX_T, MAX_R = 0.03, 0.2

any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
finite_actions = hnp.arrays(np.float64, 7, elements=st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))
actions_with_a_bad_entry = hnp.arrays(np.float64, 7, elements=any_float).filter(lambda a: not np.all(np.isfinite(a)))


@given(finite_actions)
def test_clipped_action_respects_every_limit(action: np.ndarray) -> None:
    out, _ = clip_ee_delta(as_ee_delta(action), max_translation=MAX_T, max_rotation=MAX_R)
    assert np.linalg.norm(out[:3]) <= MAX_T * (1 + 1e-12)
    assert np.linalg.norm(out[3:6]) <= MAX_R * (1 + 1e-12)
    assert 0.0 <= out[6] <= 1.0


@given(finite_actions)
def test_oversized_motion_is_scaled_along_its_own_direction(action: np.ndarray) -> None:
    out, clipped = clip_ee_delta(as_ee_delta(action), max_translation=MAX_T, max_rotation=MAX_R)
    for part, limit in ((slice(0, 3), MAX_T), (slice(3, 6), MAX_R)):
        n = np.linalg.norm(action[part])
        if n > limit:
            assert clipped
            np.testing.assert_allclose(out[part], action[part] * (limit / n), rtol=1e-9, atol=1e-15)


# Bounds exact in float32 whose 3-vector norms stay inside the limits: sqrt(3)/64 < 0.03 m and
# 0.109375 * sqrt(3) < 0.2 rad.
@given(
    hnp.arrays(np.float32, 3, elements=st.floats(-0.015625, 0.015625, width=32)),
    hnp.arrays(np.float32, 3, elements=st.floats(-0.109375, 0.109375, width=32)),
    st.floats(0.0, 1.0, width=32),
)
def test_in_limit_action_is_returned_unchanged(t: np.ndarray, r: np.ndarray, g: float) -> None:
    action = np.concatenate([t, r, [g]]).astype(np.float32)
    out, clipped = clip_ee_delta(as_ee_delta(action), max_translation=MAX_T, max_rotation=MAX_R)
    assert not clipped
    assert out.astype(np.float32).tobytes() == action.tobytes()


@given(actions_with_a_bad_entry)
def test_non_finite_action_is_refused(action: np.ndarray) -> None:
    with pytest.raises(InputError, match="non-finite values at indices"):
        as_ee_delta(action)


@pytest.mark.parametrize("bad", [np.zeros(6), np.zeros((1, 7)), [0.0] * 8, "forward", None, [[0.0], [1.0]]])
def test_malformed_action_is_refused(bad: object) -> None:
    with pytest.raises(InputError, match="^action: "):
        as_ee_delta(bad)


def test_gripper_command_is_clamped_to_open_and_closed() -> None:
    high, clipped_high = clip_ee_delta(as_ee_delta([0, 0, 0, 0, 0, 0, 3.0]), max_translation=MAX_T, max_rotation=MAX_R)
    low, clipped_low = clip_ee_delta(as_ee_delta([0, 0, 0, 0, 0, 0, -1.0]), max_translation=MAX_T, max_rotation=MAX_R)
    assert (high[6], low[6], clipped_high, clipped_low) == (1.0, 0.0, True, True)


def test_as_ee_delta_copies_so_callers_arrays_are_never_changed() -> None:
    original = np.zeros(7)
    checked = as_ee_delta(original)
    checked[0] = 5.0
    assert original[0] == 0.0
