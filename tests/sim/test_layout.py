"""Cube layouts: spacing rules, workspace bounds, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vla_kit.errors import InputError
from vla_kit.sim.layout import (
    COLOURS,
    CORRIDOR_GAP,
    CUBE_HALF_EXTENT,
    CUBE_REGION_HIGH,
    CUBE_REGION_LOW,
    LANE_GAP,
    check_colour,
    sample_layout,
)


def test_cubes_never_overlap_and_keep_the_spacing_rules() -> None:
    for seed in range(400):
        layout = sample_layout(np.random.default_rng(seed))
        for a, b in itertools.combinations(layout.values(), 2):
            d = np.abs(a - b)
            assert d[0] >= LANE_GAP or d[1] >= CORRIDOR_GAP
            # Axis-aligned cubes overlap only if both x and y extents overlap.
            assert max(d) > 2 * CUBE_HALF_EXTENT


def test_cubes_are_placed_inside_the_reachable_region() -> None:
    for seed in range(400):
        for xy in sample_layout(np.random.default_rng(seed)).values():
            assert np.all(xy >= CUBE_REGION_LOW) and np.all(xy <= CUBE_REGION_HIGH)
            # The Panda reaches ~0.85 m from its shoulder; keep cubes well inside that.
            assert np.hypot(*xy) < 0.72


def test_every_colour_gets_one_cube() -> None:
    assert tuple(sample_layout(np.random.default_rng(3))) == COLOURS


def test_same_generator_state_gives_the_same_layout() -> None:
    a = sample_layout(np.random.default_rng(11))
    b = sample_layout(np.random.default_rng(11))
    c = sample_layout(np.random.default_rng(12))
    assert all(np.array_equal(a[k], b[k]) for k in COLOURS)
    assert not all(np.array_equal(a[k], c[k]) for k in COLOURS)


def test_impossible_layout_raises_instead_of_hanging() -> None:
    too_many = tuple(f"c{i}" for i in range(40))
    with pytest.raises(InputError, match="could not place 40 cubes"):
        sample_layout(np.random.default_rng(0), too_many)


def test_unknown_colour_is_an_input_error_naming_the_choices() -> None:
    assert check_colour("blue") == "blue"
    with pytest.raises(InputError, match="purple.*red, green, blue, yellow"):
        check_colour("purple")
