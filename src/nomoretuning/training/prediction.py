"""Predicting a whole split: every row's logits, labels and group id, in split order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from nomoretuning.data.batching import TensorSplit
from nomoretuning.training.inputs import model_outputs

__all__ = ["predict"]


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    split: object,
    batch_size: int,
    device: torch.device,
    tasks: Sequence[str],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]:
    """Logits, labels and group ids of a whole split, in split order (model in eval mode).

    Example:
        >>> from nomoretuning.data.ranking import make_search_logs
        >>> from nomoretuning.models import build_model
        >>> ds = make_search_logs(20, 5, seed=0, tasks=["relevance"])
        >>> model = build_model("single_score", ds.features, ds.tasks, hidden_dims=(4,))
        >>> logits, labels, groups = predict(model, ds.test, 7, torch.device("cpu"), ds.tasks)
        >>> bool((groups == ds.test.groups.numpy()).all()), logits["relevance"].shape
        (True, (10,))
    """
    was_training = model.training
    model.eval()
    logits: dict[str, list[Tensor]] = {t: [] for t in tasks}
    labels: dict[str, list[Tensor]] = {t: [] for t in tasks}
    groups: list[Tensor] = []
    # A TensorSplit (a GroupedSplit too) is read in storage order, so the outputs line up with
    # the split's rows; other split objects are read with their own batches().
    batches = (
        TensorSplit.batches(split, batch_size, shuffle=False)
        if isinstance(split, TensorSplit)
        else split.batches(batch_size, shuffle=False)  # type: ignore[attr-defined]
    )
    try:
        for batch in batches:
            out = model_outputs(
                model(batch.sparse.to(device), batch.dense.to(device)), tasks, len(batch)
            )
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
