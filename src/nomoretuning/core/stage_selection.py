"""Early stopping for NMT's stages in your own training loop, with the trainer's guard.

Training losses hold a higher task's constraint, not its generalization: in a lower stage the
shared layers can keep the top task's *training* loss within its bound while its validation metric
drifts down. Measured on Census-Income (income > marital, small MMoE, 5 seeds;
``benchmarks/bench_own_loop.py``): with the README's loop and a user's own early stopping on each
stage's task, the lower stage cost income 0.0008 of test AUC and NMT ended 0.0009 below the
better of single-task and joint training; with `StageSelection` −0.0000 (s.e. 0.0001), marital
−0.001 % against joint training.

`StageSelection` is the trainer's selection in a form a loop can call: every evaluation of a stage
is a candidate, the stage's *start* included (so a stage that cannot improve keeps what it was
given); a candidate is admissible while every held task's validation metric stays within
``guard`` standard deviations of its evaluation-to-evaluation noise (`evaluation_noise`, over the
candidates of that task's own stage) of its value when its stage ended; the best admissible
candidate by the stage tasks' mean metric is kept, and the stage is done after ``patience``
evaluations without a better one. Each stage keeps its start (for the top level's, after a joint
start, the joint model) unless its best candidate beats it by more than ``start_margin`` standard
deviations of the stage's evaluation noise: the trainer's start test for a loop that sees one
figure per task. Measured with the same benchmark (25 runs, five settings): without that margin
three top stages left the joint start on a noise-sized validation gain and lost 0.0008-0.0011 of
test AUC, and one lower stage a noise-sized pick that cost the top task 0.0020; with it those
four kept their start, and the two top stages that still left it gained 0.0005 and lost 0.0001.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from nomoretuning.core.base import StagedCombiner, is_staged

__all__ = ["StageSelection", "evaluation_noise"]

_GAUSSIAN_MAD = 0.6744897501960817
"""The median of |Z| for a standard normal Z (its third quartile)."""


def evaluation_noise(values: Sequence[float]) -> float:
    """The standard deviation of a validation figure from one evaluation to the next, robust to
    a trend: the median absolute successive difference over its expectation for Gaussian noise,
    ``median(|diff(values)|) / (sqrt(2) * 0.6745)``. The large steps of early learning, which
    would inflate a root mean square, do not move a median (0 with fewer than three values).

    Example:
        >>> round(evaluation_noise([0.5, 0.7, 0.5, 0.7]), 4)
        0.2097
        >>> round(evaluation_noise([0.0, 0.9, 1.0, 1.1, 1.0, 1.1]), 4)
        0.1048
        >>> evaluation_noise([0.5, 0.7])
        0.0
    """
    if len(values) < 3:
        return 0.0
    steps = np.abs(np.diff(np.asarray(values, dtype=np.float64)))
    return float(np.median(steps) / (np.sqrt(2.0) * _GAUSSIAN_MAD))


class StageSelection:
    """Keeps, for each stage of ``nmt``, its best validation candidate that keeps the finished
    tasks' validation metric; says when the stage is done.

    Args:
        nmt: the staged combiner the loop trains (`nomoretuning.NMT`).
        patience: evaluations without a better admissible candidate after which `done` is True.
        guard: how many standard deviations of its evaluation-to-evaluation noise a held task's
            metric may fall below its value when its stage ended (the trainer's ``metric_guard``).
        start_margin: how many standard deviations of the stage's evaluation noise a stage must
            gain over its start to leave it (the trainer's ``start_test``, in the units a loop
            has; every stage but the first, whose start is the untrained model, joint start
            or not); None: the best candidate, however small its gain.

    The metric is any per-task validation figure where higher is better (AUC, NDCG; for a loss
    pass its negative). In the loop::

        selection = nt.StageSelection(nmt)
        while not nmt.finished:
            selection.offer(model, validate(model))  # the stage's start is a candidate
            while not selection.done:
                train_one_epoch()  # the three lines: nmt(losses), backward, step, nmt.step
                selection.offer(model, validate(model))
            selection.restore(model)  # the stage's best admissible candidate
            nmt.next_stage()

    Example:
        >>> import torch
        >>> import nomoretuning as nt
        >>> model, nmt = torch.nn.Linear(1, 1), nt.NMT(["a", "b"], joint_start=False)
        >>> selection = nt.StageSelection(nmt, patience=1)
        >>> selection.offer(model, {"a": 0.70, "b": 0.50})  # stage 1 (a): its start
        True
        >>> selection.offer(model, {"a": 0.80, "b": 0.50}), selection.done
        (True, False)
        >>> selection.offer(model, {"a": 0.75, "b": 0.60}), selection.done
        (False, True)
        >>> selection.restore(model)  # the evaluation where a was 0.80
        {'a': 0.8, 'b': 0.5}
        >>> nmt.next_stage(bound=0.3)  # a's training loss there (here given)
        >>> {t: round(v, 4) for t, v in selection.floors.items()}  # 0.80 less a's noise s.d.
        {'a': 0.7214}
        >>> selection.offer(model, {"a": 0.80, "b": 0.50})  # b's stage: its start
        True
        >>> selection.offer(model, {"a": 0.70, "b": 0.90})  # a fell below its floor
        False
    """

    def __init__(
        self,
        nmt: StagedCombiner,
        patience: int = 2,
        guard: float = 1.0,
        start_margin: float | None = 1.0,
    ) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(
                f"StageSelection: patience must be a positive integer, got {patience!r}"
            )
        if not (isinstance(guard, int | float) and 0 <= guard < float("inf")):
            raise ValueError(f"StageSelection: guard must be a finite number >= 0, got {guard!r}")
        if start_margin is not None and not (
            isinstance(start_margin, int | float) and start_margin >= 0
        ):
            raise ValueError(
                f"StageSelection: start_margin must be a number >= 0 or None, got {start_margin!r}"
            )
        if not is_staged(nmt):
            raise ValueError(
                f"StageSelection selects within NMT's stages; got {type(nmt).__name__}, which "
                "trains in one stage: keep its best validation model with your own early stopping"
            )
        if nmt.switch is not None:
            raise ValueError(
                "StageSelection ends the stages itself (restore, then nmt.next_stage()); build "
                "NMT without switch="
            )
        self.nmt = nmt
        self.patience = patience
        self.guard = float(guard)
        self.start_margin = None if start_margin is None else float(start_margin)
        self.kept_start = False
        """Whether the last `restore` kept its stage's start over a better-scored candidate
        whose gain was within ``start_margin`` noise standard deviations."""
        self.floors: dict[str, float] = {}
        """The validation metric each finished task must keep (its value when its stage ended,
        less ``guard`` noise standard deviations)."""
        self.history: list[dict[str, float]] = []
        """The running stage's candidates' metrics, in order."""
        self._stage: int | None = None
        self._tasks: tuple[str, ...] = ()
        self._records = False
        self._best: tuple[tuple[int, float], dict[str, Any]] | None = None  # rank, parameters
        self._best_index = 0  # its metrics: history[_best_index]
        self._start_state: dict[str, Any] | None = None  # a tested stage's admissible start
        self._stale = 0

    @property
    def done(self) -> bool:
        """Whether the running stage has had ``patience`` evaluations without a better one."""
        return self._best is not None and self._stale >= self.patience

    def shortfall(self, metrics: Mapping[str, float]) -> float:
        """The largest shortfall of a held task's metric below its floor (<= 0: admissible)."""
        return max(
            (self.floors[t] - float(metrics[t]) for t in self.nmt.constrained_tasks),
            default=0.0,
        )

    def offer(self, model: nn.Module, metrics: Mapping[str, float]) -> bool:
        """Records ``model``'s validation ``metrics`` (per task, higher is better) as a candidate
        of the running stage; returns whether it is the best so far (its parameters are copied).

        Raises:
            ValueError: a task of the stage, or a held one, has no metric, or a NaN or infinite one.
            RuntimeError: the stage changed without `restore`, or training has finished.
        """
        nmt = self.nmt
        if nmt.finished:
            raise RuntimeError("StageSelection: training has finished; there is no stage to offer")
        if self._stage is None:
            self._stage, self._tasks, self._records = nmt.stage, nmt.stage_tasks, nmt.records_bound
        elif self._stage != nmt.stage:
            raise RuntimeError(
                f"StageSelection: stage {self._stage} ended without restore(model); call "
                "selection.restore(model) before nmt.next_stage()"
            )
        needed = (*nmt.stage_tasks, *nmt.constrained_tasks)
        missing = [t for t in needed if t not in metrics]
        if missing:
            raise ValueError(f"StageSelection: metrics lack the tasks {missing}; give every task's")
        values = {t: float(metrics[t]) for t in metrics}
        bad = [t for t in needed if not np.isfinite(values[t])]
        if bad:
            raise ValueError(
                f"StageSelection: the metric of task {bad[0]!r} is {values[bad[0]]}; a candidate "
                "needs a finite figure per task (an AUC on a split with one class is undefined)"
            )
        unknown = [t for t in nmt.constrained_tasks if t not in self.floors]
        if unknown:
            raise ValueError(
                f"StageSelection: task {unknown[0]!r} has no floor: its stage ended without this "
                "selection's restore(model); build StageSelection before the first stage"
            )
        self.history.append(values)
        shortfall = self.shortfall(values)
        score = float(np.mean([values[t] for t in nmt.stage_tasks]))
        rank = (1, score) if shortfall <= 0 else (0, -shortfall)
        if self._best is None or rank > self._best[0]:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self._best, self._best_index = (rank, state), len(self.history) - 1
            if self._best_index == 0 and self._tests_start and shortfall <= 0:
                self._start_state = state
            self._stale = 0
            return True
        self._stale += 1
        return False

    def restore(self, model: nn.Module) -> dict[str, float]:
        """Loads the running stage's best candidate into ``model`` and ends the stage's selection:
        its tasks' floors are recorded (except after a joint start, whose figures hold nothing);
        returns that candidate's metrics. Call it before ``nmt.next_stage()``.

        Raises:
            RuntimeError: no candidate was offered in this stage.
        """
        if self._best is None:
            raise RuntimeError("StageSelection: restore before any offer; offer a candidate first")
        self.kept_start = self._keeps_start()
        if self.kept_start:
            assert self._start_state is not None
            values, state = self.history[0], self._start_state
        else:
            values, state = self.history[self._best_index], self._best[1]
        model.load_state_dict(state)
        if self._records:
            for task in self._tasks:
                noise = evaluation_noise([h[task] for h in self.history])
                self.floors[task] = values[task] - self.guard * noise
        self._stage, self._best, self._start_state = None, None, None
        self._best_index, self._stale, self.history = 0, 0, []
        return dict(values)

    @property
    def _tests_start(self) -> bool:
        """Whether the running stage's start is tested: every stage that records a bound but
        the first (whose start is the untrained model, joint start or not)."""
        return self.start_margin is not None and self._records and (self._stage or 1) > 1

    def _keeps_start(self) -> bool:
        """A tested stage keeps its (admissible) start unless its best candidate's score beats
        the start's by more than ``start_margin`` standard deviations of the stage's evaluation
        noise."""
        if self._start_state is None or self._best_index == 0 or self.start_margin is None:
            return False
        scores = [float(np.mean([h[t] for t in self._tasks])) for h in self.history]
        gain = scores[self._best_index] - scores[0]
        return gain <= self.start_margin * evaluation_noise(scores)

    def state_dict(self) -> dict[str, Any]:
        """The selection's state (floors, the running stage's candidates and its best one's
        parameters), for a checkpoint of your loop."""
        best = None if self._best is None else copy.deepcopy(self._best)
        return {
            "floors": dict(self.floors),
            "history": [dict(h) for h in self.history],
            "stage": self._stage,
            "tasks": list(self._tasks),
            "records": self._records,
            "best": best,
            "best_index": self._best_index,
            "start_state": copy.deepcopy(self._start_state),
            "stale": self._stale,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores `state_dict`'s output."""
        self.floors = {k: float(v) for k, v in state["floors"].items()}
        self.history = [dict(h) for h in state["history"]]
        self._stage = state["stage"]
        self._tasks, self._records = tuple(state["tasks"]), bool(state["records"])
        self._best = copy.deepcopy(state["best"])
        self._best_index = int(state["best_index"])
        self._start_state = copy.deepcopy(state["start_state"])
        self._stale = int(state["stale"])
