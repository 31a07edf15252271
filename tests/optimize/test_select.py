"""Choosing one candidate under the budgets, and the paragraph that says why."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vla_kit.optimize.select import Budgets, broken_constraints, explain_selection, select_candidate


def row(name: str, **fields: Any) -> dict[str, Any]:
    """One measured candidate as run_optimize writes it: ok, within the default budgets unless overridden."""
    base = {
        "name": name, "status": "ok", "latency_p50_ms": 10.0, "size_bytes": 4 * 2**20, "success_rate": 0.8, "episodes": 10,
        "success_drop_pp": 0.0, "success_diff_pp": 0.0, "success_diff_ci_low_pp": -20.0, "success_diff_ci_high_pp": 20.0,
        "action_error_mean": 0.0,
    }
    return {**base, **fields}


BASELINE = row("eager-fp32")


def test_fastest_eligible_candidate_wins_on_latency():
    rows = [
        BASELINE, row("ort", latency_p50_ms=5.0), row("int8", latency_p50_ms=3.0, action_error_mean=0.1), row("slow", latency_p50_ms=20.0),
    ]
    selected, reasons = select_candidate(rows, Budgets())
    assert selected == "int8"
    assert all(r == [] for r in reasons.values())


def test_smallest_eligible_candidate_wins_on_size():
    rows = [BASELINE, row("fast-big", latency_p50_ms=2.0, size_bytes=8 * 2**20), row("small", latency_p50_ms=9.0, size_bytes=2**20)]
    assert select_candidate(rows, Budgets(objective="size"))[0] == "small"
    assert select_candidate(rows, Budgets(objective="latency"))[0] == "fast-big"


def test_ties_on_the_objective_go_to_the_other_measure():
    rows = [BASELINE, row("big", latency_p50_ms=5.0, size_bytes=3000), row("small", latency_p50_ms=5.0, size_bytes=1000)]
    assert select_candidate(rows, Budgets(objective="latency"))[0] == "small"
    rows = [BASELINE, row("slow", latency_p50_ms=6.0, size_bytes=1000), row("fast", latency_p50_ms=5.0, size_bytes=1000)]
    assert select_candidate(rows, Budgets(objective="size"))[0] == "fast"


def test_baseline_wins_when_every_faster_candidate_breaks_a_budget():
    rows = [
        BASELINE,
        row("lossy", latency_p50_ms=2.0, action_error_mean=0.9),
        row("worse", latency_p50_ms=3.0, success_drop_pp=30.0),
        row("skipped", status="skipped: needs TensorRT", latency_p50_ms=math.nan, size_bytes=0),
    ]
    selected, reasons = select_candidate(rows, Budgets())
    assert selected == "eager-fp32"
    assert reasons["eager-fp32"] == [] and all(reasons[n] for n in ("lossy", "worse", "skipped"))


def test_latency_over_budget_is_the_only_reason_given():
    assert broken_constraints(row("x", latency_p50_ms=12.0), Budgets(max_latency_ms=10.0)) == ["latency p50 12.00 ms > budget 10 ms"]


def test_success_drop_over_budget_is_the_only_reason_given():
    assert broken_constraints(row("x", success_drop_pp=12.5), Budgets(max_success_drop_pp=5.0)) == ["success drop 12.5 pp > budget 5 pp"]


def test_action_error_over_budget_is_the_only_reason_given():
    assert broken_constraints(row("x", action_error_mean=0.8), Budgets(max_action_error=0.5)) == ["action error 0.8 > budget 0.5"]


def test_every_broken_budget_is_listed():
    reasons = broken_constraints(row("x", latency_p50_ms=12.0, success_drop_pp=50.0, action_error_mean=2.0), Budgets(max_latency_ms=10.0))
    assert len(reasons) == 3
    assert [r.split()[0] for r in reasons] == ["latency", "success", "action"]


@pytest.mark.parametrize("status", ["skipped: tensorrt: no CUDA GPU", "error: RuntimeError: boom", "failed-parity"])
def test_a_candidate_that_is_not_ok_gives_its_status_as_the_only_reason(status):
    # Even with measurements that would break budgets too, the status is the reason.
    reasons = broken_constraints(row("x", status=status, latency_p50_ms=99.0, action_error_mean=9.0), Budgets(max_latency_ms=1.0))
    assert reasons == [f"status is {status!r}"]


def test_values_at_the_budget_are_within_it():
    at = row("x", latency_p50_ms=10.0, success_drop_pp=5.0, action_error_mean=0.5)
    assert broken_constraints(at, Budgets(max_latency_ms=10.0, max_success_drop_pp=5.0, max_action_error=0.5)) == []


def test_a_success_gain_is_never_a_broken_budget():
    assert broken_constraints(row("x", success_drop_pp=-20.0), Budgets(max_success_drop_pp=0.0)) == []


@pytest.mark.parametrize("drop", [None, math.nan])
def test_unmeasured_success_cannot_be_selected(drop):
    assert broken_constraints(row("x", success_drop_pp=drop), Budgets()) == ["no closed-loop success measured"]


def test_unmeasured_latency_or_error_breaks_the_budget_rather_than_passing_it():
    assert broken_constraints(row("x", latency_p50_ms=math.nan), Budgets(max_latency_ms=10.0)) == ["latency p50 nan ms > budget 10 ms"]
    no_error = row("x")
    del no_error["action_error_mean"]
    assert broken_constraints(no_error, Budgets()) == ["action error nan > budget 0.5"]


def test_no_eligible_candidate_selects_none_with_a_reason_for_each():
    rows = [row("eager-fp32", latency_p50_ms=10.0), row("ort", latency_p50_ms=5.0)]
    selected, reasons = select_candidate(rows, Budgets(max_latency_ms=1e-6))
    assert selected is None
    assert set(reasons) == {"eager-fp32", "ort"}
    assert all(len(r) == 1 and r[0].startswith("latency p50") for r in reasons.values())


# --- explain_selection -----------------------------------------------------------------------


def test_explanation_names_the_winner_its_speedup_and_the_faster_candidates_it_beat():
    rows = [
        BASELINE,
        row("ort", latency_p50_ms=5.0, success_diff_pp=-10.0, success_diff_ci_low_pp=-30.0, success_diff_ci_high_pp=10.0),
        row("int8", latency_p50_ms=2.0, action_error_mean=0.9),
        row("skipped", status="skipped: no GPU", latency_p50_ms=math.nan, size_bytes=0),
    ]
    budgets = Budgets(max_success_drop_pp=20.0)
    selected, reasons = select_candidate(rows, budgets)
    text = explain_selection(rows, selected, reasons, budgets)
    assert selected == "ort" and text.startswith("**ort** was selected (objective: latency)")
    assert "5.00 ms against the baseline's 10.00 ms (2.00x)" in text
    assert "-10.0 pp, 95 % CI [-30.0, +10.0] pp" in text
    assert "int8 (action error 0.9 > budget 0.5)" in text
    assert "skipped" not in text  # it was not faster on the objective, it was not measured at all
    assert "raise `eval_episodes`" in text  # 10 episodes is a wide interval


def test_explanation_without_faster_candidates_says_nothing_about_budgets():
    rows = [BASELINE, row("slow", latency_p50_ms=20.0)]
    selected, reasons = select_candidate(rows, Budgets())
    text = explain_selection(rows, selected, reasons, Budgets())
    assert selected == "eager-fp32" and "(1.00x)" in text
    assert "broke a budget" not in text


def test_explanation_with_enough_episodes_does_not_ask_for_more():
    rows = [row("eager-fp32", episodes=50)]
    text = explain_selection(rows, "eager-fp32", {"eager-fp32": []}, Budgets())
    assert "eval_episodes" not in text and "same 50 episodes" in text


def test_explanation_of_a_failed_gate_lists_every_candidate_and_its_reasons():
    rows = [BASELINE, row("ort", latency_p50_ms=5.0), row("trt", status="skipped: tensorrt: no CUDA GPU", latency_p50_ms=math.nan)]
    budgets = Budgets(max_latency_ms=1e-6)
    selected, reasons = select_candidate(rows, budgets)
    text = explain_selection(rows, selected, reasons, budgets)
    assert selected is None and text.startswith("No candidate met the budgets")
    for name in ("eager-fp32", "ort", "trt"):
        assert f"- **{name}**: " in text
    assert "latency p50 5.00 ms > budget 1e-06 ms" in text
    assert "status is 'skipped: tensorrt: no CUDA GPU'" in text
