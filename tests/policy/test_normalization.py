"""Mean/std statistics: measurement, the std floor, and the normalise/de-normalise pair."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError

from vla_kit.errors import InputError
from vla_kit.policy.normalization import NormStats, compute_norm_stats


def test_stats_are_per_dimension_mean_and_std():
    data = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 16.0]])
    stats = compute_norm_stats(data)
    np.testing.assert_allclose(stats.mean, [2.0, 12.0])
    np.testing.assert_allclose(stats.std, data.std(axis=0))
    assert stats.count == 3 and stats.dim == 2


def test_constant_dimension_gets_the_std_floor():
    data = np.column_stack([np.linspace(0, 1, 50), np.full(50, 0.04)])
    stats = compute_norm_stats(data, std_floor=0.01)
    assert stats.std[1] == 0.01 and stats.std_floor == 0.01
    # A deviation the data never showed stays a moderate number instead of exploding.
    assert abs(stats.normalize(np.array([0.5, 0.05]))[1]) == pytest.approx(1.0)


def test_every_leading_axis_counts_as_samples():
    chunks = np.random.default_rng(0).normal(size=(20, 8, 7))
    assert compute_norm_stats(chunks) == compute_norm_stats(chunks.reshape(-1, 7))


def test_a_list_of_episodes_equals_their_concatenation():
    rng = np.random.default_rng(0)
    episodes = [rng.normal(size=(n, 3)) for n in (5, 9, 2)]
    a, b = compute_norm_stats(episodes), compute_norm_stats(np.concatenate(episodes))
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.std, b.std)
    assert a.count == b.count == 16


@pytest.mark.parametrize(
    "data, problem",
    [
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.empty((0, 3)), "no samples"),
        ([np.zeros((2, 3)), np.zeros((2, 4))], "dimensions"),
        (np.float64(1.0), "scalar"),
    ],
)
def test_bad_data_is_an_input_error(data, problem):
    with pytest.raises(InputError, match=problem):
        compute_norm_stats(data)


def test_non_positive_floor_is_an_input_error():
    with pytest.raises(InputError, match="std_floor"):
        compute_norm_stats(np.zeros((3, 2)), std_floor=0.0)


def test_stored_std_below_its_floor_is_rejected():
    with pytest.raises(ValidationError, match="std_floor"):
        NormStats(mean=(0.0,), std=(1e-6,), std_floor=1e-3)


def test_normalising_values_of_the_wrong_width_is_an_input_error():
    with pytest.raises(InputError, match="last axis of 2"):
        NormStats.identity(2).normalize(np.zeros(3))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=st.floats(-1e3, 1e3)))
def test_denormalize_undoes_normalize(data):
    stats = compute_norm_stats(data)
    round_trip = stats.denormalize(stats.normalize(data))
    np.testing.assert_allclose(round_trip, data.astype(np.float32), rtol=1e-5, atol=1e-3)
