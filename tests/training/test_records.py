"""`StageRecord.describe`: the one line ``nomoretuning train`` prints for each stage."""

from __future__ import annotations

import math

from nomoretuning.training.records import (
    FitResult,
    StageRecord,
    StartComparison,
    describe_stages,
)

VALID = {"pay": {"ndcg": 0.81234, "loss": 0.3}, "relevance": {"ndcg": 0.5, "loss": 0.6}}


def _stage(**fields: object) -> StageRecord:
    values: dict[str, object] = {
        "stage": 3,
        "tasks": ["relevance"],
        "constrained": ["pay"],
        "steps": 40,
        "selected_step": 24,
        "selected_feasible": True,
        "valid": VALID,
    }
    values.update(fields)
    return StageRecord(**values)  # type: ignore[arg-type]


def test_a_constrained_stage_names_its_constraints_metric_and_multipliers() -> None:
    line = _stage(multipliers_at_end={"pay": 0.0123}).describe("ndcg")
    assert line == (
        "stage 3, relevance under pay: 40 steps, selected step 24; "
        "validation ndcg relevance 0.5000, pay 0.8123; multiplier pay 0.012"
    )


def test_an_infeasible_selection_says_so() -> None:
    line = _stage(selected_feasible=False).describe("ndcg")
    assert "selected step 24 (no candidate met every constraint: the least violating)" in line


def test_the_start_test_is_told_whether_it_kept_the_start_or_not() -> None:
    kept = _stage(
        tasks=["pay"],
        constrained=[],
        selected_step=0,
        start_comparison=StartComparison(0.003, 0.002, 2.0, kept_start=True),
    ).describe("ndcg")
    assert kept.startswith(
        "stage 3, pay: 40 steps, kept its start (its best +0.0030 ndcg over its start, "
        "1.5 standard errors; 2 needed)"
    )
    left = _stage(start_comparison=StartComparison(0.005, 0.002, 2.0, kept_start=False))
    assert "selected step 24 (its best +0.0050 ndcg over its start, 2.5 standard errors" in (
        left.describe("ndcg")
    )
    unknown = _stage(start_comparison=StartComparison(0.001, math.nan, 2.0, kept_start=True))
    assert "(its best could not be compared with its start)" in unknown.describe("ndcg")


def test_tasks_without_the_metric_and_unconstrained_multipliers_are_left_out() -> None:
    line = _stage(
        tasks=["relevance", "amount"], constrained=[], multipliers_at_end={"pay": 1.0}
    ).describe("ndcg")
    expected = "stage 3, relevance + amount: 40 steps, selected step 24; validation ndcg"
    assert line == f"{expected} relevance 0.5000"
    assert _stage(valid={}).describe("auc").endswith("selected step 24")


def test_describe_stages_keeps_the_order_and_the_fit_result_names_its_metric() -> None:
    stages = [_stage(stage=1, constrained=[]), _stage(stage=2)]
    assert [line.split(",")[0] for line in describe_stages(stages, "ndcg")] == [
        "stage 1",
        "stage 2",
    ]
    result = FitResult({}, {}, stages, 80, 2.0, 1.0, selection_metric="ndcg")
    assert result.to_dict()["selection_metric"] == "ndcg"
