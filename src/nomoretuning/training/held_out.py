"""A running held-out estimate of the constrained tasks' losses, refreshed every few steps.

The *constraint set* is up to ``rows`` rows of the validation split, drawn once (seeded) and cut
into chunks of ``chunk_rows`` rows (whole groups for ranking splits). `HeldOutLosses.refresh`
evaluates every chunk (at the start of a stage, and for the bound at its end);
`HeldOutLosses.advance` evaluates the next chunk only, in turn. The estimate is the row-weighted
mean of each chunk's latest loss, in the spirit of SAG: a full-set estimate whose chunks are at
most ``len(chunks)`` updates old, so NMT's multipliers can follow held-out losses every few steps
at the cost of one chunk's forward pass, whatever the evaluation cadence. Chunks are evaluated in
eval mode without gradients, the way the validation metrics are. Under data parallelism each rank
evaluates its share of a chunk and the losses are all-reduced, so every rank holds the same
estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from nomoretuning.data.batching import Batch
from nomoretuning.training import distributed as parallel

__all__ = ["ConstantModel", "HeldOutLosses"]

LossFunction = Callable[[nn.Module, Batch], Mapping[str, Tensor]]


class ConstantModel(nn.Module):
    """Predicts one constant score per task for every row (the baseline of a task)."""

    def __init__(self, scores: Mapping[str, float]) -> None:
        super().__init__()
        self.scores = dict(scores)

    def forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        rows = sparse.shape[0]
        return {
            t: torch.full((rows,), s, dtype=dense.dtype, device=dense.device)
            for t, s in self.scores.items()
        }


class HeldOutLosses:
    """The running estimate (see the module docstring) of ``tasks``' losses on ``split``.

    Example:
        >>> import torch
        >>> from nomoretuning.data import TensorSplit
        >>> split = TensorSplit(torch.zeros(10, 1, dtype=torch.long), torch.zeros(10, 0),
        ...                     {"a": torch.ones(10)})
        >>> losses = lambda model, batch: {"a": batch.labels["a"].mean() * len(batch)}
        >>> held_out = HeldOutLosses(split, rows=10, chunk_rows=4, seed=0, device="cpu")
        >>> held_out.refresh(torch.nn.Identity(), losses, ("a",))
        {'a': 3.6}
    """

    @classmethod
    def for_trainer(
        cls, config: Any, plan: Any, split: Any, device: torch.device | str
    ) -> HeldOutLosses | None:
        """The constraint set of a trainer with ``config`` (a ``TrainerConfig``) and ``plan`` (a
        ``StagePlan``), None where held-out constraints are not used (no staged combiner,
        ``constraints: train``, or ``constraint_every: null``)."""
        if plan.staged is None or config.constraints != "valid" or config.constraint_every is None:
            return None
        return cls(split, config.constraint_rows, config.batch_size, config.seed, device)

    def __init__(
        self, split: Any, rows: int, chunk_rows: int, seed: int, device: torch.device | str
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.chunks: list[Batch] = []
        taken = 0
        for batch in split.batches(chunk_rows, shuffle=True, generator=generator):
            if taken >= rows:
                break
            self.chunks.append(batch.to(device))
            taken += len(batch)
        self.latest: list[dict[str, float]] = [{} for _ in self.chunks]
        self.cursor = 0

    @property
    def rows(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def refresh(
        self, model: nn.Module, losses: LossFunction, tasks: tuple[str, ...]
    ) -> dict[str, float]:
        """Evaluates every chunk; returns the estimate."""
        for index in range(len(self.chunks)):
            self._evaluate(index, model, losses, tasks)
        self.cursor = 0
        return self.estimate(tasks)

    def advance(
        self, model: nn.Module, losses: LossFunction, tasks: tuple[str, ...]
    ) -> dict[str, float]:
        """Evaluates the next chunk; returns the estimate."""
        self._evaluate(self.cursor, model, losses, tasks)
        self.cursor = (self.cursor + 1) % len(self.chunks)
        return self.estimate(tasks)

    def baselines(
        self,
        losses: LossFunction,
        tasks: tuple[str, ...],
        constant_score: Callable[[str, Tensor], float],
    ) -> dict[str, float]:
        """The loss of the best constant prediction of each task on the constraint set."""
        labels = {t: torch.cat([c.labels[t] for c in self.chunks]) for t in tasks}
        constant = ConstantModel({t: constant_score(t, labels[t]) for t in tasks})
        saved = self.latest
        self.latest = [{} for _ in self.chunks]
        try:
            return self.refresh(constant, losses, tasks)
        finally:
            self.latest = saved

    def estimate(self, tasks: tuple[str, ...]) -> dict[str, float]:
        total = float(self.rows)
        return {
            t: sum(len(c) * latest[t] for c, latest in zip(self.chunks, self.latest, strict=True))
            / total
            for t in tasks
        }

    @torch.no_grad()
    def _evaluate(
        self, index: int, model: nn.Module, losses: LossFunction, tasks: tuple[str, ...]
    ) -> None:
        chunk = self.chunks[index]
        world = parallel.world_size()
        if world > 1:
            lo, hi = parallel.shard_range(len(chunk), parallel.rank(), world)
            chunk = parallel.slice_batch(chunk, lo, hi)
        was_training = model.training
        model.eval()
        try:
            if len(chunk) > 0:
                values = losses(model, chunk)
                local = {t: values[t].detach().double() for t in tasks}
            else:
                local = {t: torch.zeros((), dtype=torch.float64) for t in tasks}
        finally:
            model.train(was_training)
        reduced, _ = parallel.all_reduce_means(local, len(chunk))
        self.latest[index] = {t: float(reduced[t]) for t in tasks}

    def state_dict(self) -> dict[str, Any]:
        return {"latest": [dict(x) for x in self.latest], "cursor": self.cursor}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.latest = [{k: float(v) for k, v in x.items()} for x in state["latest"]]
        self.cursor = int(state["cursor"])
