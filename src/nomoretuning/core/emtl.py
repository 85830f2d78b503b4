"""EMTL: Equitable Multi-Task Learning (Yuan and Zhang, 2023), the variant implemented here.

The paper equalizes each task's *relative contribution* to the update of the shared part,
``r_i = L_i / ||d L_i / d shared||``, by adding a variance penalty. Its exact formula is not public;
this module implements, and documents, one variant:

    loss = sum_i p_i L_i + alpha * sum_i p_i (r_i - r_bar)^2 / sg(r_bar)^2,
    r_i = L_i / sg(||d L_i / d shared|| + eps),   r_bar = sum_i p_i r_i,

with ``p`` uniform (``1/K``) unless a prior is given, ``sg`` = stop-gradient. Choices and reasons:

- the gradient norm is detached: no double back-propagation (one extra backward per task through
  the task-specific part only);
- gradients are taken w.r.t. ``shared``: the model's shared *representation* by default (cheap:
  ``torch.autograd.grad`` stops there), or the shared parameters if you pass them;
- the variance is divided by the detached squared mean (a squared coefficient of variation), so
  ``alpha`` does not depend on the scale of the losses.

The gradient is ``sum_i p_i (1 + 2 alpha (r_i - r_bar) / (r_bar^2 n_i)) grad L_i``: tasks whose
relative contribution is above the mean get more weight, those below get less (possibly negative
weight when ``alpha`` is large; keep ``alpha`` small, default 0.1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from nomoretuning.core.base import LossCombiner, check_losses

__all__ = ["EMTL"]

SharedTensors = Tensor | Sequence[Tensor]


class EMTL(LossCombiner):
    """Mean loss plus a variance penalty on the tasks' relative contributions.

    Args:
        tasks: task names.
        shared: the tensors gradients are measured against: a callable returning them (called at
            every forward, e.g. ``lambda: model.shared_representation``), or a fixed tensor /
            list of parameters.
        alpha: weight of the penalty (scale-free, see the module docstring).
        eps: added to gradient norms.

    Example:
        >>> import torch
        >>> from nomoretuning import EMTL
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> emtl = EMTL(["a", "b"], shared=[x], alpha=0.1)
        >>> loss = emtl({"a": (x**2).sum(), "b": x.sum()})
        >>> round(float(loss.detach()), 4)
        4.0096
    """

    def __init__(
        self,
        tasks: Sequence[str],
        shared: Callable[[], SharedTensors] | SharedTensors,
        alpha: float = 0.1,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(tasks)
        if not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"EMTL: alpha must be >= 0, got {alpha!r}")
        if not isinstance(eps, int | float) or not eps > 0:
            raise ValueError(f"EMTL: eps must be > 0, got {eps!r}")
        self.alpha = float(alpha)
        self.eps = float(eps)
        if not (callable(shared) or isinstance(shared, Tensor | list | tuple)):
            raise ValueError(
                "EMTL: shared must be a callable returning the shared tensors (e.g. lambda: "
                f"model.shared_representation), a tensor or a list of them, got {shared!r}"
            )
        self._shared = shared
        self.last_contributions: dict[str, float] = {}
        self.last_grad_norms: dict[str, float] = {}

    def _shared_tensors(self) -> list[Tensor]:
        shared = self._shared() if callable(self._shared) else self._shared
        tensors = [shared] if isinstance(shared, Tensor) else list(shared)
        if not tensors:
            raise ValueError("EMTL: `shared` gave no tensor to measure gradients against")
        if not all(isinstance(t, Tensor) and t.requires_grad for t in tensors):
            raise ValueError(
                "EMTL: every shared tensor must require grad (pass the shared representation "
                "of this forward or the shared parameters)"
            )
        return tensors

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        check_losses(losses, self.tasks)
        p = self._prior(prior)
        active = [t for t in self.tasks if p[t] > 0]
        base: Tensor | None = None
        for task in active:
            term = losses[task] * p[task]
            base = term if base is None else base + term
        assert base is not None
        if self.alpha == 0 or len(active) < 2:
            return base
        shared = self._shared_tensors()
        ratios: dict[str, Tensor] = {}
        for task in active:
            if not losses[task].requires_grad:
                raise ValueError(f"EMTL: loss of task {task!r} does not require grad")
            grads = torch.autograd.grad(losses[task], shared, retain_graph=True, allow_unused=True)
            sq = [g.pow(2).sum() for g in grads if g is not None]
            if not sq:
                raise ValueError(
                    f"EMTL: the loss of task {task!r} does not depend on any shared tensor; pass "
                    "the shared representation of this forward (shared=lambda: "
                    "model.shared_representation) or the shared parameters"
                )
            norm = torch.sqrt(torch.stack(sq).sum())
            self.last_grad_norms[task] = float(norm)
            ratios[task] = losses[task] / (norm.detach() + self.eps)
        mean = sum(p[t] * ratios[t] for t in active)
        assert isinstance(mean, Tensor)
        variance = sum(p[t] * (ratios[t] - mean) ** 2 for t in active)
        assert isinstance(variance, Tensor)
        self.last_contributions = {t: float(r.detach()) for t, r in ratios.items()}
        scale = mean.detach() ** 2 + self.eps
        return base + self.alpha * variance / scale

    def extra_repr(self) -> str:
        return f"tasks={list(self.tasks)}, alpha={self.alpha}"
