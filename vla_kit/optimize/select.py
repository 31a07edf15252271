"""Choosing one candidate under the user's budgets, and saying why.

A candidate is *eligible* when its status is ``ok`` and it breaks none of the budgets:

* ``max_latency_ms``: its batch-1 p50 latency (``None`` = no latency budget);
* ``max_success_drop_pp``: the baseline's closed-loop success minus its own, in percentage
  points, on the same episode seeds (the point estimate; the interval is reported beside it);
* ``max_action_error``: mean absolute difference from the baseline's action chunks on the
  held-out observations, in units of the demonstrations' action std.

Among eligible candidates the ``objective`` decides: ``latency`` (lowest p50, then smallest) or
``size`` (fewest bytes on disk, then fastest). The baseline competes too: if nothing beats it
within the budgets, it is the honest answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

__all__ = ["Budgets", "broken_constraints", "select_candidate", "explain_selection"]


@dataclass(frozen=True)
class Budgets:
    """The selection rule's limits (see the module docstring)."""

    max_latency_ms: float | None = None
    max_success_drop_pp: float = 5.0
    max_action_error: float = 0.5
    objective: Literal["latency", "size"] = "latency"


def broken_constraints(row: dict[str, Any], budgets: Budgets) -> list[str]:
    """Why ``row`` (one candidate's measurements) cannot be selected; empty when it can."""
    if row.get("status") != "ok":
        return [f"status is {row.get('status')!r}"]
    broken = []
    p50 = row.get("latency_p50_ms", math.nan)
    if budgets.max_latency_ms is not None and not p50 <= budgets.max_latency_ms:
        broken.append(f"latency p50 {p50:.2f} ms > budget {budgets.max_latency_ms:g} ms")
    drop = row.get("success_drop_pp")
    if drop is None or not math.isfinite(drop):
        broken.append("no closed-loop success measured")
    elif drop > budgets.max_success_drop_pp:
        broken.append(f"success drop {drop:.1f} pp > budget {budgets.max_success_drop_pp:g} pp")
    err = row.get("action_error_mean", math.nan)
    if not err <= budgets.max_action_error:
        broken.append(f"action error {err:.3g} > budget {budgets.max_action_error:g}")
    return broken


def _key(row: dict[str, Any], objective: str) -> tuple[float, float]:
    latency, size = row["latency_p50_ms"], float(row["size_bytes"])
    return (latency, size) if objective == "latency" else (size, latency)


def select_candidate(rows: Sequence[dict[str, Any]], budgets: Budgets) -> tuple[str | None, dict[str, list[str]]]:
    """The winning candidate's name (``None`` if none is eligible) and each candidate's broken constraints."""
    reasons = {row["name"]: broken_constraints(row, budgets) for row in rows}
    eligible = [row for row in rows if not reasons[row["name"]]]
    if not eligible:
        return None, reasons
    return min(eligible, key=lambda r: _key(r, budgets.objective))["name"], reasons


def explain_selection(rows: Sequence[dict[str, Any]], selected: str | None, reasons: dict[str, list[str]], budgets: Budgets) -> str:
    """A plain-language paragraph: what won, by how much, and what stopped the faster ones."""
    by_name = {r["name"]: r for r in rows}
    baseline = rows[0]
    if selected is None:
        lines = [f"- **{n}**: {'; '.join(r)}" for n, r in reasons.items()]
        return "No candidate met the budgets, so this run fails its gate:\n\n" + "\n".join(lines)
    win = by_name[selected]
    speedup = baseline["latency_p50_ms"] / win["latency_p50_ms"] if win["latency_p50_ms"] > 0 else math.nan
    text = (
        f"**{selected}** was selected (objective: {budgets.objective}). Its batch-1 p50 latency is "
        f"{win['latency_p50_ms']:.2f} ms against the baseline's {baseline['latency_p50_ms']:.2f} ms "
        f"({speedup:.2f}x), it is {win['size_bytes'] / 2**20:.2f} MiB on disk, and its closed-loop success is "
        f"{100 * win['success_rate']:.0f} % against the baseline's {100 * baseline['success_rate']:.0f} % on the same "
        f"{win['episodes']} episodes (difference {win['success_diff_pp']:+.1f} pp, 95 % CI "
        f"[{win['success_diff_ci_low_pp']:+.1f}, {win['success_diff_ci_high_pp']:+.1f}] pp)."
    )
    better = [r for r in rows if r["name"] != selected and r.get("status") == "ok" and _key(r, budgets.objective) < _key(win, budgets.objective)]
    if better:
        text += " Candidates that would have won on the objective but broke a budget: " + "; ".join(
            f"{r['name']} ({'; '.join(reasons[r['name']])})" for r in better
        ) + "."
    if win["episodes"] and win["episodes"] < 30:
        text += f" With {win['episodes']} episode{'s' if win['episodes'] != 1 else ''} the success interval is wide; raise `eval_episodes` before trusting a small drop."
    return text
