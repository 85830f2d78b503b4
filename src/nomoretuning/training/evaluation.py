"""Metrics of a model on a whole split, in one process or sharded across data-parallel ranks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nomoretuning.training import distributed as parallel
from nomoretuning.training.objectives import Objective
from nomoretuning.training.prediction import predict
from nomoretuning.training.records import Metrics

__all__ = ["compare_parameters", "evaluate_split"]

Predictions = tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray | None]


def _predict_on_main(
    model: nn.Module, split: Any, batch_size: int, device: torch.device, tasks: tuple[str, ...]
) -> Predictions | None:
    """Logits, labels and groups of every row of ``split``, on rank 0 (None on the others).

    Under data parallelism each rank predicts its contiguous share, gathered on rank 0 in rank
    order (= storage order)."""
    world = parallel.world_size()
    if world == 1 or not hasattr(split, "subset"):
        return predict(model, split, batch_size, device, tasks)
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
    if not parallel.is_main_process():
        return None
    full = {k: v for k, v in gathered.items() if v is not None}
    return (
        {t: full[f"logits/{t}"] for t in tasks},
        {t: full[f"labels/{t}"] for t in tasks},
        full.get("groups"),
    )


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

    Under data parallelism rank 0 computes the metrics on the whole split and broadcasts them,
    so every rank returns the same values. A failure on rank 0 raises ``error`` on the others.
    """
    predictions = _predict_on_main(model, split, batch_size, device, tasks)

    def metrics() -> Metrics:
        assert predictions is not None, "rank 0 holds the whole split's predictions"
        return objective.evaluate(*predictions)

    return parallel.run_on_main(metrics, error)


def compare_parameters(
    model: nn.Module,
    candidate: Mapping[str, Tensor],
    reference: Mapping[str, Tensor],
    split: Any,
    objective: Objective,
    tasks: tuple[str, ...],
    batch_size: int,
    device: torch.device,
    error: type[Exception] = RuntimeError,
) -> tuple[float, float]:
    """``model``'s selection metric on ``split`` with the ``candidate`` parameters minus with
    the ``reference`` ones and the standard error of that paired difference
    (``objective.difference``: DeLong's for AUC, over the groups for NDCG); over several
    ``tasks``, the mean difference and the mean standard error. The model is left with the
    ``reference`` parameters.

    Example:
        >>> import torch
        >>> from nomoretuning.data import make_synthetic
        >>> from nomoretuning.models import build_model
        >>> from nomoretuning.training.objectives import BinaryObjective
        >>> ds = make_synthetic(2000, seed=0)
        >>> model = build_model("shared_bottom", ds.features, ds.tasks)
        >>> same = {k: v.clone() for k, v in model.state_dict().items()}
        >>> tasks = ("click",)
        >>> compare_parameters(model, same, same, ds.valid, BinaryObjective(tasks), tasks, 256,
        ...                    torch.device("cpu"))
        (0.0, 0.0)
    """
    scores = {}
    for name, parameters in (("candidate", candidate), ("reference", reference)):
        model.load_state_dict(parameters)
        scores[name] = _predict_on_main(model, split, batch_size, device, tasks)

    def compare() -> tuple[float, float]:
        candidate_scores, reference_scores = scores["candidate"], scores["reference"]
        assert candidate_scores is not None and reference_scores is not None, "rank 0 only"
        (a, labels, groups), (b, _, _) = candidate_scores, reference_scores
        results = [objective.difference(t, labels[t], a[t], b[t], groups) for t in tasks]
        return float(np.mean([d for d, _ in results])), float(np.mean([s for _, s in results]))

    return parallel.run_on_main(compare, error)
