"""Task losses: the pairwise logistic (RankNet) loss of the NMT paper and binary cross-entropy.

Depends on torch only. Everything is vectorized and runs on the device of its inputs.

Example:
    >>> import torch
    >>> scores = torch.tensor([2.0, 0.0, 1.0], requires_grad=True)
    >>> loss = pairwise_logistic_loss(scores, torch.tensor([1.0, 0.0, 0.0]))
    >>> round(loss.item(), 4)  # mean of softplus(-(2 - 0)) and softplus(-(2 - 1))
    0.2201
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["binary_cross_entropy_losses", "pairwise_logistic_loss"]

Reduction = Literal["mean", "sum", "none"]


def _label_pairs(labels: Tensor, groups: Tensor | None) -> tuple[Tensor, Tensor]:
    """All (i, j) with ``labels[i] > labels[j]`` in the same group, without per-pair Python.

    Rows are sorted by (group, label); the rows of lower label in i's group are then the
    contiguous positions ``[group start, start of i's label run)``, enumerated with
    ``repeat_interleave`` and ``arange`` arithmetic. Memory is O(number of pairs).
    """
    n = labels.shape[0]
    device = labels.device
    order = torch.argsort(labels, stable=True)
    if groups is not None:
        order = order[torch.argsort(groups[order], stable=True)]
    y = labels[order]
    new_label = torch.ones(n, dtype=torch.bool, device=device)
    new_group = torch.zeros(n, dtype=torch.bool, device=device)
    new_group[:1] = True
    if n > 1:
        if groups is not None:
            g = groups[order]
            new_group[1:] = g[1:] != g[:-1]
        new_label[1:] = (y[1:] != y[:-1]) | new_group[1:]
    position = torch.arange(n, device=device)
    zero = torch.zeros_like(position)
    group_first = torch.cummax(torch.where(new_group, position, zero), 0).values
    label_first = torch.cummax(torch.where(new_label, position, zero), 0).values
    count = label_first - group_first
    first = torch.repeat_interleave(position, count)
    offset = torch.arange(first.shape[0], device=device) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count
    )
    second = torch.repeat_interleave(group_first, count) + offset
    return order[first], order[second]


def pairwise_logistic_loss(
    scores: Tensor,
    labels: Tensor,
    groups: Tensor | None = None,
    pairs: tuple[Tensor, Tensor] | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """RankNet / the NMT paper's pairwise loss (its equation 10).

    ``loss = mean over pairs (i, j) of log(1 + exp(-(s_i - s_j)))``, computed as
    ``softplus(s_j - s_i)`` (stable for any score gap). The pairs are ``pairs = (first, second)``
    when given (e.g. from ``nomoretuning.data.ranking.make_pairs``, sampled or restricted to
    purchased rows); otherwise every (i, j) with ``labels[i] > labels[j]`` in the same group
    (one group when ``groups`` is None). Equal labels form no pair.

    With no pair at all the result is ``0`` for ``"mean"`` and ``"sum"`` (an empty sum over the
    scores: it keeps the autograd graph and gives zero gradients) and an empty tensor for
    ``"none"``. Labels must not hold NaN (not checked, to avoid a device sync).

    Args:
        scores: ``[B]`` logits of the single ranking score.
        labels: ``[B]`` graded or binary labels (only their order matters).
        groups: optional ``[B]`` query/user ids; pairs never cross groups.
        pairs: optional ``(first, second)`` int64 index tensors of equal length.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (one loss per pair).

    Example:
        >>> s = torch.tensor([0.5, 0.2, 0.9, 0.1])
        >>> y = torch.tensor([1.0, 0.0, 0.0, 1.0])
        >>> g = torch.tensor([0, 0, 1, 1])
        >>> pairwise_logistic_loss(s, y, g, reduction="none")
        tensor([0.5544, 1.1711])
    """
    if scores.dim() != 1:
        raise ValueError(
            f"pairwise_logistic_loss: scores must be 1-D [B], got {tuple(scores.shape)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"pairwise_logistic_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        )
    if pairs is None:
        if labels.shape != scores.shape:
            raise ValueError(
                "pairwise_logistic_loss: labels must have the shape of scores "
                f"{tuple(scores.shape)}, got {tuple(labels.shape)}"
            )
        if groups is not None and groups.shape != scores.shape:
            raise ValueError(
                "pairwise_logistic_loss: groups must have the shape of scores "
                f"{tuple(scores.shape)}, got {tuple(groups.shape)}"
            )
        first, second = _label_pairs(labels.detach(), groups)
    else:
        if len(pairs) != 2:
            raise ValueError("pairwise_logistic_loss: pairs must be a tuple (first, second)")
        first, second = pairs
        if first.dim() != 1 or first.shape != second.shape:
            raise ValueError(
                "pairwise_logistic_loss: pairs must be two 1-D index tensors of equal length, "
                f"got {tuple(first.shape)} and {tuple(second.shape)}"
            )
    losses = F.softplus(scores[second] - scores[first])
    if reduction == "none":
        return losses
    total = losses.sum()
    if reduction == "sum":
        return total
    return total / max(int(losses.shape[0]), 1)


def binary_cross_entropy_losses(
    logits: Mapping[str, Tensor],
    labels: Mapping[str, Tensor],
    tasks: Sequence[str] | None = None,
) -> dict[str, Tensor]:
    """One mean binary cross-entropy (from logits) per task: ``{task: scalar loss}``.

    ``tasks`` defaults to the keys of ``logits``; each needs a label tensor of the same shape.

    Example:
        >>> out = binary_cross_entropy_losses({"click": torch.zeros(2)},
        ...                                   {"click": torch.tensor([0.0, 1.0])})
        >>> round(float(out["click"]), 4)
        0.6931
    """
    names = tuple(logits) if tasks is None else tuple(tasks)
    result: dict[str, Tensor] = {}
    for task in names:
        if task not in logits:
            raise ValueError(f"binary_cross_entropy_losses: no logits for task {task!r}")
        if task not in labels:
            raise ValueError(
                f"binary_cross_entropy_losses: no labels for task {task!r}; "
                f"labels hold {sorted(labels)}"
            )
        x, y = logits[task], labels[task]
        if x.shape != y.shape:
            raise ValueError(
                f"binary_cross_entropy_losses: task {task!r} has logits {tuple(x.shape)} "
                f"but labels {tuple(y.shape)}"
            )
        result[task] = F.binary_cross_entropy_with_logits(x, y.to(x.dtype))
    return result
