"""Capsule distances: point to segment, segment to box, clearance to obstacles and people."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.robots import get_robot_model
from vla_kit.safety.geometry import capsule_segments, human_distance, obstacle_clearance, point_segment_distance, segment_box_distance

coords = st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3).map(np.array)


def _brute_box(a, b, lo, hi, n=4001):
    t = np.linspace(0.0, 1.0, n)[:, None]
    p = a + t * (b - a)
    e = p - np.clip(p, lo, hi)
    return np.sqrt((e * e).sum(axis=1)).min()


def test_point_to_segment_distance_in_the_three_regions():
    a, b = np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    assert point_segment_distance(np.array([0.5, 2.0, 0.0]), a, b) == 2.0  # beside the middle
    assert point_segment_distance(np.array([-3.0, 4.0, 0.0]), a, b) == 5.0  # beyond the start
    assert point_segment_distance(np.array([1.0, 0.0, 3.0]), a, b) == 3.0  # at the end
    assert point_segment_distance(np.array([1.0, 1.0, 1.0]), a, a) == math.sqrt(3.0)  # a degenerate segment is a point


@settings(max_examples=300, deadline=None)
@given(a=coords, b=coords, lo=coords, size=st.lists(st.floats(0.01, 1.5), min_size=3, max_size=3).map(np.array),
       flat=st.sampled_from([None, 0, 1, 2, "point"]))
def test_segment_to_box_distance_is_exact(a, b, lo, size, flat):
    if flat == "point":
        b = a.copy()
    elif flat is not None:
        b[flat] = a[flat]  # parallel to a face
    hi = lo + size
    exact = segment_box_distance(a, b, lo, hi)
    brute = _brute_box(a, b, lo, hi)
    assert exact <= brute + 1e-12  # never more than any sampled point's distance
    assert exact >= brute - np.linalg.norm(b - a) / 4000  # and no less than sampling can miss


def test_a_segment_through_a_box_touches_it():
    assert segment_box_distance(np.array([-1.0, 0.5, 0.5]), np.array([2.0, 0.5, 0.5]), np.zeros(3), np.ones(3)) == 0.0


def test_batches_broadcast():
    a = np.random.default_rng(0).uniform(-1, 1, (4, 5, 1, 3))
    got = segment_box_distance(a, a + 0.1, np.zeros((2, 3)), np.ones((2, 3)))
    assert got.shape == (4, 5, 2)
    np.testing.assert_allclose(got[1, 2, 1], segment_box_distance(a[1, 2, 0], a[1, 2, 0] + 0.1, np.zeros(3), np.ones(3)))


def test_obstacle_clearance_subtracts_the_radii():
    starts, ends = np.array([[0.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 1.0]])
    radii = np.array([0.1])
    spheres = (np.array([[1.0, 0.0, 0.5]]), np.array([0.2]))
    boxes = (np.array([[0.0, 2.0, 0.0]]), np.array([[1.0, 3.0, 1.0]]))
    assert obstacle_clearance(starts, ends, radii, spheres, None) == 1.0 - 0.2 - 0.1
    assert obstacle_clearance(starts, ends, radii, None, boxes) == 2.0 - 0.1
    assert obstacle_clearance(starts, ends, radii, spheres, boxes) == 1.0 - 0.2 - 0.1
    assert obstacle_clearance(starts, ends, radii, None, None) == math.inf


def test_people_are_measured_to_the_capsule_surface():
    panda = get_robot_model("panda")
    starts, ends = capsule_segments(panda.forward(np.zeros(7)))
    assert starts.shape == (8, 3) and np.array_equal(starts[1:], ends[:-1])
    radii = np.full(8, 0.1)
    assert human_distance(np.zeros((0, 3)), starts, ends, radii) == math.inf
    assert human_distance(np.array([[0.0, 0.0, 0.2]]), starts, ends, radii) == 0.0  # inside the base capsule
    far = human_distance(np.array([[3.0, 0.0, 0.5]]), starts, ends, radii)
    assert 2.0 < far < 3.0


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.sampled_from([1, 3, 40]), boxes=st.integers(1, 3))
def test_the_two_segment_box_implementations_agree_bit_for_bit(seed, batch, boxes):
    from vla_kit.safety.geometry import _segment_box_all_axes, _segment_box_by_axis

    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (batch, 8, 1, 3))
    b = a + rng.uniform(-0.5, 0.5, a.shape) * (rng.random(a.shape) < 0.8)  # some coordinates parallel to a face
    lo = rng.uniform(-1, 0.5, (boxes, 3))
    hi = lo + rng.uniform(0.01, 1.0, (boxes, 3))
    assert np.array_equal(_segment_box_all_axes(a, b, lo, hi), _segment_box_by_axis(a, b, lo, hi))
