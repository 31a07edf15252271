"""Judging a candidate: the worker's measurements, the action-error check and the paired success interval.

The worker tests run ``python -m vla_kit.optimize.judge`` for real on the small parent artifact
(a few seconds each); everything else is pure arithmetic.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_kit.optimize.judge import (
    JudgeConfig,
    WorkerResult,
    action_error,
    artifact_size_bytes,
    load_observations,
    measure_in_worker,
    paired_difference,
    save_observations,
)
from vla_kit.optimize.stage import dataset_observations
from vla_kit.policy import load_policy, verify_artifact
from vla_kit.types import Observation


def outcomes(both: int, only_baseline: int, only_candidate: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Paired episode outcomes (baseline, candidate) with the given 2x2 table."""
    pairs = [(True, True)] * both + [(True, False)] * only_baseline + [(False, True)] * only_candidate + [(False, False)] * neither
    return [b for b, _ in pairs], [c for _, c in pairs]


# --- paired_difference -----------------------------------------------------------------------


def test_identical_outcomes_give_no_difference_and_an_interval_around_zero():
    base, cand = outcomes(5, 0, 0, 3)
    pd_ = paired_difference(base, cand)
    assert pd_["diff"] == 0.0 and pd_["n"] == 8
    assert pd_["ci_low"] <= 0.0 <= pd_["ci_high"]
    assert (pd_["only_baseline"], pd_["only_candidate"]) == (0, 0)


def test_all_discordant_against_the_candidate_is_a_full_drop_that_excludes_zero():
    pd_ = paired_difference([True] * 10, [False] * 10)
    assert pd_["diff"] == -1.0 and pd_["ci_low"] == -1.0
    assert pd_["ci_high"] < 0.0
    assert (pd_["only_baseline"], pd_["only_candidate"]) == (10, 0)


def test_discordant_pairs_that_cancel_out_give_no_difference():
    base, cand = outcomes(0, 4, 4, 0)
    pd_ = paired_difference(base, cand)
    assert pd_["diff"] == 0.0 and pd_["ci_low"] < 0.0 < pd_["ci_high"]


def test_published_example_without_positive_correlation():
    # Newcombe (1998, paired), the worked example e=36, f=12, g=2, h=0 (n=50): theta = 0.2 with method 10
    # limits 0.0569 to 0.3404, here with the first classification as the baseline, so the candidate's
    # difference is -0.2 and the limits are negated and swapped. Recomputed by hand:
    #   p1 = 0.96, Wilson(48/50) = (0.86540, 0.98896); p2 = 0.76, Wilson(38/50) = (0.62587, 0.85703);
    #   phi = (36*0 - 12*2) / sqrt(48*2*38*12) = -0.11471 (negative, so method 10's correction does not apply);
    #   delta = sqrt(0.09460^2 + 2*0.11471*0.09460*0.09703 + 0.09703^2) = 0.14307 -> theta - delta = 0.0569;
    #   eps   = sqrt(0.02896^2 + 2*0.11471*0.02896*0.13413 + 0.13413^2) = 0.14043 -> theta + eps   = 0.3404.
    base, cand = outcomes(36, 12, 2, 0)
    pd_ = paired_difference(base, cand)
    assert pd_["diff"] == pytest.approx(-0.2)
    assert pd_["ci_low"] == pytest.approx(-0.34043, abs=5e-5)
    assert pd_["ci_high"] == pytest.approx(-0.05693, abs=5e-5)


def test_published_example_with_positive_correlation():
    # Fagerland, Lydersen & Laake (2014), Bentur et al. table [[1, 1], [7, 12]] (first = baseline):
    # Newcombe's square-and-add interval for baseline - candidate is -0.2857 (-0.5069 to -0.0256).
    # A = 1*12 - 1*7 = 5 <= n/2 = 10.5, so phi* = 0 and the interval is the plain square-and-add one.
    base, cand = outcomes(1, 1, 7, 12)
    pd_ = paired_difference(base, cand)
    assert pd_["diff"] == pytest.approx(6 / 21)
    assert pd_["ci_low"] == pytest.approx(0.02556, abs=5e-5)
    assert pd_["ci_high"] == pytest.approx(0.50692, abs=5e-5)


def test_identical_outcomes_at_half_success_still_leave_uncertainty():
    base, cand = outcomes(4, 0, 0, 4)
    pd_ = paired_difference(base, cand)
    assert pd_["ci_high"] - pd_["ci_low"] > 0.1  # method 10 with phi* = 0.75 gives -0.2014 to +0.2014


@pytest.mark.parametrize("base, cand", [([], []), ([True], []), ([True, False], [True])])
def test_empty_or_unequal_outcome_lists_are_refused(base, cand):
    with pytest.raises(ValueError, match="equally long non-empty"):
        paired_difference(base, cand)


paired_outcomes = st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(paired_outcomes)
def test_interval_holds_the_point_estimate_inside_minus_one_to_one(pairs):
    base, cand = [b for b, _ in pairs], [c for _, c in pairs]
    pd_ = paired_difference(base, cand)
    assert -1.0 <= pd_["ci_low"] <= pd_["diff"] <= pd_["ci_high"] <= 1.0
    assert all(math.isfinite(pd_[k]) for k in ("diff", "ci_low", "ci_high"))
    assert pd_["diff"] == pytest.approx((pd_["only_candidate"] - pd_["only_baseline"]) / len(pairs))


