"""Static and learned loss weightings: equal, fixed and uncertainty weighting.

Task losses are *averaged* by ``EqualWeights`` (weights 1/K); ``FixedWeights`` uses the weights
exactly as given (a weighted sum). Under Adam only the ratios matter; under SGD the scale is the
learning rate's business.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from nomoretuning import checks
from nomoretuning.core.base import LossCombiner, check_losses

__all__ = ["EqualWeights", "FixedWeights", "UncertaintyWeighting"]


class EqualWeights(LossCombiner):
    """Mean of the task losses: ``sum_i p_i L_i`` with ``p_i = 1/K`` (or the given prior).

    Example:
        >>> import torch
        >>> from nomoretuning import EqualWeights
        >>> EqualWeights(["a", "b"])({"a": torch.tensor(1.0), "b": torch.tensor(2.0)})
        tensor(1.5000)
    """

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        check_losses(losses, self.tasks)
        weights = self._prior(prior)
        return _weighted_sum(losses, weights)


class FixedWeights(LossCombiner):
    """Weighted sum ``sum_i w_i L_i`` with fixed, user-chosen weights (the grid-search baseline).

    With a prior ``p`` (NMT composition) the weights become ``K p_i w_i``, so a uniform prior
    gives back ``w``.

    Example:
        >>> import torch
        >>> from nomoretuning import FixedWeights
        >>> fw = FixedWeights({"a": 0.9, "b": 0.1})
        >>> fw({"a": torch.tensor(1.0), "b": torch.tensor(2.0)})
        tensor(1.1000)
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        if not isinstance(weights, Mapping):
            raise ValueError(f"FixedWeights needs a dict task -> weight, got {type(weights)}")
        super().__init__(checks.task_names(weights.keys(), "FixedWeights"))
        self.weights: dict[str, float] = {}
        for task, w in weights.items():
            if isinstance(w, Tensor) and w.numel() == 1:
                w = w.item()  # a one-element tensor reads as its number
            if not isinstance(w, numbers.Real) or isinstance(w, bool):
                raise ValueError(
                    f"FixedWeights: weight of task {task!r} must be a number, got {w!r}"
                )
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"FixedWeights: weight of task {task!r} must be >= 0, got {w!r}")
            self.weights[task] = float(w)
        if sum(self.weights.values()) <= 0:
            raise ValueError("FixedWeights: at least one weight must be > 0")

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        check_losses(losses, self.tasks)
        k = len(self.tasks)
        p = self._prior(prior)
        return _weighted_sum(losses, {t: k * p[t] * self.weights[t] for t in self.tasks})

    def extra_repr(self) -> str:
        return f"weights={self.weights}"


class UncertaintyWeighting(LossCombiner):
    """Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, 2018).

    ``L = sum_i (exp(-s_i) L_i + s_i) / 2`` with one learned log-variance ``s_i`` per task
    (``nn.Parameter``, initialised to ``init``). Add ``combiner.parameters()`` to your optimizer.
    With a prior the per-task terms are weighted by ``K p_i``.

    Example:
        >>> import torch
        >>> from nomoretuning import UncertaintyWeighting
        >>> uw = UncertaintyWeighting(["a", "b"], init=0.0)
        >>> uw({"a": torch.tensor(1.0), "b": torch.tensor(3.0)})
        tensor(2., grad_fn=<AddBackward0>)
    """

    def __init__(self, tasks: Sequence[str], init: float = -0.5) -> None:
        super().__init__(tasks)
        if not math.isfinite(init):
            raise ValueError(f"UncertaintyWeighting: init must be finite, got {init}")
        self.log_vars = nn.Parameter(torch.full((len(self.tasks),), float(init)))

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        check_losses(losses, self.tasks)
        k = len(self.tasks)
        p = self._prior(prior)
        total: Tensor | None = None
        for i, task in enumerate(self.tasks):
            s = self.log_vars[i].to(losses[task])
            term = k * p[task] * 0.5 * (torch.exp(-s) * losses[task] + s)
            total = term if total is None else total + term
        assert total is not None
        return total

    @property
    def task_weights(self) -> dict[str, float]:
        """Current effective weights ``exp(-s_i) / 2`` for logging."""
        w = 0.5 * torch.exp(-self.log_vars.detach())
        return {t: float(w[i]) for i, t in enumerate(self.tasks)}


def _weighted_sum(losses: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    total: Tensor | None = None
    for task, w in weights.items():
        term = losses[task] * w
        total = term if total is None else total + term
    assert total is not None
    return total
