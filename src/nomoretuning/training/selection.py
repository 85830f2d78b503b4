"""Choosing a stage's parameters: candidates, feasible-first ranking and patience.

Every evaluation of a stage on the validation split is a `Candidate`. With the ``feasible_first``
rule (the default, as TFCO picks among its snapshots) a candidate is feasible when every
constrained task meets its constraint on validation; feasible candidates beat infeasible ones,
feasible ones rank by the stage tasks' mean selection metric (higher is better), infeasible ones by
their largest relative excess (smaller is better). The ``objective`` rule looks at the metric only.
`CandidateSelection` keeps the best candidate (and its parameters) and counts the feasible
evaluations that did not improve on it: after ``patience`` of them the stage is done. Infeasible
evaluations, while the multipliers catch up, do not use up patience.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor

from nomoretuning.training.records import Metrics

__all__ = ["Candidate", "CandidateSelection", "SelectionRule"]

SelectionRule = Literal["feasible_first", "objective"]


@dataclass(frozen=True)
class Candidate:
    """One evaluation of a stage's parameters on the validation split.

    Attributes:
        step: the stage step it was taken at (0: the stage's starting point).
        score: the stage tasks' mean selection metric (higher is better).
        worst_excess: the largest relative excess of a constraint (<= 0 when all are met; 0
            without constraints).
        feasible: whether it counts as feasible under the selection rule.
        metrics: the validation metrics of every task.

    Example:
        >>> a = Candidate.evaluate(3, {"b": {"auc": 0.7}}, ["b"], "auc", {"a": 0.02})
        >>> b = Candidate.evaluate(4, {"b": {"auc": 0.6}}, ["b"], "auc", {"a": -0.01})
        >>> a.feasible, b.feasible, b.beats(a)
        (False, True, True)
    """

    step: int
    score: float
    worst_excess: float
    feasible: bool
    metrics: Metrics

    @classmethod
    def evaluate(
        cls,
        step: int,
        metrics: Metrics,
        stage_tasks: tuple[str, ...] | list[str],
        metric: str,
        excess: Mapping[str, float],
        rule: SelectionRule = "feasible_first",
    ) -> Candidate:
        """The candidate of ``metrics``, with ``excess`` the relative excess of each constraint."""
        score = float(np.mean([metrics[t][metric] for t in stage_tasks]))
        worst = max(excess.values(), default=0.0)
        feasible = worst <= 0 or rule == "objective"
        return cls(step, score, worst, feasible, metrics)

    @property
    def rank(self) -> tuple[int, float]:
        """Sort key, larger is better: feasible first, then score; infeasible by excess."""
        return (1, self.score) if self.feasible else (0, -self.worst_excess)

    def beats(self, other: Candidate | None) -> bool:
        """Whether this candidate ranks strictly above ``other`` (any candidate beats None)."""
        return other is None or self.rank > other.rank


class CandidateSelection:
    """The best candidate of the running stage, its parameters, and patience.

    Example:
        >>> selection = CandidateSelection(patience=1)
        >>> first = Candidate(0, 0.7, 0.0, True, {})
        >>> selection.consider(first, lambda: {}), selection.done
        (True, False)
        >>> selection.consider(Candidate(5, 0.6, 0.0, True, {}), lambda: {}), selection.done
        (False, True)
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: Candidate | None = None
        self.best_parameters: dict[str, Tensor] | None = None
        self.stale_evaluations = 0
        self.done = False

    def reset(self) -> None:
        """Forgets the stage: a new stage starts with no candidate."""
        self.best = None
        self.best_parameters = None
        self.stale_evaluations = 0
        self.done = False

    def consider(
        self, candidate: Candidate, parameters: Callable[[], Mapping[str, Tensor]]
    ) -> bool:
        """Keeps ``candidate`` (and a copy of ``parameters()``) if it beats the best so far;
        returns whether it did. A feasible candidate that does not uses up one unit of patience.
        """
        if candidate.beats(self.best):
            self.best = candidate
            self.best_parameters = copy.deepcopy(
                {k: v.detach().clone() for k, v in parameters().items()}
            )
            self.stale_evaluations = 0
            return True
        if candidate.feasible:
            self.stale_evaluations += 1
            if self.stale_evaluations >= self.patience:
                self.done = True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": None if self.best is None else asdict(self.best),
            "best_parameters": self.best_parameters,
            "stale_evaluations": self.stale_evaluations,
            "done": self.done,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best = state["best"]
        self.best = None if best is None else Candidate(**best)
        self.best_parameters = state["best_parameters"]
        self.stale_evaluations = int(state["stale_evaluations"])
        self.done = bool(state["done"])
