"""Choosing a stage's parameters: candidates, feasible-first ranking and patience.

Every evaluation of a stage on the validation split is a `Candidate`. With the ``feasible_first``
rule (the default, as TFCO picks among its snapshots) a candidate is feasible when every
constrained task meets its constraint on validation; feasible candidates beat infeasible ones,
feasible ones rank by the stage tasks' mean selection metric (higher is better), infeasible ones by
their largest relative excess (smaller is better). The ``objective`` rule looks at the metric only.
`CandidateSelection` keeps the best candidate (and its parameters) and counts the feasible
evaluations that did not improve on it: after ``patience`` of them the stage is done (infeasible
evaluations, while the multipliers catch up, do not use up that patience). With patience in
epochs (the trainer's default) the clock runs from the last better candidate whatever the
evaluations in between, so a stage that never gets back to feasible ends after ``patience``.

At the stage's end `CandidateSelection.choose` applies the *one-standard-error rule* (Breiman et
al.'s rule for choosing among cross-validated models): every feasible candidate whose score is
within ``band`` standard deviations of the best one's is as good as it, the standard deviation
being the score's evaluation-to-evaluation noise in this stage (`evaluation_noise`, robust to
the steps of early learning); among those
the one best for the *other* tasks, in priority order, is chosen: a lower stage keeps the higher
tasks where they were, the top task's own stage leaves the lower tasks the most to start from.

With ``start_test`` (a number of standard errors), `CandidateSelection.settle_start` keeps a
tested stage's starting point (for NMT's top-task stage: the joint start) unless the best
candidate beats it by that many standard errors of their difference, paired over the validation
rows: a stage that picks the best of many noisy candidates otherwise prefers them to its start
even where the gain does not carry over to new data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from torch import Tensor

from nomoretuning.core.stage_selection import evaluation_noise
from nomoretuning.training.records import Metrics, StartComparison

__all__ = ["Candidate", "CandidateSelection", "SelectionRule", "evaluation_noise"]

SelectionRule = Literal["feasible_first", "objective"]


@dataclass(frozen=True)
class Candidate:
    """One evaluation of a stage's parameters on the validation split.

    Attributes:
        step: the stage step it was taken at (0: the stage's starting point).
        score: the stage tasks' mean selection metric (higher is better; see `evaluate`).
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
        """The candidate of ``metrics``, with ``excess`` the relative excess of each constraint.

        A task whose metric is undefined on the validation split (NaN: an AUC where the split
        holds one class, kept with ``allow_single_class``) is left out of the score; where no
        stage task has one, the score is minus their mean validation loss.
        """
        values = [float(metrics[t][metric]) for t in stage_tasks]
        defined = [v for v in values if np.isfinite(v)]
        if defined:
            score = float(np.mean(defined))
        else:
            losses = [float(metrics[t].get("loss", np.nan)) for t in stage_tasks]
            score = -float(np.mean(losses)) if np.all(np.isfinite(losses)) else -np.inf
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

    ``unit="evaluations"``: the stage is done after ``patience`` feasible evaluations without a
    better candidate. ``unit="epochs"``: after ``patience`` epochs of training since the last
    better candidate, so the cadence of evaluations does not change when a stage ends; the clock
    starts at the stage's first candidate (its starting point, for every stage after the first).

    Example:
        >>> selection = CandidateSelection(patience=1)
        >>> first = Candidate(0, 0.7, 0.0, True, {})
        >>> selection.consider(first, lambda: {}), selection.done
        (True, False)
        >>> selection.consider(Candidate(5, 0.6, 0.0, True, {}), lambda: {}), selection.done
        (False, True)
    """

    def __init__(
        self,
        patience: float,
        unit: Literal["evaluations", "epochs"] = "evaluations",
        band: float | None = None,
        metric: str = "auc",
        pool_size: int = 8,
        start_test: float | None = None,
    ) -> None:
        self.patience = patience
        self.stage_patience = patience
        """The running stage's patience (`reset` may set another)."""
        self.start_test = start_test
        self.tests_start = False
        """Whether the running stage's start is tested (`settle_start`; set by `reset`)."""
        self.comparison: StartComparison | None = None
        """What the last `settle_start` measured (None where it compared nothing)."""
        self.start: tuple[Candidate, dict[str, Tensor]] | None = None
        """With a tested start: the stage's first candidate and its parameters (the copy made
        when it was the best)."""
        self.unit = unit
        self.band = band
        self.metric = metric
        self.pool_size = pool_size
        self.order: tuple[str, ...] = ()
        """The tasks that break ties under the band, in priority order (set per stage)."""
        self.best: Candidate | None = None
        self.best_parameters: dict[str, Tensor] | None = None
        self.seen: list[Candidate] = []
        """Every candidate of the stage, in order."""
        self.pool: list[tuple[Candidate, dict[str, Tensor]]] = []
        """With a ``band``: the feasible candidates that may still tie with the best (on CPU)."""
        self.stale_evaluations = 0
        self.progress_at: float | None = None
        self.done = False

    MIN_EVALUATIONS = 2
    """With ``unit="epochs"``, a stage also waits for this many evaluations without a better
    candidate (one noisy evaluation never ends a stage)."""

    def reset(
        self, order: Sequence[str] = (), test_start: bool = False, patience: float | None = None
    ) -> None:
        """Forgets the stage: a new stage starts with no candidate; ``order``: its tie-break
        tasks (see `choose`); ``test_start``: whether `settle_start` tests its starting point
        (with ``start_test`` set); ``patience``: the stage's own (None: the one given at
        construction)."""
        self.order = tuple(order)
        self.stage_patience = self.patience if patience is None else patience
        self.tests_start = test_start and self.start_test is not None
        self.comparison = None
        self.start = None
        self.best = None
        self.best_parameters = None
        self.seen = []
        self.pool = []
        self.stale_evaluations = 0
        self.progress_at = None
        self.done = False

    def consider(
        self,
        candidate: Candidate,
        parameters: Callable[[], Mapping[str, Tensor]],
        epochs: float = 0.0,
    ) -> bool:
        """Keeps ``candidate`` (and a copy of ``parameters()``) if it beats the best so far;
        returns whether it did, and updates the patience (``epochs``: training so far)."""
        improved = candidate.beats(self.best)
        self.seen.append(candidate)
        if improved:  # always for a stage's first candidate
            self.best = candidate
            self.best_parameters = copy.deepcopy(
                {k: v.detach().clone() for k, v in parameters().items()}
            )
            if self.tests_start and len(self.seen) == 1:  # a later best gets a copy of its own
                self.start = (candidate, self.best_parameters)
        if self.band is not None and candidate.feasible:
            self._pool(candidate, parameters)
        if self.unit == "epochs":
            if improved and (candidate.step > 0 or self.progress_at is None):
                self.progress_at = epochs
                self.stale_evaluations = 0
            elif self.progress_at is not None:
                self.stale_evaluations += 1
                waited = epochs - self.progress_at >= self.stage_patience - 1e-9
                if waited and self.stale_evaluations >= self.MIN_EVALUATIONS:
                    self.done = True
            return improved
        if improved:
            self.stale_evaluations = 0
        elif candidate.feasible:
            self.stale_evaluations += 1
            if self.stale_evaluations >= self.stage_patience:
                self.done = True
        return improved

    def _pool(self, candidate: Candidate, parameters: Callable[[], Mapping[str, Tensor]]) -> None:
        """Keeps ``candidate`` among those that may tie with the best: the feasible ones within
        twice the band of the best so far; past ``pool_size`` of them, the best one and those
        best on the tie-break."""
        copied = {k: v.detach().to("cpu", copy=True) for k, v in parameters().items()}
        self.pool.append((candidate, copied))
        assert self.best is not None and self.band is not None
        if len(self.seen) >= 3:
            floor = self.best.score - 2 * self.band * evaluation_noise([c.score for c in self.seen])
            self.pool = [entry for entry in self.pool if entry[0].score >= floor]
        best = self.best
        self.pool.sort(key=lambda e: (e[0] is best, self._tie_break(e[0])), reverse=True)
        del self.pool[self.pool_size :]

    def choose(self) -> Candidate | None:
        """The stage's choice by the one-standard-error rule (see the module docstring): among
        the feasible candidates within ``band`` evaluation-noise standard deviations of the best
        score, the best on ``metric`` for the tasks of ``order`` (lexicographically), then on
        score. Makes it the best candidate (and its parameters) and returns it; without a band,
        or without a feasible candidate, the best stays.

        Example:
            >>> selection = CandidateSelection(patience=1, band=1.0)
            >>> selection.reset(order=["low"])
            >>> for step, (score, other) in enumerate([(0.715, 0.9), (0.72, 0.8), (0.70, 0.95)]):
            ...     metrics = {"top": {"auc": score}, "low": {"auc": other}}
            ...     _ = selection.consider(Candidate(step, score, 0.0, True, metrics), dict)
            >>> selection.best.step, selection.choose().step
            (1, 0)
        """
        best = self.best
        if self.band is None or best is None or not best.feasible or not self.pool:
            return best
        floor = best.score - self.band * evaluation_noise([c.score for c in self.seen])
        tied = [entry for entry in self.pool if entry[0].score >= floor]
        chosen, parameters = max(tied, key=lambda entry: self._tie_break(entry[0]))
        if chosen is not best:
            self.best, self.best_parameters = chosen, parameters
        return chosen

    def settle_start(
        self, compare: Callable[[Mapping[str, Tensor], Mapping[str, Tensor]], tuple[float, float]]
    ) -> bool:
        """In a stage whose start is tested (see `reset`), when the best candidate is not the
        start: ``compare(best_parameters, start_parameters)`` gives the best's validation metric
        minus the start's and its standard error; unless the difference is at least
        ``start_test`` standard errors, the start becomes the best again. Returns whether it did;
        `comparison` keeps what was measured.

        Example:
            >>> selection = CandidateSelection(patience=1, start_test=2.0)
            >>> selection.reset(test_start=True)
            >>> for step, score in enumerate([0.70, 0.72]):
            ...     _ = selection.consider(Candidate(step, score, 0.0, True, {}), dict)
            >>> selection.settle_start(lambda best, start: (0.02, 0.015)), selection.best.step
            (True, 0)
            >>> round(selection.comparison.z, 2), selection.comparison.kept_start
            (1.33, True)
        """
        best, start = self.best, self.start
        self.comparison = None
        if not self.tests_start or start is None or best is None or best.step == start[0].step:
            return False
        if not best.feasible or not start[0].feasible:
            return False
        assert self.start_test is not None and self.best_parameters is not None
        difference, error = compare(self.best_parameters, start[1])
        kept_start = not difference >= self.start_test * error
        self.comparison = StartComparison(difference, error, self.start_test, kept_start)
        if kept_start:
            self.best, self.best_parameters = start[0], start[1]
        return kept_start

    def _tie_break(self, candidate: Candidate) -> tuple[float, ...]:
        """The one-standard-error rule's key: the ``order`` tasks' metrics (a missing value
        last), then the score."""
        values = (float(candidate.metrics[t][self.metric]) for t in self.order)
        return (*(v if np.isfinite(v) else -np.inf for v in values), candidate.score)

    def state_dict(self) -> dict[str, Any]:
        return {
            "order": list(self.order),
            "best": None if self.best is None else asdict(self.best),
            "best_parameters": self.best_parameters,
            "seen": [asdict(c) for c in self.seen],
            "pool": [(asdict(c), p) for c, p in self.pool],
            "tests_start": self.tests_start,
            "start": None if self.start is None else (asdict(self.start[0]), self.start[1]),
            "stale_evaluations": self.stale_evaluations,
            "stage_patience": self.stage_patience,
            "progress_at": self.progress_at,
            "done": self.done,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best = state["best"]
        self.best = None if best is None else Candidate(**best)
        self.best_parameters = state["best_parameters"]
        self.order = tuple(state.get("order", ()))
        self.seen = [Candidate(**c) for c in state.get("seen", [])]
        self.pool = [(Candidate(**c), p) for c, p in state.get("pool", [])]
        self.tests_start = bool(state.get("tests_start", False))
        start = state.get("start")
        self.start = None if start is None else (Candidate(**start[0]), start[1])
        self.stale_evaluations = int(state["stale_evaluations"])
        self.stage_patience = float(state.get("stage_patience", self.patience))
        self.progress_at = state["progress_at"]
        self.done = bool(state["done"])
