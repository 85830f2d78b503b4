"""Task objectives: the training loss of each task and its evaluation metrics.

The trainer is written against the small ``Objective`` protocol, so binary click-through tasks and
pairwise learning-to-rank tasks use the same training loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nomoretuning.data.batching import Batch
from nomoretuning.training import metrics

__all__ = ["BinaryObjective", "Objective"]


class Objective(Protocol):
    """Per-task losses for training and metrics for evaluation."""

    tasks: tuple[str, ...]
    selection_metric: str
    """The validation metric (higher is better) used for early stopping and selection."""

    def losses(self, logits: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        """One scalar training loss per task, averaged over the batch."""
        ...

    def evaluate(
        self,
        logits: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None,
    ) -> dict[str, dict[str, float]]:
        """Metrics per task on a split: ``{task: {metric: value}}``, with ``loss`` among them."""
        ...


class BinaryObjective:
    """Binary cross-entropy on logits (mean over the batch) for every task.

    Metrics: ``auc``, ``logloss`` (= the validation ``loss``), and ``gauc`` when the split has
    group ids (per-user AUC weighted by rows, single-class users skipped).

    Example:
        >>> import torch
        >>> from nomoretuning.data.batching import Batch
        >>> obj = BinaryObjective(["click"])
        >>> batch = Batch(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 0),
        ...               {"click": torch.tensor([0.0, 1.0])})
        >>> round(float(obj.losses({"click": torch.zeros(2)}, batch)["click"]), 4)
        0.6931
    """

    selection_metric = "auc"

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = tuple(tasks)

    def losses(self, logits: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        return {
            t: F.binary_cross_entropy_with_logits(logits[t], batch.labels[t].to(logits[t].dtype))
            for t in self.tasks
        }

    def evaluate(
        self,
        logits: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None,
    ) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        for task in self.tasks:
            y, s = labels[task], logits[task]
            loss = metrics.logloss(y, s)
            values = {"auc": _safe_auc(y, s), "logloss": loss, "loss": loss}
            if groups is not None:
                values["gauc"] = metrics.gauc(y, s, groups)
            result[task] = values
        return result


def _safe_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    if np.unique(labels).size < 2:
        return math.nan
    return metrics.auc(labels, scores)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    split: object,
    batch_size: int,
    device: torch.device,
    tasks: Sequence[str],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Logits, labels and group ids of a whole split, in split order (model in eval mode)."""
    was_training = model.training
    model.eval()
    logits: dict[str, list[Tensor]] = {t: [] for t in tasks}
    labels: dict[str, list[Tensor]] = {t: [] for t in tasks}
    groups: list[Tensor] = []
    try:
        for batch in split.batches(batch_size, shuffle=False):  # type: ignore[attr-defined]
            out = model(batch.sparse.to(device), batch.dense.to(device))
            for task in tasks:
                logits[task].append(out[task].float().cpu())
                labels[task].append(batch.labels[task].cpu())
            if batch.groups is not None:
                groups.append(batch.groups.cpu())
    finally:
        model.train(was_training)
    return (
        {t: torch.cat(v).numpy() for t, v in logits.items()},
        {t: torch.cat(v).numpy() for t, v in labels.items()},
        torch.cat(groups).numpy() if groups else None,
    )
