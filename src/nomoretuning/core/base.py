"""The loss-combiner protocol shared by every method.

A combiner maps a dict of scalar task losses to one scalar to back-propagate (``forward``) and,
where the method has state to update after the optimizer step, updates it in ``step``. No combiner
calls ``backward()``: the training loop owns that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Protocol, TypeGuard, runtime_checkable

import torch
from torch import Tensor, nn

from nomoretuning import checks

__all__ = [
    "Closure",
    "LossCombiner",
    "StagedCombiner",
    "check_losses",
    "check_prior",
    "is_staged",
]

Closure = Callable[[], Mapping[str, Tensor]]
"""Recomputes the task losses at the current parameters on the same batch (no gradient needed)."""


def check_losses(losses: Mapping[str, Tensor], tasks: Sequence[str]) -> None:
    """Checks that ``losses`` holds exactly ``tasks``, each a finite scalar tensor.

    Raises:
        ValueError: naming the missing, unknown, non-scalar or non-finite task loss.

    Example:
        >>> check_losses({"a": torch.tensor(1.0)}, ["a"])
        >>> check_losses({"a": torch.tensor(1.0), "b": torch.tensor(2.0)}, ["a"])
        Traceback (most recent call last):
        ...
        ValueError: unknown task loss 'b'; expected tasks ['a']
    """
    if not isinstance(losses, Mapping):
        raise ValueError(f"losses must be a dict of task name -> scalar tensor, got {type(losses)}")
    missing = [t for t in tasks if t not in losses]
    if missing:
        raise ValueError(f"missing task loss {missing[0]!r}; expected tasks {list(tasks)}")
    unknown = [t for t in losses if t not in tasks]
    if unknown:
        raise ValueError(f"unknown task loss {unknown[0]!r}; expected tasks {list(tasks)}")
    for task in tasks:
        value = losses[task]
        if not isinstance(value, Tensor):
            raise ValueError(f"loss of task {task!r} must be a torch.Tensor, got {type(value)}")
        if value.dim() != 0:
            raise ValueError(
                f"loss of task {task!r} must be a scalar (0-dim) tensor, got shape "
                f"{tuple(value.shape)}; reduce it with .mean() or .sum()"
            )
    values = torch.stack([losses[t].detach().float() for t in tasks])
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        bad = tasks[int((~finite).nonzero()[0])]
        raise ValueError(f"loss of task {bad!r} is not finite: {float(losses[bad])}")


def check_prior(prior: Mapping[str, float], tasks: Sequence[str]) -> dict[str, float]:
    """Checks a prior over ``tasks``: non-negative weights summing to 1 (missing tasks count 0)."""
    unknown = [t for t in prior if t not in tasks]
    if unknown:
        raise ValueError(f"prior names unknown task {unknown[0]!r}; expected tasks {list(tasks)}")
    weights = {t: float(prior.get(t, 0.0)) for t in tasks}
    for task, w in weights.items():
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"prior weight of task {task!r} must be finite and >= 0, got {w}")
    total = sum(weights.values())
    if not math.isclose(total, 1.0, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"prior weights must sum to 1, got {total}")
    return weights


class LossCombiner(nn.Module):
    """Base class: combines ``{task: scalar loss}`` into one scalar.

    Subclasses implement ``forward(losses, prior=None)`` and, if they have post-step state,
    ``step(losses, closure=None)``. ``prior`` (task -> weight, summing to 1) is how NMT composes
    with a combiner: it multiplies the combiner's own task weights (see ``docs/method.md``).

    Example:
        >>> from nomoretuning import EqualWeights
        >>> combiner = EqualWeights(["a", "b"])
        >>> combiner({"a": torch.tensor(1.0), "b": torch.tensor(3.0)})
        tensor(2.)
    """

    needs_closure: ClassVar[bool] = False
    """Whether ``step`` needs ``closure`` (the losses recomputed after the optimizer step)."""

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        self.tasks: tuple[str, ...] = checks.task_names(tasks)

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        raise NotImplementedError

    def step(self, losses: Mapping[str, Tensor], closure: Closure | None = None) -> None:
        """Post-optimizer-step update. The default does nothing."""
        check_losses(losses, self.tasks)

    @property
    def task_weights(self) -> dict[str, float]:
        """The current weight of each task's loss, for logging ({} when the weights are fixed)."""
        return {}

    def _prior(self, prior: Mapping[str, float] | None) -> dict[str, float]:
        if prior is None:
            return {t: 1.0 / len(self.tasks) for t in self.tasks}
        return check_prior(prior, self.tasks)


@runtime_checkable
class StagedCombiner(Protocol):
    """A combiner trained in stages by priority (NMT implements it): what a training loop needs.

    Stage k minimizes ``stage_tasks`` subject to one constraint ``L_j <= L_j* + slack(j)`` per
    task of ``constrained_tasks``. The loop ends a stage with ``next_stage(bound)``. Which data
    drives the multipliers is the loop's explicit choice at each call: ``step(losses)`` takes a
    dual step from the training losses it is given, ``step(losses, update_dual=False)`` does not,
    and ``update_multipliers(losses)`` takes one from losses measured elsewhere (held out).

    Example:
        >>> from nomoretuning import NMT, EqualWeights
        >>> isinstance(NMT(["a", "b"]), StagedCombiner), is_staged(EqualWeights(["a"]))
        (True, False)
    """

    tasks: tuple[str, ...]

    @property
    def num_stages(self) -> int: ...

    @property
    def stage(self) -> int:
        """The running stage, 1-based."""
        ...

    @property
    def stage_tasks(self) -> tuple[str, ...]: ...

    @property
    def constrained_tasks(self) -> tuple[str, ...]: ...

    @property
    def finished(self) -> bool: ...

    @property
    def bounds(self) -> dict[str, float]: ...

    @property
    def records_bound(self) -> bool:
        """Whether ``next_stage`` records the running stage's bound (False for a stage whose
        losses bound nothing, such as NMT's joint start): a caller may skip measuring it."""
        ...

    @property
    def multipliers(self) -> dict[str, float]: ...

    @property
    def switch(self) -> object | None:
        """The automatic stage switch, if any (a training loop that ends stages itself refuses
        one)."""
        ...

    def slack(self, task: str, bound: float | None = None) -> float:
        """The slack of ``task``'s constraint around ``bound`` (default: its recorded bound)."""
        ...

    def next_stage(
        self,
        bound: float | Mapping[str, float] | None = None,
        baseline: float | Mapping[str, float] | None = None,
    ) -> None:
        """Ends the stage with its tasks' bounds (and, optionally, the loss of a constant
        prediction on the same data)."""
        ...

    def update_multipliers(
        self, losses: Mapping[str, Tensor | float], steps: int | None = None
    ) -> None:
        """One dual step from losses measured elsewhere, standing for ``steps`` primal steps."""
        ...

    def step(
        self,
        losses: Mapping[str, Tensor],
        closure: Closure | None = None,
        *,
        update_dual: bool = True,
    ) -> None: ...


def is_staged(combiner: object) -> TypeGuard[StagedCombiner]:
    """Whether ``combiner`` trains in stages (implements `StagedCombiner`)."""
    return isinstance(combiner, StagedCombiner)
