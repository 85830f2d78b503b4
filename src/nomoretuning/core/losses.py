"""Task losses: the pairwise logistic (RankNet) loss of the NMT paper, the pairs it is taken over,
the listwise softmax cross-entropy, and binary cross-entropy.

Depends on torch only. Everything is vectorized and runs on the device of its inputs.

Example:
    >>> import torch
    >>> scores = torch.tensor([2.0, 0.0, 1.0], requires_grad=True)
    >>> loss = pairwise_logistic_loss(scores, torch.tensor([1.0, 0.0, 0.0]))
    >>> round(loss.item(), 4)  # mean of softplus(-(2 - 0)) and softplus(-(2 - 1))
    0.2201
    >>> first, second = make_pairs(torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 1]))
    >>> first.tolist(), second.tolist()
    ([2, 0, 0], [1, 1, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from nomoretuning.checks import optional_positive_int

__all__ = [
    "binary_cross_entropy_losses",
    "make_pairs",
    "pairwise_logistic_loss",
    "softmax_cross_entropy_loss",
]

Reduction = Literal["mean", "sum", "none"]
ListGain = Literal["exponential", "linear"]


class _SortedPairs(NamedTuple):
    """Every pair of a label vector, as positions in its (group, label) sorted order."""

    order: Tensor
    """The row at each sorted position."""
    first: Tensor
    """Sorted position of each pair's higher-label row."""
    second: Tensor
    """Sorted position of each pair's lower-label row."""
    group_start: Tensor
    """True at the first sorted position of each group."""

    def rows(self, chosen: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(first, second)`` as rows of the labels, optionally only the pairs ``chosen``."""
        first, second = self.first, self.second
        if chosen is not None:
            first, second = first[chosen], second[chosen]
        return self.order[first], self.order[second]


def _enumerate_pairs(labels: Tensor, groups: Tensor | None) -> _SortedPairs:
    """All (i, j) with ``labels[i] > labels[j]`` in the same group, without per-pair Python.

    Rows are sorted by (group, label); the rows of lower label than row i in its group are then
    the contiguous positions ``[group start, start of i's label run)``, enumerated with
    ``repeat_interleave`` and ``arange`` arithmetic. Memory is O(number of pairs).
    """
    n = labels.shape[0]
    device = labels.device
    order = torch.argsort(labels, stable=True)
    if groups is not None:
        order = order[torch.argsort(groups[order], stable=True)]
    sorted_labels = labels[order]
    group_start = torch.zeros(n, dtype=torch.bool, device=device)
    group_start[:1] = True
    label_start = group_start.clone()
    if n > 1:
        if groups is not None:
            sorted_groups = groups[order]
            group_start[1:] = sorted_groups[1:] != sorted_groups[:-1]
        label_start[1:] = (sorted_labels[1:] != sorted_labels[:-1]) | group_start[1:]
    position = torch.arange(n, device=device)
    zero = torch.zeros_like(position)
    group_first = torch.cummax(torch.where(group_start, position, zero), 0).values
    label_first = torch.cummax(torch.where(label_start, position, zero), 0).values
    lower = label_first - group_first  # rows of lower label in the same group
    first = torch.repeat_interleave(position, lower)
    offset = torch.arange(first.shape[0], device=device) - torch.repeat_interleave(
        torch.cumsum(lower, 0) - lower, lower
    )
    second = torch.repeat_interleave(group_first, lower) + offset
    return _SortedPairs(order, first, second, group_start)


def _sample_per_group(pairs: _SortedPairs, limit: int, generator: torch.Generator | None) -> Tensor:
    """Indices (ascending) of ``min(limit, P_g)`` of the ``P_g`` pairs of each group, uniformly
    without replacement: every pair gets a ``torch.rand`` key, each group keeps its smallest."""
    count = pairs.first.shape[0]
    device = pairs.first.device
    pair_group = (torch.cumsum(pairs.group_start.to(torch.int64), 0) - 1)[pairs.first]
    key_device = generator.device if generator is not None else device
    keys = torch.rand(count, generator=generator, device=key_device).to(device)
    by_key = torch.argsort(keys)
    by_group = by_key[torch.argsort(pair_group[by_key], stable=True)]
    sizes = torch.bincount(pair_group)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(count, device=device) - starts[pair_group[by_group]]
    return torch.sort(by_group[rank < limit]).values


def _vector(name: str, values: Tensor, device: torch.device) -> Tensor:
    values = values.to(device)
    if values.dim() != 1:
        raise ValueError(f"make_pairs: {name} must be 1-D, got shape {tuple(values.shape)}")
    return values


def _checked_labels(labels: Tensor) -> Tensor:
    labels = _vector("labels", labels, labels.device)
    if labels.dtype == torch.bool:
        labels = labels.to(torch.int64)
    if labels.is_floating_point() and bool(torch.isnan(labels).any()):
        raise ValueError("make_pairs: labels contain NaN; every row needs a label")
    return labels


def _checked_groups(groups: Tensor, labels: Tensor) -> Tensor:
    groups = _vector("groups", groups, labels.device)
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise ValueError(f"make_pairs: groups must hold integer ids, got {groups.dtype}")
    if groups.shape != labels.shape:
        raise ValueError(
            f"make_pairs: length mismatch (labels={labels.shape[0]}, groups={groups.shape[0]})"
        )
    return groups


def _kept_rows(mask: Tensor, labels: Tensor) -> Tensor:
    keep = _vector("mask", mask, labels.device)
    if keep.dtype != torch.bool or keep.shape != labels.shape:
        raise ValueError(
            f"make_pairs: mask must be a bool tensor of length {labels.shape[0]}, "
            f"got {keep.dtype} of shape {tuple(keep.shape)}"
        )
    return keep.nonzero().view(-1)


def make_pairs(
    labels: Tensor,
    groups: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    max_pairs_per_group: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Index pairs ``(first, second)`` with ``labels[first] > labels[second]`` in the same group.

    Rows are sorted by (group, label); the rows with a lower label than row i in i's group are
    then one contiguous run, and all pairs are enumerated with ``repeat_interleave`` / ``arange``
    arithmetic (no per-pair or per-group Python). Equal labels form no pair and no pair crosses
    groups (``groups=None``: one group). ``mask`` (bool ``[N]``) keeps only the rows where it is
    True, e.g. the purchased rows of a payment-amount task. ``groups`` and ``mask`` are moved to
    the labels' device; bool labels count as 0/1.

    Sampling: with ``max_pairs_per_group=m``, each group keeps ``min(m, P_g)`` of its ``P_g`` valid
    pairs, drawn uniformly without replacement (every subset of that size equally likely): each
    pair gets a ``torch.rand`` key from ``generator`` and the m smallest keys of each group are
    kept. The same seeded generator gives the same pairs.

    Returns:
        Two int64 tensors on the labels' device, sorted by group (in group-id order) then by
        ``first``'s label.

    Raises:
        ValueError: labels, groups or mask not 1-D, of different lengths, NaN labels, groups not
            integer ids, a mask that is not bool, or a cap that is not a positive integer.

    Example:
        >>> y = torch.tensor([1.0, 0.0, 0.0, 2.0]); g = torch.tensor([5, 5, 5, 5])
        >>> first, second = make_pairs(y, g, max_pairs_per_group=2,
        ...                            generator=torch.Generator().manual_seed(0))
        >>> len(first), bool((y[first] > y[second]).all())
        (2, True)
    """
    labels = _checked_labels(labels)
    if groups is not None:
        groups = _checked_groups(groups, labels)
    limit = optional_positive_int(max_pairs_per_group, "make_pairs: max_pairs_per_group")
    rows: Tensor | None = None
    if mask is not None:
        rows = _kept_rows(mask, labels)
        labels = labels[rows]
        groups = None if groups is None else groups[rows]
    pairs = _enumerate_pairs(labels, groups)
    chosen = None
    if limit is not None and pairs.first.shape[0] > 0:
        chosen = _sample_per_group(pairs, limit, generator)
    first, second = pairs.rows(chosen)
    if rows is not None:
        first, second = rows[first], rows[second]
    return first, second


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
    when given (e.g. from `make_pairs`, sampled or restricted to purchased rows); otherwise every
    (i, j) with ``labels[i] > labels[j]`` in the same group (one group when ``groups`` is None), as
    `make_pairs` enumerates them. Equal labels form no pair.

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
        first, second = _enumerate_pairs(labels.detach(), groups).rows()
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


def softmax_cross_entropy_loss(
    scores: Tensor,
    labels: Tensor,
    groups: Tensor | None = None,
    gain: ListGain = "exponential",
    reduction: Reduction = "mean",
) -> Tensor:
    """Listwise softmax cross-entropy (ListNet's top-one loss) of each group (query).

    For a group q with scores ``s`` and target weights ``y'_i = gain(y_i) / sum_j gain(y_j)``
    (``gain``: ``2**y - 1``, ``"exponential"``, default, or ``y``, ``"linear"``), its loss is
    ``-sum_i y'_i log softmax(s)_i``, the cross-entropy between the target distribution and the
    softmax of the group's scores. A group whose gains are all 0 (no relevant item) has no target
    and is **skipped**: it adds nothing and is not counted by the mean. Computed with segment
    sums over the group ids (``scatter_reduce`` / ``index_add``; no per-group Python) with the
    per-group max subtracted, so it is stable for any score scale.

    Args:
        scores: ``[B]`` logits of the single ranking score.
        labels: ``[B]`` graded relevance, ``>= 0`` (not checked, to avoid a device sync).
        groups: optional ``[B]`` integer query ids (``None``: one group).
        gain: how a label becomes its target weight (see above).
        reduction: ``"mean"`` over the groups with a relevant item (default), ``"sum"``, or
            ``"none"``: one loss per such group, in ascending group-id order.

    With no group to score the result is ``0`` for ``"mean"`` and ``"sum"`` (in the autograd
    graph, with zero gradients) and an empty tensor for ``"none"``.

    Example:
        >>> s = torch.tensor([2.0, 0.0, 1.0, 0.5, 0.5])
        >>> y = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
        >>> g = torch.tensor([0, 0, 0, 1, 1])   # group 1 has no relevant item: skipped
        >>> round(softmax_cross_entropy_loss(s, y, g).item(), 4)  # -log softmax(s)[0] in group 0
        0.4076
    """
    if scores.dim() != 1:
        raise ValueError(
            f"softmax_cross_entropy_loss: scores must be 1-D [B], got {tuple(scores.shape)}"
        )
    if labels.shape != scores.shape:
        raise ValueError(
            "softmax_cross_entropy_loss: labels must have the shape of scores "
            f"{tuple(scores.shape)}, got {tuple(labels.shape)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            "softmax_cross_entropy_loss: reduction must be 'mean', 'sum' or 'none', "
            f"got {reduction!r}"
        )
    if gain not in ("exponential", "linear"):
        raise ValueError(
            f"softmax_cross_entropy_loss: gain must be 'exponential' or 'linear', got {gain!r}"
        )
    if groups is None:
        codes = torch.zeros(scores.shape, dtype=torch.int64, device=scores.device)
    else:
        groups = groups.to(scores.device)
        if groups.shape != scores.shape:
            raise ValueError(
                "softmax_cross_entropy_loss: groups must have the shape of scores "
                f"{tuple(scores.shape)}, got {tuple(groups.shape)}"
            )
        if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
            raise ValueError(
                f"softmax_cross_entropy_loss: groups must hold integer ids, got {groups.dtype}"
            )
        codes = torch.unique(groups, return_inverse=True)[1].reshape(-1)
    n_groups = int(codes.max()) + 1 if codes.numel() else 0
    y = labels.detach().to(device=scores.device, dtype=scores.dtype)
    gains = torch.exp2(y) - 1.0 if gain == "exponential" else y
    totals = scores.new_zeros(n_groups).index_add(0, codes, gains)
    # Log-softmax within each group: subtract the group's max, then its log-sum-exp.
    peak = scores.new_full((n_groups,), -torch.inf).scatter_reduce(
        0, codes, scores.detach(), reduce="amax"
    )
    shifted = scores - peak[codes]
    log_norm = scores.new_zeros(n_groups).index_add(0, codes, torch.exp(shifted)).log()
    log_softmax = shifted - log_norm[codes]
    weights = gains / totals[codes].clamp(min=torch.finfo(scores.dtype).tiny)
    per_group = -scores.new_zeros(n_groups).index_add(0, codes, weights * log_softmax)
    scored = per_group[totals > 0]
    if reduction == "none":
        return scored
    total = scored.sum()  # an empty selection of per_group: still in the graph
    if reduction == "sum":
        return total
    return total / max(int(scored.shape[0]), 1)


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
