"""One optimization step: forward, the combined loss, backward, clipping, the optimizer step.

In one process `StepRunner.run` is the plain step. Under data parallelism (``torchrun``, see
``docs/distributed.md``) the model is wrapped in ``DistributedDataParallel`` together with the loss
(`_LossModule`), every task loss enters the combiner as its global value over the ranks, and each
rank back-propagates a surrogate whose DDP-averaged gradient is the single-process gradient of the
global batch (`StepRunner._parallel_loss`). Either way the combiner sees exactly what a single
process sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from nomoretuning.core.base import Closure, LossCombiner
from nomoretuning.data.batching import Batch
from nomoretuning.training import distributed as parallel
from nomoretuning.training.inputs import model_outputs
from nomoretuning.training.later_heads import LaterHeads
from nomoretuning.training.objectives import Objective
from nomoretuning.training.precision import autocast, gradient_scaler

__all__ = ["StepOutcome", "StepRunner"]


@dataclass
class StepOutcome:
    """What one step produced: the combined loss, the (global) task losses, and the closure that
    recomputes them at the new parameters on the same batch (for ``combiner.step``)."""

    total: Tensor
    losses: dict[str, Tensor]
    closure: Closure


class StepRunner:
    """Runs optimization steps of ``model`` under ``combiner`` with ``objective``'s losses.

    Args:
        model, combiner, objective: what is trained.
        tasks: the tasks whose losses enter the combiner.
        device: where batches go.
        precision: ``trainer.precision``.
        grad_clip: maximum gradient norm (None: no clipping).
        on_non_finite: called with the task's name when a loss is not finite; must raise.
    """

    def __init__(
        self,
        model: nn.Module,
        combiner: LossCombiner,
        objective: Objective,
        tasks: tuple[str, ...],
        device: torch.device,
        precision: str,
        grad_clip: float | None,
        on_non_finite: Callable[[str], NoReturn],
    ) -> None:
        self.model = model
        self.combiner = combiner
        self.objective = objective
        self.tasks = tasks
        self.device = device
        self.precision = precision
        self.grad_clip = grad_clip
        self.on_non_finite = on_non_finite
        self.scaler = gradient_scaler(precision, device)
        self.optimizer: torch.optim.Optimizer | None = None
        self.world_size = parallel.world_size()
        self._parallel: nn.Module | None = None
        self._parallel_losses: dict[str, Tensor] = {}
        self.later = LaterHeads(model, ())
        self._later_grads: list[Tensor] = []

    def begin_stage(self, optimizer: torch.optim.Optimizer, later_tasks: tuple[str, ...]) -> None:
        """The stage's optimizer, and the tasks whose heads are fitted beside it
        (`nomoretuning.training.later_heads.LaterHeads`; empty: none)."""
        self.optimizer = optimizer
        self.later = LaterHeads(self.model, later_tasks)

    def prepare_data_parallel(self) -> None:
        """Under data parallelism: wraps the model and the loss in DDP (once per run)."""
        if self.world_size > 1 and self._parallel is None:
            self._parallel = DistributedDataParallel(
                _LossModule(self.model, self._parallel_loss),
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )

    def autocast(self) -> Any:
        return autocast(self.precision, self.device)

    def losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """The task losses of ``model`` on ``batch`` (mixed precision as configured)."""
        with self.autocast():
            outputs = model_outputs(model(batch.sparse, batch.dense), self.tasks, len(batch))
            return self.objective.losses(outputs, batch)

    def check_finite(self, losses: Mapping[str, Tensor]) -> None:
        values = torch.stack([losses[t].detach().float() for t in self.tasks])
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            self.on_non_finite(self.tasks[int((~finite).nonzero()[0])])

    def run(self, batch: Batch) -> StepOutcome:
        """One step on ``batch`` (this rank's share of the global batch under DDP)."""
        assert self.optimizer is not None, "StepRunner.optimizer is set at each stage start"
        batch = batch.to(self.device)
        if self.world_size > 1:
            return self._parallel_step(batch)
        losses = self.losses(self.model, batch)
        self.check_finite(losses)
        total = self.combiner(losses)
        regularization = getattr(self.model, "regularization", None)
        if callable(regularization):
            total = total + regularization()
        self.optimizer.zero_grad(set_to_none=True)
        self._later_grads = self.later.gradients(losses, self._loss_scale)
        self._backward_and_step(total)

        def closure() -> dict[str, Tensor]:
            with torch.no_grad():
                return self.losses(self.model, batch)

        return StepOutcome(total, {t: v.detach() for t, v in losses.items()}, closure)

    def _loss_scale(self, loss: Tensor) -> Tensor:
        return loss if self.scaler is None else self.scaler.scale(loss)

    def _backward_and_step(self, total: Tensor) -> None:
        """Backward (with the later tasks' head gradients added), gradient clipping and the
        optimizer step (loss-scaled under fp16)."""
        assert self.optimizer is not None
        self._loss_scale(total).backward()
        self.later.add(self._later_grads)
        self._later_grads = []
        if self.scaler is None:
            self._clip()
            self.optimizer.step()
            return
        self.scaler.unscale_(self.optimizer)
        self._clip()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def _clip(self) -> None:
        """Clips the gradient norm of the parameters the optimizer updates."""
        if self.grad_clip is None or self.optimizer is None:
            return
        trained = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        trained -= {id(p) for p in self.later.params}
        params = [p for p in self.model.parameters() if id(p) in trained]
        nn.utils.clip_grad_norm_(params, self.grad_clip)
        if self.later:
            self.later.clip(self.grad_clip)

    # ------------------------------------------------------------------- data parallel
    def _parallel_step(self, batch: Batch) -> StepOutcome:
        assert self.optimizer is not None and self._parallel is not None
        self.optimizer.zero_grad(set_to_none=True)
        total = self._parallel(batch)
        self._backward_and_step(total)
        rows = len(batch)

        def closure() -> dict[str, Tensor]:
            with torch.no_grad():
                return parallel.all_reduce_losses(self._local_losses(self.model, batch), rows)

        return StepOutcome(total, self._parallel_losses, closure)

    def _local_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """This rank's per-task batch means (zeros, still in the graph, for an empty share)."""
        with self.autocast():
            logits = model_outputs(model(batch.sparse, batch.dense), self.tasks, len(batch))
            if len(batch) > 0:
                return self.objective.losses(logits, batch)
        return {t: logits[t].float().sum() * 0.0 for t in self.tasks}

    def _parallel_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """The loss each rank back-propagates under DDP (called inside DDP's forward).

        With ``b`` this rank's rows, ``B`` the global batch and ``W`` the world size, every task
        loss (and the model's regularization) enters the combiner as
        ``global + (c * local - sg(c * local))`` with ``c = W * b / B``: its value is exactly the
        global loss, identical on every rank, and DDP's average of the ranks' gradients is
        ``sum_r (b_r / B) grad local_r``, the gradient of the global batch. The combiner therefore
        sees what a single process sees, whatever it does with the losses.
        """
        local = self._local_losses(model, batch)
        rows = len(batch)
        extra: dict[str, Tensor] = {}
        regularization = getattr(model, "regularization", None)
        if callable(regularization):
            extra["__regularization__"] = regularization()
        reduced, rows_total = parallel.all_reduce_means({**local, **extra}, rows)
        self.check_finite(reduced)
        scale = self.world_size * rows / rows_total

        def surrogate(value: Tensor, global_value: Tensor) -> Tensor:
            scaled = value * scale
            return global_value + (scaled - scaled.detach())

        losses = {t: surrogate(local[t], reduced[t]) for t in self.tasks}
        if self.later:
            # Each rank's gradient of scale * local, summed over the ranks and divided by W: the
            # gradient of the global batch, as DDP's average gives the stage's own parameters.
            local_grads = self.later.gradients(
                {t: local[t] * scale for t in self.later.tasks}, self._loss_scale
            )
            flat = parallel.all_reduce_sum(torch.cat([g.reshape(-1) for g in local_grads]))
            flat = flat / self.world_size
            sizes = [g.numel() for g in local_grads]
            self._later_grads = [
                part.view_as(g) for part, g in zip(flat.split(sizes), local_grads, strict=True)
            ]
        self._parallel_losses = {t: reduced[t] for t in self.tasks}
        total = self.combiner(losses)
        if extra:
            total = total + surrogate(extra["__regularization__"], reduced["__regularization__"])
        return cast(Tensor, total)


class _LossModule(nn.Module):
    """What DDP wraps: the model and the loss of a step, so that DDP looks for unused parameters
    from the loss actually back-propagated (a task whose term has weight 0 this stage leaves its
    tower without gradient, as in a single process), not from every output of the model."""

    def __init__(self, model: nn.Module, loss: Callable[[nn.Module, Batch], Tensor]) -> None:
        super().__init__()
        self.model = model
        self._loss = [loss]  # a list: the runner's bound method is not a submodule

    def forward(self, batch: Batch) -> Tensor:
        return self._loss[0](self.model, batch)
