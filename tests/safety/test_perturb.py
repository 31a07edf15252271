"""Image perturbations and action faults: deterministic, shape-preserving, and doing what they say."""

from __future__ import annotations

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.safety.perturb import ACTION_FAULTS, IMAGE_PERTURBATIONS, ActionFault, perturb_image


def _frame():
    rng = np.random.default_rng(0)
    return rng.integers(40, 200, size=(32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", list(IMAGE_PERTURBATIONS))
def test_image_perturbations_are_deterministic_and_change_the_frame(name):
    img = _frame()
    a = perturb_image(name, img, np.random.default_rng(1))
    b = perturb_image(name, img, np.random.default_rng(1))
    assert a.dtype == np.uint8 and a.shape == img.shape and np.array_equal(a, b)
    assert not np.array_equal(a, img) and np.array_equal(img, _frame())  # the input is untouched


def test_dark_and_overexposed_move_brightness_the_right_way():
    img = _frame()
    rng = np.random.default_rng(0)
    assert perturb_image("dark", img, rng).mean() < 0.2 * img.mean()
    assert perturb_image("overexposed", img, rng).mean() > 1.5 * img.mean()
    assert (perturb_image("occlusion", img, rng) == 128).all(axis=2).mean() > 0.3


def test_bad_perturbation_inputs_are_named():
    with pytest.raises(InputError, match="unknown 'fog'"):
        perturb_image("fog", _frame(), np.random.default_rng(0))
    with pytest.raises(InputError, match="uint8"):
        perturb_image("dark", _frame().astype(np.float32), np.random.default_rng(0))


@pytest.mark.parametrize("kind", ACTION_FAULTS)
def test_action_faults_only_act_inside_their_window(kind):
    fault = ActionFault(kind, start=2, length=2, magnitude=0.1)
    row = np.array([0.01, 0.0, -0.01, 0.0, 0.0, 0.05, 0.0], dtype=np.float32)
    assert fault.apply(1, row, None) is row and fault.apply(4, row, None) is row
    out = fault.apply(2, row, row * 3)
    assert out.shape == (7,) and not np.array_equal(out, row, equal_nan=True)


def test_action_fault_values():
    row = np.array([0.01, 0.02, -0.01, 0.1, 0.0, 0.0, 1.0], dtype=np.float32)
    assert np.isnan(ActionFault("nan-burst").apply(5, row, None)).all()
    assert np.allclose(ActionFault("sign-flip").apply(5, row, None)[:6], -row[:6])
    spike = ActionFault("spike", magnitude=0.3).apply(5, row, None)
    assert np.isclose(np.linalg.norm(spike[:3]), 0.3) and spike[2] < 0
    drift = ActionFault("drift", start=5, length=10, magnitude=0.01)
    assert np.linalg.norm(drift.apply(9, row, None)[:3] - row[:3]) > np.linalg.norm(drift.apply(5, row, None)[:3] - row[:3])
    with pytest.raises(InputError, match="unknown 'melt'"):
        ActionFault("melt")
    with pytest.raises(InputError, match="length"):
        ActionFault("spike", length=0)
