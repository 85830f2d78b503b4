"""The optimizer of one stage: a fresh Adam over what the stage trains.

Example:
    >>> import torch
    >>> import nomoretuning as nt
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = stage_optimizer(model, nt.EqualWeights(["a"]), (), lr=0.1, weight_decay=0.0)
    >>> len(opt.param_groups[0]["params"])
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["HasTaskParameters", "stage_optimizer"]


@runtime_checkable
class HasTaskParameters(Protocol):
    """A model that says which parameters only one task's loss reaches."""

    def task_parameters(self, task: str) -> list[nn.Parameter]: ...


def stage_optimizer(
    model: nn.Module,
    combiner: nn.Module,
    frozen_tasks: Sequence[str],
    lr: float,
    weight_decay: float,
) -> torch.optim.Optimizer:
    """Adam over the model's and the combiner's parameters, but the own parameters of
    ``frozen_tasks`` (where the model says which they are: `HasTaskParameters`)."""
    frozen: set[int] = set()
    if isinstance(model, HasTaskParameters):
        for task in frozen_tasks:
            frozen |= {id(p) for p in model.task_parameters(task)}
    params = [p for p in model.parameters() if id(p) not in frozen]
    params += list(combiner.parameters())
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
