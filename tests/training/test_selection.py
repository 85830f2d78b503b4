"""Candidate selection: feasible-first ranking (TFCO-style) and patience."""

from __future__ import annotations

import pytest

from nomoretuning.training.selection import Candidate, CandidateSelection


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


def test_the_selected_parameters_are_a_copy() -> None:
    import torch

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
