"""Where the constraints' bounds and values come from: held-out data or the training split.

``trainer.constraints`` chooses (`nomoretuning.training.config.CONSTRAINT_DATA`):

- ``"valid"``: the multipliers follow held-out losses, never the training losses of a
  step. Every ``constraint_every`` steps the constrained tasks' losses on the *constraint set* (up
  to ``constraint_rows`` validation rows) are re-estimated by evaluating one more chunk of it
  (`nomoretuning.training.held_out.HeldOutLosses`) and the multipliers take one dual step from
  that estimate, integrated over the ``constraint_every`` steps it stands for
  (`StagedCombiner.update_multipliers`). A task's bound ``L*`` is its loss on the constraint set at
  the parameters selected for its stage. With ``constraint_every: null`` the dual step is taken at
  each evaluation instead, from the full validation losses (and ``L*`` is the selected validation
  loss).
- ``"train"`` (default): the multipliers take a dual step at every training step from that
  step's training losses, and ``L*`` is the mean training loss over one full pass of the training
  split at the selected parameters, in training mode, without gradients (the way that constraint
  is evaluated during training).

Either way, a candidate's feasibility for selection is checked on validation: task j's
validation loss against its validation loss when its stage ended (the *reference*), with the
combiner's slack (or ``trainer.feasibility_tolerance``). With ``trainer.metric_guard`` set (1,
the default) its validation selection metric must also stay within that many standard deviations
of its evaluation-to-evaluation noise (`nomoretuning.core.stage_selection.evaluation_noise`, over
the candidates of the task's own stage) of its value when its stage ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from nomoretuning.core.nmt import constraint
from nomoretuning.data.batching import Batch
from nomoretuning.training import distributed as parallel
from nomoretuning.training.held_out import HeldOutLosses, LossFunction
from nomoretuning.training.records import Metrics
from nomoretuning.training.selection import Candidate, evaluation_noise
from nomoretuning.training.stages import StagePlan

__all__ = ["BASELINE_ROWS", "ConstraintData", "measure_training_losses", "training_labels"]


class ConstraintData:
    """The trainer's constraint bookkeeping for one run (see the module docstring).

    Args:
        plan: the combiner's stages.
        source: ``"valid"`` or ``"train"``.
        feasibility_tolerance: relative validation tolerance for selection (None: the
            combiner's own slack).
        metric_guard: (k, metric): a finished task's validation ``metric`` may fall at most k
            of its evaluation-noise standard deviations below its value when its stage ended
            (k None: no guard).
    """

    def __init__(
        self,
        plan: StagePlan,
        source: Literal["valid", "train"],
        feasibility_tolerance: float | None = None,
        held_out: HeldOutLosses | None = None,
        every: int | None = None,
        metric_guard: tuple[float | None, str] = (None, "auc"),
    ) -> None:
        self.plan = plan
        self.source = source
        self.feasibility_tolerance = feasibility_tolerance
        self.reference: dict[str, float] = {}
        """Each task's validation loss when its stage ended."""
        self.guard, self.metric = metric_guard
        self.metric_floor: dict[str, float] = {}
        """With a metric guard: the validation metric each finished task must keep."""
        self.estimate = held_out if every is not None else None
        self.every = every

    @property
    def held_out(self) -> bool:
        """Whether bounds and dual steps come from validation losses."""
        return self.plan.staged is not None and self.source == "valid"

    @property
    def dual_from_training_steps(self) -> bool:
        """Whether each training step's losses drive the multipliers."""
        return not self.held_out

    def excess(self, metrics: Metrics) -> dict[str, float]:
        """Relative excess of each constrained task over its validation reference (<= 0: met),
        and, with a metric guard, of its metric's shortfall below its floor."""
        excess = {
            t: constraint.relative_to_bound(
                constraint.violation(metrics[t]["loss"], self.reference[t], self._slack(t)),
                self.reference[t],
            )
            for t in self.plan.constrained_tasks
        }
        for task in self.plan.constrained_tasks:
            if task in self.metric_floor:
                floor = self.metric_floor[task]
                shortfall = (floor - float(metrics[task][self.metric])) / max(abs(floor), 1e-12)
                excess[f"{task}:{self.metric}"] = shortfall
        return excess

    def begin_stage(self, model: nn.Module, losses: LossFunction) -> None:
        """A constrained stage starts: the held-out estimate at its starting point."""
        if self.held_out and self.estimate is not None and self.plan.constrained_tasks:
            self.estimate.refresh(model, losses, self.plan.constrained_tasks)

    def after_step(self, model: nn.Module, losses: LossFunction, stage_step: int) -> None:
        """Every ``constraint_every`` steps: the held-out dual step from the running estimate."""
        staged, estimate, every = self.plan.staged, self.estimate, self.every
        if not (self.held_out and staged is not None and estimate is not None and every):
            return
        if self.plan.constrained_tasks and stage_step % every == 0:
            values = estimate.refresh(model, losses, self.plan.constrained_tasks)
            staged.update_multipliers(values, steps=every)

    def after_evaluation(self, metrics: Metrics) -> None:
        """With ``constraint_every: null``: the held-out dual step from the validation losses."""
        staged = self.plan.staged
        constrained = self.plan.constrained_tasks
        if self.held_out and self.estimate is None and staged is not None and constrained:
            staged.update_multipliers({t: metrics[t]["loss"] for t in constrained})

    def stage_bounds(
        self,
        selected: Metrics,
        model: nn.Module,
        losses: LossFunction,
        measure_training: Callable[[tuple[str, ...]], dict[str, float]],
    ) -> dict[str, float]:
        """The stage tasks' bounds at the selected parameters (already restored)."""
        tasks = self.plan.stage_tasks
        if not self.held_out:
            return measure_training(tasks)
        if self.estimate is not None:
            return self.estimate.refresh(model, losses, tasks)
        return {t: float(selected[t]["loss"]) for t in tasks}

    def stage_baselines(
        self,
        losses: LossFunction,
        constant_score: Callable[[str, Tensor], float],
        measure_training: Callable[[tuple[str, ...]], dict[str, float]],
    ) -> dict[str, float]:
        """The loss of the best constant prediction of each stage task, on the same data as its
        bound (for NMT's reducible tolerance)."""
        every = tuple(self.plan.combiner.tasks)  # a constant model predicts every task
        if self.held_out and self.estimate is not None:
            values = self.estimate.baselines(losses, every, constant_score)
        else:
            values = measure_training(every)
        return {t: values[t] for t in self.plan.stage_tasks}

    def record_references(
        self, tasks: tuple[str, ...], selected: Metrics, seen: Sequence[Candidate] = ()
    ) -> None:
        """Remembers the finished stage tasks' validation losses at the selected parameters
        and, with a metric guard, their metric floors from the stage's candidates ``seen``."""
        for task in tasks:
            self.reference[task] = selected[task]["loss"]
            if self.guard is not None:
                spread = evaluation_noise([c.metrics[task][self.metric] for c in seen])
                self.metric_floor[task] = selected[task][self.metric] - self.guard * spread

    def _slack(self, task: str) -> float:
        reference = self.reference[task]
        if self.feasibility_tolerance is not None:
            return constraint.slack(reference, self.feasibility_tolerance, "relative")
        staged = self.plan.staged
        return staged.slack(task, reference) if staged is not None else 0.0

    def state_dict(self) -> dict[str, Any]:
        estimate = None if self.estimate is None else self.estimate.state_dict()
        return {
            "reference": dict(self.reference),
            "metric_floor": dict(self.metric_floor),
            "estimate": estimate,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.reference = {k: float(v) for k, v in state["reference"].items()}
        self.metric_floor = {k: float(v) for k, v in state.get("metric_floor", {}).items()}
        if self.estimate is not None and state.get("estimate") is not None:
            self.estimate.load_state_dict(state["estimate"])


@torch.no_grad()
def measure_training_losses(
    model: nn.Module,
    split: Any,
    tasks: tuple[str, ...],
    losses: Callable[[nn.Module, Batch], Mapping[str, Tensor]],
    batch_size: int,
    device: torch.device,
) -> dict[str, float]:
    """Mean training loss of ``tasks`` over one pass of ``split``: training mode, no gradient.

    Under data parallelism each rank measures its contiguous share and the sums are all-reduced.
    """
    model.train()
    totals = dict.fromkeys(tasks, 0.0)
    rows = 0
    world = parallel.world_size()
    sharded = world > 1 and hasattr(split, "subset")
    if sharded:
        share = parallel.shard_range(len(split), parallel.rank(), world)
        split = split.subset(slice(*share))
    for batch in split.batches(batch_size, shuffle=False):
        batch = batch.to(device)
        values = losses(model, batch)
        for task in tasks:
            totals[task] += float(values[task]) * len(batch)
        rows += len(batch)
    if sharded:
        summed = parallel.all_reduce_sum(
            torch.tensor([*(totals[t] for t in tasks), float(rows)], dtype=torch.float64)
        ).tolist()
        totals, rows = dict(zip(tasks, summed[:-1], strict=True)), int(summed[-1])
    return {t: totals[t] / rows for t in tasks}


BASELINE_ROWS = 1 << 23
"""At most this many training labels (every k-th row) give a task's constant baseline."""


def training_labels(
    split: Any, tasks: tuple[str, ...], batch_size: int, limit: int = BASELINE_ROWS
) -> dict[str, Tensor]:
    """Each task's labels over the training split, in order: every row, or every k-th row of a
    split of more than ``limit`` rows (a streamed one), so that memory stays bounded.

    Example:
        >>> from nomoretuning.data import TensorSplit
        >>> split = TensorSplit(torch.zeros(10, 1, dtype=torch.long), torch.zeros(10, 0),
        ...                     {"a": torch.arange(10.0)})
        >>> training_labels(split, ("a",), 4, limit=5)["a"].tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
    """
    stride = max(1, -(-len(split) // limit))
    labels: dict[str, list[Tensor]] = {t: [] for t in tasks}
    seen = 0
    for batch in split.batches(batch_size, shuffle=False):
        first = (-seen) % stride  # the batch's first row on the stride
        for task in tasks:
            labels[task].append(batch.labels[task][first::stride])
        seen += len(batch)
    return {t: torch.cat(v) for t, v in labels.items()}
