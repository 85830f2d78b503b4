"""The loss-combiner protocol shared by every method.

A combiner maps a dict of scalar task losses to one scalar to back-propagate (``forward``) and,
where the method has state to update after the optimizer step, updates it in ``step``. No combiner
calls ``backward()``: the training loop owns that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["Closure", "LossCombiner", "check_losses", "check_prior", "check_tasks"]

Closure = Callable[[], Mapping[str, Tensor]]
"""Recomputes the task losses at the current parameters on the same batch (no gradient needed)."""


def check_tasks(tasks: Iterable[str], what: str = "tasks") -> tuple[str, ...]:
    """Validates task names: non-empty strings, no duplicates.

    Example:
        >>> check_tasks(["ctr", "cvr"])
        ('ctr', 'cvr')
    """
    if isinstance(tasks, str):
        raise ValueError(f"{what} must be a sequence of task names, got the string {tasks!r}")
    names = tuple(tasks)
    if not names:
        raise ValueError(f"{what} must name at least one task")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: task names must be non-empty strings, got {name!r}")
        if name in seen:
            raise ValueError(f"{what}: task {name!r} appears more than once")
        seen.add(name)
    return names


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

    def __init__(self, tasks: Sequence[str]) -> None:
        super().__init__()
        self.tasks: tuple[str, ...] = check_tasks(tasks)

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        raise NotImplementedError

    def step(self, losses: Mapping[str, Tensor], closure: Closure | None = None) -> None:
        """Post-optimizer-step update. The default does nothing."""
        check_losses(losses, self.tasks)

    def _prior(self, prior: Mapping[str, float] | None) -> dict[str, float]:
        if prior is None:
            return {t: 1.0 / len(self.tasks) for t in self.tasks}
        return check_prior(prior, self.tasks)
