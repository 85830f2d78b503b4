"""Group-preserving data for pairwise losses: `GroupedSplit` (batches of whole groups) and
`split_groups` (train/valid/test parts of whole groups).

Example:
    >>> import numpy as np
    >>> [part.tolist() for part in split_groups(np.array([7, 7, 3, 3, 5]), (0.5, 0.5), seed=0)]
    [[0, 1], [2, 3, 4]]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from nomoretuning.checks import positive_int
from nomoretuning.data.batching import Batch, TensorSplit
from nomoretuning.errors import DataError

__all__ = ["GroupedSplit", "check_ranked_pairs", "split_groups"]


class GroupedSplit(TensorSplit):
    """A `TensorSplit` whose batches never split a group (query): for pairwise losses.

    ``groups`` (``LongTensor[N]``) is required. Groups are taken in order of their first row
    (rows of a group in storage order), or in ``torch.randperm(G, generator=generator)`` order when
    shuffling; consecutive whole groups are packed into a batch while it holds at most
    ``batch_size`` rows, and a group larger than ``batch_size`` forms a batch on its own. Every row
    is in exactly one batch per epoch. ``drop_last`` drops the epoch's last batch when it holds
    fewer than ``batch_size`` rows. `num_batches` counts the batches of the unshuffled order (a
    shuffled epoch packs differently and may have a few more or fewer).

    Example:
        >>> split = GroupedSplit(torch.zeros(5, 0, dtype=torch.long), torch.randn(5, 2),
        ...                      {"relevance": torch.tensor([2.0, 0.0, 1.0, 0.0, 1.0])},
        ...                      torch.tensor([0, 0, 1, 1, 1]))
        >>> [b.groups.tolist() for b in split.batches(4, shuffle=False)]
        [[0, 0], [1, 1, 1]]
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        groups = self.groups
        if groups is None:
            raise ValueError("GroupedSplit: groups are required (one query/user id per row)")
        if groups.is_floating_point() or groups.dtype == torch.bool:
            raise ValueError(f"GroupedSplit: groups must hold integer ids, got {groups.dtype}")
        n = len(self)
        _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        position = torch.arange(n, device=groups.device)
        first_row = torch.full((counts.shape[0],), n, dtype=torch.int64, device=groups.device)
        first_row = first_row.scatter_reduce(0, inverse, position, reduce="amin")
        by_appearance = torch.argsort(first_row)
        group_rank = torch.argsort(by_appearance)
        self._rows = torch.argsort(group_rank[inverse], stable=True)
        sizes = counts[by_appearance].cpu().numpy().astype(np.int64)
        self._sizes: np.ndarray = sizes
        self._starts: np.ndarray = np.cumsum(sizes) - sizes

    @property
    def num_groups(self) -> int:
        """Number of distinct groups."""
        return int(self._sizes.size)

    @property
    def group_sizes(self) -> np.ndarray:
        """Rows per group, groups in order of first appearance."""
        return self._sizes.copy()

    def _epoch(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        positive_int(batch_size, "batch_size", error=DataError)
        n_groups = self._sizes.size
        if shuffle and n_groups > 0:
            device = generator.device if generator is not None else torch.device("cpu")
            perm = torch.randperm(n_groups, generator=generator, device=device).cpu().numpy()
        else:
            perm = np.arange(n_groups)
        sizes = self._sizes[perm]
        ends = np.cumsum(sizes)
        # position in self._rows of every row, groups in epoch order
        positions = np.repeat(self._starts[perm] - (ends - sizes), sizes) + np.arange(
            int(ends[-1]) if n_groups else 0
        )
        bounds: list[tuple[int, int]] = []
        group, start = 0, 0
        while group < n_groups:
            stop_group = int(np.searchsorted(ends, start + batch_size, side="right"))
            stop_group = max(stop_group, group + 1)  # an oversized group forms its own batch
            stop = int(ends[stop_group - 1])
            bounds.append((start, stop))
            group, start = stop_group, stop
        return positions, bounds

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per epoch in the unshuffled order (shuffled epochs may differ slightly)."""
        _, bounds = self._epoch(batch_size, False, None)
        if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < batch_size:
            return len(bounds) - 1
        return len(bounds)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """One epoch of batches made of whole groups (see the class docstring)."""
        positions, bounds = self._epoch(batch_size, shuffle, generator)
        if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < batch_size:
            bounds = bounds[:-1]
        rows = self._rows[torch.from_numpy(positions).to(self._rows.device)]
        for start, stop in bounds:
            yield self.batch(rows[start:stop])

    def subset(self, indices: Tensor | np.ndarray | Sequence[int] | slice) -> GroupedSplit:
        """A new `GroupedSplit` with the rows ``indices`` (keep whole groups to keep them whole)."""
        part = super().subset(indices)
        return GroupedSplit(part.sparse, part.dense, part.labels, part.groups)

    def to(self, device: torch.device | str) -> GroupedSplit:
        """Moves every tensor to ``device``."""
        b = self.full_batch().to(device)
        return GroupedSplit(b.sparse, b.dense, b.labels, b.groups)

    @staticmethod
    def from_numpy(
        sparse: np.ndarray,
        dense: np.ndarray,
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None = None,
    ) -> GroupedSplit:
        """Builds a split from numpy arrays (int64 sparse and groups, float32 dense and labels)."""
        if groups is None:
            raise ValueError("GroupedSplit: groups are required (one query/user id per row)")
        s = TensorSplit.from_numpy(sparse, dense, labels, groups)
        return GroupedSplit(s.sparse, s.dense, s.labels, s.groups)


def split_groups(groups: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Row indices of each part (ascending), whole groups per part.

    The distinct group ids are permuted with ``numpy.random.default_rng(seed)``; every part after
    the first gets ``round(G * fraction)`` of the G groups and the first part the rest.
    """
    ids = np.unique(groups)
    perm = np.random.default_rng(seed).permutation(ids)
    counts = [round(ids.size * f) for f in fractions[1:]]
    cuts = np.cumsum([ids.size - sum(counts), *counts])[:-1]
    return [np.flatnonzero(np.isin(groups, part)) for part in np.split(perm, cuts)]


def check_ranked_pairs(
    splits: Mapping[str, GroupedSplit],
    tasks: Sequence[str],
    source: str,
    positive_only: Sequence[str] = (),
) -> None:
    """Refuses a ranking task that some split gives nothing to rank: no query with two items of
    different labels (for a task of ``positive_only``, two different positive labels, the pairs
    its ``"positive"`` mask keeps). Its pairwise loss would have nothing to learn (train), its
    selection nothing to choose by (valid), its NDCG and pair accuracy be undefined (test).

    Example:
        >>> split = GroupedSplit(torch.zeros(4, 0, dtype=torch.long), torch.zeros(4, 1),
        ...                      {"click": torch.tensor([1.0, 0.0, 0.0, 0.0])},
        ...                      torch.tensor([0, 0, 1, 1]))
        >>> check_ranked_pairs({"train": split}, ["click"], "logs.csv")
        >>> check_ranked_pairs({"train": split}, ["click"], "logs.csv", positive_only=["click"])
        Traceback (most recent call last):
        ...
        nomoretuning.errors.DataError: logs.csv: task 'click' has no query with two different positive labels in the train split (2 queries); ...

    Raises:
        DataError: the task, the split and its number of queries named.
    """  # noqa: E501
    for part, split in splits.items():
        assert split.groups is not None
        groups = split.groups.cpu().numpy()
        for task in tasks:
            labels = split.labels[task].cpu().numpy()
            keep = labels > 0 if task in positive_only else np.ones(labels.size, dtype=bool)
            distinct = np.unique(np.stack([groups[keep], labels[keep]]), axis=1)
            _, per_query = np.unique(distinct[0], return_counts=True)
            if not (per_query >= 2).any():
                which = "different positive labels" if task in positive_only else "different labels"
                raise DataError(
                    f"{source}: task {task!r} has no query with two {which} in the {part} "
                    f"split ({split.num_groups} queries); nothing to rank: use more queries, "
                    "another split, or drop the task (data.tasks)"
                )
