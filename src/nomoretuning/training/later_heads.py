"""The heads of NMT's later tasks, fitted while an earlier stage moves the shared layers.

In NMT's top stage only the top task's loss is minimized: the shared layers move toward it, and a
lower task's own parameters (its tower, its gate) stay where the joint start left them, fitted to
shared layers that no longer exist. The lower task then begins its own, constrained stage from a
stale head, and when every step that would bring it back costs a higher task more than its slack,
the stage ends where it began (measured: Census-Income marital > income, income −2.6 % against
joint training on one seed in three).

`LaterHeads` fits those heads on their own losses at every step of an earlier stage. The gradient
reaches only the later tasks' own parameters (`HasTaskParameters`), never a parameter any
earlier task's output depends on, so the earlier tasks' training is exactly what it was without
it: the same steps, the same candidates, the same selection. Only the later tasks start their
stages better fitted.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class TwoHeads(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.shared, self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 1), nn.Linear(2, 1)
    ...     def task_parameters(self, task):
    ...         return list(getattr(self, task).parameters())
    >>> model = TwoHeads()
    >>> heads = LaterHeads(model, ["b"])
    >>> hidden = model.shared(torch.ones(3, 2))
    >>> losses = {"a": model.a(hidden).pow(2).mean(), "b": model.b(hidden).pow(2).mean()}
    >>> grads = heads.gradients(losses)
    >>> [tuple(g.shape) for g in grads]  # b's weight and bias, nothing of the shared layer
    [(1, 2), (1,)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from nomoretuning.training.optimizer import HasTaskParameters

__all__ = ["LaterHeads"]


class LaterHeads:
    """The own parameters of ``tasks`` (none where the model does not say which they are).

    Args:
        model: the model trained; only a `HasTaskParameters` model has heads to fit.
        tasks: the tasks whose stages come after the running one.
    """

    def __init__(self, model: nn.Module, tasks: Sequence[str]) -> None:
        self.params: list[nn.Parameter] = []
        if isinstance(model, HasTaskParameters):
            own = (p for t in tasks for p in model.task_parameters(t))
            self.params = [p for p in own if p.requires_grad]
        self.tasks: tuple[str, ...] = tuple(tasks) if self.params else ()

    def __bool__(self) -> bool:
        return bool(self.params)

    def gradients(
        self,
        losses: Mapping[str, Tensor],
        scale: Callable[[Tensor], Tensor] = lambda loss: loss,
    ) -> list[Tensor]:
        """The gradients of the later tasks' summed ``losses`` (through ``scale``, e.g. a
        mixed-precision loss scaler) with respect to their own parameters only. The graph is
        kept for the stage's own backward."""
        if not self:
            return []
        total = scale(torch.stack([losses[t].float() for t in self.tasks]).sum())
        grads = torch.autograd.grad(total, self.params, retain_graph=True, allow_unused=True)
        return [
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True)
        ]

    def add(self, grads: Sequence[Tensor]) -> None:
        """Adds ``grads`` (from `gradients`) to the parameters' ``.grad``."""
        for param, grad in zip(self.params, grads, strict=True):
            param.grad = grad.to(param.dtype) if param.grad is None else param.grad + grad

    def clip(self, max_norm: float) -> None:
        """Clips the heads' gradient norm on its own, so that the stage's clipping of the
        other parameters is what it was without them."""
        nn.utils.clip_grad_norm_(self.params, max_norm)
