"""Metrics of a model on a whole split, in one process or sharded across data-parallel ranks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nomoretuning.training import distributed as parallel
from nomoretuning.training.objectives import Objective, predict
from nomoretuning.training.records import Metrics

__all__ = ["evaluate_split"]


def evaluate_split(
    model: nn.Module,
    split: Any,
    objective: Objective,
    tasks: tuple[str, ...],
    batch_size: int,
    device: torch.device,
    error: type[Exception] = RuntimeError,
) -> Metrics:
    """``objective.evaluate`` on every row of ``split`` (model in eval mode).

    Under data parallelism each rank predicts its contiguous share; rank 0 computes the metrics on
    the whole split (shares concatenated in rank order = storage order) and broadcasts them, so
    every rank returns the same values. A failure on rank 0 raises ``error`` on the others.
    """
    world = parallel.world_size()
    if world == 1 or not hasattr(split, "subset"):
        logits, labels, groups = predict(model, split, batch_size, device, tasks)
        return objective.evaluate(logits, labels, groups)
    start, stop = parallel.shard_range(len(split), parallel.rank(), world)
    arrays: dict[str, np.ndarray | None]
    if stop > start:
        logits, labels, groups = predict(
            model, split.subset(slice(start, stop)), batch_size, device, tasks
        )
        arrays = {f"logits/{t}": logits[t] for t in tasks}
        arrays.update({f"labels/{t}": labels[t] for t in tasks})
        arrays["groups"] = groups
    else:
        arrays = {k: None for t in tasks for k in (f"logits/{t}", f"labels/{t}")}
        arrays["groups"] = None
    gathered = parallel.gather_arrays(arrays, to_main_only=True)

    def metrics() -> Metrics:
        full = {k: v for k, v in gathered.items() if v is not None}
        return objective.evaluate(
            {t: full[f"logits/{t}"] for t in tasks},
            {t: full[f"labels/{t}"] for t in tasks},
            full.get("groups"),
        )

    return parallel.run_on_main(metrics, error)