@settings(max_examples=200, deadline=None)
@given(paired_outcomes)
def test_swapping_baseline_and_candidate_mirrors_the_interval(pairs):
    base, cand = [b for b, _ in pairs], [c for _, c in pairs]
    ab, ba = paired_difference(base, cand), paired_difference(cand, base)
    assert ba["diff"] == pytest.approx(-ab["diff"])
    assert ba["ci_low"] == pytest.approx(-ab["ci_high"]) and ba["ci_high"] == pytest.approx(-ab["ci_low"])


# --- action_error ----------------------------------------------------------------------------


def test_identical_outputs_have_no_error_and_cosine_one():
    base = np.random.default_rng(0).normal(size=(4, 8, 7)).astype(np.float32)
    err = action_error(base.copy(), base)
    assert err == {"mean_abs": 0.0, "max_abs": 0.0, "cosine": pytest.approx(1.0), "finite": 1.0}


def test_error_is_measured_in_the_outputs_units():
    base = np.ones((3, 8, 7), np.float32)
    cand = base.copy()
    cand[0, 0, 0] += 0.7  # one element off by 0.7, the rest exact
    err = action_error(cand, base)
    assert err["max_abs"] == pytest.approx(0.7, rel=1e-6)
    assert err["mean_abs"] == pytest.approx(0.7 / base.size, rel=1e-6)
    assert err["finite"] == 1.0


def test_sign_flipped_outputs_have_cosine_minus_one():
    base = np.random.default_rng(1).normal(size=(2, 8, 7))
    assert action_error(-base, base)["cosine"] == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_candidate_outputs_are_flagged_not_averaged(bad):
    base = np.zeros((2, 8, 7), np.float32)
    cand = base.copy()
    cand[1, 3, 2] = bad
    err = action_error(cand, base)
    assert err["finite"] == 0.0
    assert err["mean_abs"] == math.inf and err["max_abs"] == math.inf


def test_outputs_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"\(2, 8, 7\).*\(2, 4, 7\)"):
        action_error(np.zeros((2, 8, 7)), np.zeros((2, 4, 7)))


# --- observations on disk, artifact size -----------------------------------------------------


def test_observations_survive_the_trip_to_disk(tmp_path):
    rng = np.random.default_rng(0)
    observations = [
        Observation(
            images={"front": rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "wrist": rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)},
            instruction=text,
            proprio=rng.normal(size=14).astype(np.float32),
        )
        for text in ("pick up the red cube", "mets le cube vert à gauche", "")
    ]
    back = load_observations(save_observations(tmp_path / "obs.npz", observations))
    assert len(back) == len(observations)
    for got, want in zip(back, observations):
        assert got.instruction == want.instruction
        assert set(got.images) == {"front", "wrist"}
        for cam in want.images:
            assert got.images[cam].dtype == np.uint8
            np.testing.assert_array_equal(got.images[cam], want.images[cam])
        assert got.proprio.dtype == np.float32
        np.testing.assert_array_equal(got.proprio, want.proprio)


def test_artifact_size_counts_every_file_including_nested_ones(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 23)
    assert artifact_size_bytes(tmp_path) == 123


def test_percentile_of_nothing_timed_is_nan():
    assert math.isnan(WorkerResult().percentile(50))
    assert WorkerResult(latency_ms=[1.0, 2.0, 3.0]).percentile(50) == 2.0


# --- measure_in_worker -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def parity(dataset, tmp_path_factory) -> tuple[list[Observation], Path]:
    observations = dataset_observations(dataset, split="val", count=4, seed=0)
    return observations, save_observations(tmp_path_factory.mktemp("judge") / "parity.npz", observations)


def test_worker_measures_latency_throughput_memory_outputs_and_episodes(parent, parity, fast_judge, tmp_path):
    observations, path = parity
    res = measure_in_worker(parent, path, tmp_path / "out.npy", fast_judge, load_options={"backend": "torch"})
    assert res.error == ""
    assert res.backend == "torch" and res.threads == fast_judge.threads
    assert len(res.latency_ms) == fast_judge.latency_iters and all(t > 0 for t in res.latency_ms)
    assert res.throughput_obs_per_s > 0 and res.load_s > 0
    assert res.peak_memory_mib >= 0
    assert res.episode_seeds == [fast_judge.eval_seed] and len(res.episode_success) == 1

    spec = verify_artifact(parent)
    outputs = np.load(res.outputs_path)
    assert outputs.shape == (len(observations), spec.model.chunk_length, spec.model.action_dim)
    assert outputs.dtype == np.float32
    # Normalised chunks: what the same policy predicts in this process, in action-std units.
    policy = load_policy(parent, backend="torch")
    expected = policy.spec.normalization.action.normalize(np.stack([c.actions for c in policy.predict_batch(observations)]))
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-4)


def test_missing_artifact_becomes_an_error_result_not_an_exception(parity, fast_judge, tmp_path):
    res = measure_in_worker(tmp_path / "no-such-artifact", parity[1], tmp_path / "out.npy", fast_judge)
    assert res.error and "no-such-artifact" in res.error
    assert res.latency_ms == [] and math.isnan(res.percentile(50))


def test_a_worker_past_its_time_budget_is_an_error(parent, parity, tmp_path):
    cfg = JudgeConfig(timeout_s=0.05, latency_iters=5, warmup=0, eval_episodes=0)
    res = measure_in_worker(parent, parity[1], tmp_path / "out.npy", cfg)
    assert res.error.startswith("timed out after")
