"""Candidate selection: feasible-first ranking (TFCO-style) and patience."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from nomoretuning.training.records import StartComparison
from nomoretuning.training.selection import Candidate, CandidateSelection, evaluation_noise


def _candidate(step: int, auc: float, excess: float, rule: str = "feasible_first") -> Candidate:
    return Candidate.evaluate(
        step,
        {"finish": {"auc": auc}},
        ("finish",),
        "auc",
        {"like": excess},
        rule,  # type: ignore[arg-type]
    )


def _select(candidates: list[Candidate], patience: int = 10) -> CandidateSelection:
    selection = CandidateSelection(patience)
    for candidate in candidates:
        selection.consider(candidate, dict)
    return selection


def test_feasible_candidates_beat_infeasible_ones() -> None:
    selection = _select(
        [
            _candidate(0, 0.60, 0.0),  # the start: feasible
            _candidate(4, 0.90, 0.04),  # better objective, infeasible
            _candidate(8, 0.70, 0.008),  # feasible? no: 0.8 % excess
            _candidate(12, 0.70, -0.002),  # feasible and better than the start: selected
            _candidate(16, 0.95, 0.012),  # infeasible
        ]
    )
    assert selection.best is not None
    assert (selection.best.step, selection.best.feasible) == (12, True)


def test_a_task_without_a_defined_metric_is_left_out_of_the_score() -> None:
    def score(income: float, marital: float, tasks: tuple[str, ...]) -> float:
        metrics = {
            "income": {"auc": income, "loss": 0.25},
            "marital": {"auc": marital, "loss": 0.5},
        }
        return Candidate.evaluate(1, metrics, tasks, "auc", {}).score

    assert score(0.9, math.nan, ("income", "marital")) == pytest.approx(0.9)
    assert score(0.9, 0.7, ("income", "marital")) == pytest.approx(0.8)
    # no stage task has one (one class on validation): minus the mean validation loss
    assert score(math.nan, math.nan, ("income", "marital")) == pytest.approx(-0.375)
    # so a later, better candidate still beats the first
    first = _select([_candidate(0, math.nan, 0.0)]).best
    assert first is not None and first.score == -math.inf  # no loss given either
    selection = _select(
        [
            Candidate.evaluate(0, {"m": {"auc": math.nan, "loss": 0.6}}, ("m",), "auc", {}),
            Candidate.evaluate(5, {"m": {"auc": math.nan, "loss": 0.4}}, ("m",), "auc", {}),
        ]
    )
    assert selection.best is not None and selection.best.step == 5


def test_without_a_feasible_candidate_the_smallest_excess_wins() -> None:
    selection = _select([_candidate(1, 0.99, 0.20), _candidate(2, 0.60, 0.10)])
    assert selection.best is not None
    assert (selection.best.step, selection.best.feasible) == (2, False)
    assert selection.best.worst_excess == pytest.approx(0.10)


def test_the_objective_rule_ignores_the_constraints() -> None:
    selection = _select(
        [_candidate(0, 0.60, 0.0, "objective"), _candidate(4, 0.90, 0.04, "objective")]
    )
    assert selection.best is not None and selection.best.step == 4


def test_patience_counts_feasible_evaluations_without_improvement_only() -> None:
    selection = CandidateSelection(patience=2)
    assert selection.consider(_candidate(0, 0.70, 0.0), dict)
    assert not selection.consider(_candidate(1, 0.60, 0.05), dict)  # infeasible: no patience used
    assert not selection.consider(_candidate(2, 0.60, 0.05), dict)
    assert not selection.done
    assert not selection.consider(_candidate(3, 0.69, 0.0), dict)
    assert not selection.done
    assert selection.consider(_candidate(4, 0.80, 0.0), dict)  # improvement resets the count
    assert not selection.consider(_candidate(5, 0.79, 0.0), dict)
    assert not selection.consider(_candidate(6, 0.78, 0.0), dict)
    assert selection.done


def test_a_stage_may_have_a_patience_of_its_own_until_the_next_reset() -> None:
    selection = CandidateSelection(patience=1)
    selection.reset(patience=3)
    assert selection.consider(_candidate(0, 0.70, 0.0), dict)
    for step in (1, 2):
        assert not selection.consider(_candidate(step, 0.60, 0.0), dict)
        assert not selection.done
    restored = CandidateSelection(patience=1)
    restored.load_state_dict(selection.state_dict())  # a resumed stage keeps its patience
    assert not restored.consider(_candidate(3, 0.60, 0.0), dict)
    assert restored.done
    restored.reset()  # the next stage: the patience given at construction
    assert restored.consider(_candidate(0, 0.70, 0.0), dict)
    assert not restored.consider(_candidate(1, 0.60, 0.0), dict)
    assert restored.done


def test_the_selected_parameters_are_a_copy() -> None:
    weights = {"w": torch.zeros(2)}
    selection = CandidateSelection(patience=1)
    selection.consider(_candidate(0, 0.7, 0.0), lambda: weights)
    weights["w"] += 1.0
    assert selection.best_parameters is not None
    assert torch.equal(selection.best_parameters["w"], torch.zeros(2))


def test_state_round_trip() -> None:
    selection = _select([_candidate(0, 0.7, 0.0), _candidate(3, 0.6, 0.0)], patience=3)
    restored = CandidateSelection(patience=3)
    restored.load_state_dict(selection.state_dict())
    assert restored.best == selection.best
    assert restored.stale_evaluations == selection.stale_evaluations == 1


def test_evaluation_noise_is_the_median_successive_difference_estimate() -> None:
    gaussian = 2**0.5 * 0.6744897501960817  # median |X - Y| of two standard normals
    # every difference 2: 2 / gaussian
    assert evaluation_noise([1.0, 3.0, 1.0, 3.0]) == pytest.approx(2 / gaussian)
    # the big steps of early learning do not move the median
    assert evaluation_noise([0.0, 5.0, 8.0, 8.1, 8.0, 8.1, 8.0]) == pytest.approx(0.1 / gaussian)
    assert evaluation_noise([0.3, 0.9]) == 0.0


def test_evaluation_noise_matches_gaussian_noise() -> None:
    values = torch.randn(20_000, generator=torch.Generator().manual_seed(0)).tolist()
    assert evaluation_noise(values) == pytest.approx(1.0, abs=0.03)


def _two_task(step: int, top: float, low: float, excess: float = 0.0) -> Candidate:
    metrics = {"top": {"auc": top}, "low": {"auc": low}}
    return Candidate.evaluate(step, metrics, ("top",), "auc", {"c": excess})


def _banded(
    candidates: list[Candidate], band: float | None, pool_size: int = 8
) -> CandidateSelection:
    selection = CandidateSelection(patience=100, band=band, pool_size=pool_size)
    selection.reset(order=("low",))
    for candidate in candidates:
        weights = {"w": torch.tensor([candidate.step])}
        selection.consider(candidate, functools.partial(dict, weights))
    return selection


def _chosen(selection: CandidateSelection) -> int:
    chosen = selection.choose()
    assert chosen is not None
    return chosen.step


def test_the_one_standard_error_rule_breaks_ties_by_the_other_tasks() -> None:
    # scores 0.80, 0.81, 0.79, 0.80: median difference 0.01, noise 0.01 / 0.954 = 0.0105
    candidates = [
        _two_task(0, 0.80, 0.90),
        _two_task(1, 0.81, 0.70),
        _two_task(2, 0.79, 0.99),  # more than one noise below the best: not a tie
        _two_task(3, 0.80, 0.80),
    ]
    selection = _banded(candidates, band=1.0)
    assert selection.best is not None and selection.best.step == 1
    chosen = selection.choose()
    assert chosen is not None and chosen.step == 0
    assert selection.best is chosen
    assert selection.best_parameters is not None
    assert selection.best_parameters["w"].item() == 0
    # half a noise: only the best ties with itself
    assert _chosen(_banded(candidates, band=0.5)) == 1
    # no band: the best score
    assert _chosen(_banded(candidates, band=None)) == 1


def test_an_infeasible_candidate_never_wins_a_tie() -> None:
    candidates = [
        _two_task(0, 0.80, 0.90, excess=0.01),
        _two_task(1, 0.81, 0.70),
        _two_task(2, 0.79, 0.70),
        _two_task(3, 0.80, 0.80),
    ]
    assert _chosen(_banded(candidates, band=1.0)) == 3


def test_the_pool_keeps_the_best_and_the_best_tie_breakers() -> None:
    candidates = [_two_task(s, 0.80 + 0.001 * (s % 2), 0.5 + 0.01 * s) for s in range(10)]
    selection = _banded(candidates, band=1.0, pool_size=3)
    assert len(selection.pool) == 3
    kept = {c.step for c, _ in selection.pool}
    assert selection.best is not None and selection.best.step in kept
    assert kept == {1, 9, 8}
    assert _chosen(selection) == 9


def test_a_banded_state_round_trip_keeps_the_pool() -> None:
    candidates = [_two_task(0, 0.80, 0.90), _two_task(1, 0.81, 0.70), _two_task(2, 0.79, 0.9)]
    selection = _banded(candidates, band=1.0)
    restored = CandidateSelection(patience=100, band=1.0)
    restored.load_state_dict(selection.state_dict())
    assert restored.seen == selection.seen
    assert [c for c, _ in restored.pool] == [c for c, _ in selection.pool]
    assert restored.order == ("low",)
    assert restored.choose() == selection.choose()


def _tested(scores: list[float], start_test: float | None = 2.0) -> CandidateSelection:
    selection = CandidateSelection(patience=100, start_test=start_test)
    selection.reset(test_start=True)
    for step, score in enumerate(scores):
        parameters = {"w": torch.tensor([float(step)])}
        selection.consider(Candidate(step, score, 0.0, True, {}), lambda p=parameters: p)
    return selection


def test_the_start_is_kept_unless_the_best_beats_it_by_start_test_standard_errors() -> None:
    selection = _tested([0.70, 0.72, 0.71])
    compared = []

    def compare(best, start):
        compared.append((float(best["w"]), float(start["w"])))
        return 0.02, 0.011  # 1.8 standard errors

    assert selection.settle_start(compare)
    assert compared == [(1.0, 0.0)]  # the best's parameters against the start's
    assert selection.comparison == StartComparison(0.02, 0.011, 2.0, kept_start=True)
    assert selection.comparison.z == pytest.approx(0.02 / 0.011)
    assert selection.best is not None and selection.best.step == 0
    assert selection.best_parameters is not None and float(selection.best_parameters["w"]) == 0

    selection = _tested([0.70, 0.72, 0.71])
    assert not selection.settle_start(lambda best, start: (0.02, 0.009))  # 2.2 standard errors
    assert selection.best is not None and selection.best.step == 1
    assert selection.comparison == StartComparison(0.02, 0.009, 2.0, kept_start=False)
    selection.reset(test_start=True)  # a new stage forgets the comparison
    assert selection.comparison is None


def test_without_a_tested_start_nothing_is_compared() -> None:
    def fail(best, start):
        raise AssertionError("compared")

    assert not _tested([0.70, 0.72], start_test=None).settle_start(fail)
    assert not _tested([0.72, 0.70]).settle_start(fail)  # the start is the best
    untested = CandidateSelection(patience=100, start_test=2.0)
    untested.reset(test_start=False)
    for step, score in enumerate([0.70, 0.72]):
        untested.consider(Candidate(step, score, 0.0, True, {}), dict)
    assert not untested.settle_start(fail)
    assert untested.comparison is None


def test_an_infeasible_best_is_not_tested_against_the_start() -> None:
    selection = CandidateSelection(patience=100, start_test=2.0)
    selection.reset(test_start=True)
    selection.consider(Candidate(0, 0.70, 0.01, False, {}), dict)
    selection.consider(Candidate(1, 0.72, 0.02, False, {}), dict)
    assert not selection.settle_start(lambda best, start: (0.0, 1.0))


def test_a_tested_state_round_trip_keeps_the_start() -> None:
    selection = _tested([0.70, 0.72])
    restored = CandidateSelection(patience=100, start_test=2.0)
    restored.load_state_dict(selection.state_dict())
    assert restored.tests_start and restored.start is not None
    assert restored.start[0] == selection.start[0]  # type: ignore[index]
    assert restored.settle_start(lambda best, start: (0.01, 0.01))
    assert restored.best is not None and restored.best.step == 0


def test_a_comparison_that_cannot_be_made_keeps_the_start() -> None:
    selection = _tested([0.70, 0.72])  # e.g. a validation split with one class: NaN, NaN
    assert selection.settle_start(lambda best, start: (math.nan, math.nan))
    assert selection.best is not None and selection.best.step == 0
    assert selection.comparison is not None and selection.comparison.kept_start
    assert math.isnan(selection.comparison.z)
