"""FAMO: Fast Adaptive Multitask Optimization (Liu, Feng, Stone and Liu, NeurIPS 2023).

State: logits ``xi`` (one per task, start at 0) and Adam moments for them. With ``z = softmax(xi)``
and ``D_i = L_i - floor_i + eps``, the primal loss is

    loss = sum_i z_i log D_i / c,   c = sum_i z_i / D_i (detached),

whose gradient is ``sum_i w_i grad L_i`` with ``w_i = (z_i / D_i) / sum_j (z_j / D_j)``: weights
that sum to 1. After the optimizer step the losses are recomputed on the same batch (``closure``)
and the logits take one Adam step (with L2 ``weight_decay``) along

    grad_xi = J_softmax(xi)^T delta = z * (delta - z . delta),
    delta_i = log D_i(old) - log D_i(new),

so a task whose log-loss fell more than the weighted average loses weight. This follows the
official implementation (Cranial-XIX/FAMO ``famo.py``). With a prior ``p`` (NMT composition) the
weights become ``w_i ∝ p_i z_i / D_i``, the same as adding ``log p`` to the logits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from nomoretuning import checks
from nomoretuning.core.base import Closure, LossCombiner, check_losses

__all__ = ["FAMO"]


class FAMO(LossCombiner):
    """FAMO loss weighting with its logits updated by Adam from the loss drop on the same batch.

    Args:
        tasks: task names.
        lr: Adam learning rate of the logits (0.025 as in the paper's code).
        weight_decay: L2 penalty on the logits inside Adam (1e-3, LibMTL's default).
        floors: per-task loss floors ``L_i*`` subtracted inside the log (default 0).
        eps: added to ``L_i - floor_i`` before the log.
        betas: Adam's betas for the logits.

    Example:
        >>> import torch
        >>> from nomoretuning import FAMO
        >>> famo = FAMO(["a", "b"])
        >>> w = torch.tensor([1.0], requires_grad=True)
        >>> losses = lambda: {"a": ((w - 2) ** 2).sum(), "b": ((w + 1) ** 2).sum()}
        >>> loss = famo(losses())
        >>> loss.backward()
        >>> with torch.no_grad():
        ...     w -= 0.1 * w.grad
        >>> famo.step(losses(), closure=lambda: losses())
        >>> sorted(famo.task_weights)
        ['a', 'b']
    """

    needs_closure = True

    logits: Tensor
    floors: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor
    adam_steps: Tensor
    _last_log_d: Tensor
    _has_last: Tensor

    def __init__(
        self,
        tasks: Sequence[str],
        lr: float = 0.025,
        weight_decay: float = 1e-3,
        floors: Mapping[str, float] | None = None,
        eps: float = 1e-8,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(tasks)
        checks.positive_number(lr, "FAMO: lr")
        if not math.isfinite(weight_decay) or weight_decay < 0:
            raise ValueError(f"FAMO: weight_decay must be >= 0, got {weight_decay}")
        checks.positive_number(eps, "FAMO: eps")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"FAMO: betas must lie in [0, 1), got {betas}")
        floors = dict(floors or {})
        for task in floors:
            if task not in self.tasks:
                raise ValueError(f"FAMO: floors name unknown task {task!r}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.eps = float(eps)
        self.betas = (float(betas[0]), float(betas[1]))
        k = len(self.tasks)
        self.register_buffer("logits", torch.zeros(k, dtype=torch.float64))
        self.register_buffer(
            "floors", torch.tensor([floors.get(t, 0.0) for t in self.tasks], dtype=torch.float64)
        )
        self.register_buffer("exp_avg", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("exp_avg_sq", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("adam_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("_last_log_d", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("_has_last", torch.zeros((), dtype=torch.bool))

    @property
    def task_weights(self) -> dict[str, float]:
        """``softmax(xi)``: FAMO's task weights before the 1/D normalisation."""
        z = torch.softmax(self.logits, 0)
        return {t: float(z[i]) for i, t in enumerate(self.tasks)}

    def _log_d(self, losses: Mapping[str, Tensor]) -> Tensor:
        values = torch.stack([losses[t].detach().to(torch.float64).cpu() for t in self.tasks])
        d = values - self.floors.cpu() + self.eps
        if bool((d <= 0).any()):
            bad = self.tasks[int((d <= 0).nonzero()[0])]
            raise ValueError(
                f"FAMO: loss of task {bad!r} is not above its floor; FAMO needs L - floor > 0"
            )
        return torch.log(d)

    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        check_losses(losses, self.tasks)
        p = self._prior(prior)
        log_d = self._log_d(losses)
        self._last_log_d.copy_(log_d.to(self._last_log_d.device))
        self._has_last.fill_(True)
        z = torch.softmax(self.logits.cpu(), 0)
        mass = torch.tensor([p[t] for t in self.tasks], dtype=torch.float64) * z
        c = float((mass / torch.exp(log_d)).sum())
        total: Tensor | None = None
        for i, task in enumerate(self.tasks):
            if float(mass[i]) == 0.0:
                continue
            floor = float(self.floors[i])
            term = torch.log(losses[task] - floor + self.eps) * (float(mass[i]) / c)
            total = term if total is None else total + term
        assert total is not None  # the prior has positive mass somewhere
        return total

    def step(self, losses: Mapping[str, Tensor], closure: Closure | None = None) -> None:
        """Updates the logits from the loss drop on the batch of the last ``forward``.

        ``closure()`` must return the task losses at the new parameters on the same batch.
        """
        check_losses(losses, self.tasks)
        if closure is None:
            raise ValueError(
                "FAMO.step needs closure=...: a function returning the task losses recomputed "
                "on the same batch after the optimizer step"
            )
        if not bool(self._has_last):
            raise RuntimeError("FAMO.step called before forward(): call famo(losses) first")
        with torch.no_grad():
            new_losses = closure()
        check_losses(new_losses, self.tasks)
        delta = self._last_log_d.cpu() - self._log_d(new_losses)
        z = torch.softmax(self.logits.cpu(), 0)
        grad = z * (delta - (z * delta).sum())
        self._adam_step(grad)
        self._has_last.fill_(False)

    def _adam_step(self, grad: Tensor) -> None:
        beta1, beta2 = self.betas
        logits = self.logits.cpu()
        grad = grad + self.weight_decay * logits
        self.adam_steps += 1
        t = int(self.adam_steps)
        m = self.exp_avg.cpu() * beta1 + (1 - beta1) * grad
        v = self.exp_avg_sq.cpu() * beta2 + (1 - beta2) * grad * grad
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        new_logits = logits - self.lr * m_hat / (v_hat.sqrt() + 1e-8)
        self.exp_avg.copy_(m)
        self.exp_avg_sq.copy_(v)
        self.logits.copy_(new_logits)

    def extra_repr(self) -> str:
        return f"tasks={list(self.tasks)}, lr={self.lr}, weight_decay={self.weight_decay}"
