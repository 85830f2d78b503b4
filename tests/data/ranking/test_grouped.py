"""GroupedSplit (batches of whole groups) and split_groups (parts of whole groups)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nomoretuning.data.batching import TensorSplit
from nomoretuning.data.ranking import GroupedSplit
from nomoretuning.data.ranking.grouped import split_groups
from nomoretuning.errors import DataError


def _grouped(groups: list[int], n_dense: int = 2) -> GroupedSplit:
    n = len(groups)
    return GroupedSplit(
        torch.zeros(n, 0, dtype=torch.long),
        torch.arange(n * n_dense, dtype=torch.float32).view(n, n_dense),
        {"relevance": torch.arange(n, dtype=torch.float32)},
        torch.tensor(groups),
    )


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_grouped_split_keeps_groups_whole_and_covers_rows(shuffle: bool, batch_size: int) -> None:
    rng = np.random.default_rng(batch_size)
    groups = rng.permutation(np.repeat(np.arange(12), rng.integers(1, 9, 12))).tolist()
    split = _grouped(groups)
    gen = torch.Generator().manual_seed(0)
    seen: list[int] = []
    for batch in split.batches(batch_size, shuffle=shuffle, generator=gen):
        rows = batch.labels["relevance"].long().tolist()  # label = row index
        seen.extend(rows)
        assert batch.groups is not None
        ids = set(batch.groups.tolist())
        for g in ids:  # every group in the batch is complete
            assert sum(1 for r in rows if groups[r] == g) == groups.count(g)
        assert len(batch) <= batch_size or len(ids) == 1
        torch.testing.assert_close(batch.dense, split.dense[torch.tensor(rows)])
    assert sorted(seen) == list(range(len(groups)))


def test_grouped_split_packing_and_order() -> None:
    split = _grouped([4, 4, 4, 9, 2, 2, 2, 2, 2, 7])
    sizes = [len(b) for b in split.batches(4, shuffle=False)]
    assert sizes == [4, 5, 1]  # [3 + 1], oversized group of 5, [1]
    first = next(iter(split.batches(4, shuffle=False)))
    assert first.groups is not None and first.groups.tolist() == [4, 4, 4, 9]
    assert split.num_groups == 4 and split.group_sizes.tolist() == [3, 1, 5, 1]
    assert split.num_batches(4) == 3 and split.num_batches(4, drop_last=True) == 2
    assert [len(b) for b in split.batches(4, shuffle=False, drop_last=True)] == [4, 5]


def test_grouped_split_shuffle_is_seeded() -> None:
    split = _grouped(list(np.repeat(np.arange(40), 3)))

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        batches = split.batches(6, shuffle=True, generator=gen)
        return [g for b in batches if b.groups is not None for g in b.groups.tolist()]

    assert order(0) == order(0)
    assert order(0) != order(1)


def test_grouped_split_is_a_tensor_split_and_keeps_its_type() -> None:
    split = _grouped([0, 0, 1, 1, 1])
    assert isinstance(split, TensorSplit)
    assert isinstance(split.subset([2, 3, 4]), GroupedSplit)
    assert isinstance(split.to("cpu"), GroupedSplit)
    assert len(split.subset([2, 3, 4])) == 3


def test_grouped_split_bad_inputs() -> None:
    with pytest.raises(ValueError, match="groups are required"):
        GroupedSplit(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 1), {"y": torch.zeros(2)})
    with pytest.raises(ValueError, match="integer ids"):
        GroupedSplit(
            torch.zeros(2, 0, dtype=torch.long),
            torch.zeros(2, 1),
            {"y": torch.zeros(2)},
            torch.zeros(2),
        )
    with pytest.raises(ValueError, match="groups must be"):
        GroupedSplit(
            torch.zeros(2, 0, dtype=torch.long),
            torch.zeros(2, 1),
            {"y": torch.zeros(2)},
            torch.zeros(3, dtype=torch.long),
        )
    with pytest.raises(DataError, match="batch_size must be a positive integer, got 0"):
        next(iter(_grouped([0, 1]).batches(0, shuffle=False)))
    with pytest.raises(ValueError, match="groups are required"):
        GroupedSplit.from_numpy(np.zeros((2, 0)), np.zeros((2, 1)), {"y": np.zeros(2)})


def test_split_groups_keeps_groups_whole_and_is_seeded() -> None:
    groups = np.repeat(np.arange(50), 3)[np.random.default_rng(0).permutation(150)]
    parts = split_groups(groups, (0.8, 0.1, 0.1), seed=4)
    assert [len(set(groups[p].tolist())) for p in parts] == [40, 5, 5]
    assert sorted(np.concatenate(parts).tolist()) == list(range(150))
    for part in parts:
        assert np.all(np.diff(part) > 0)  # ascending row indices
        for other in parts:
            if other is not part:
                assert not set(groups[part].tolist()) & set(groups[other].tolist())
    again = split_groups(groups, (0.8, 0.1, 0.1), seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = split_groups(groups, (0.8, 0.1, 0.1), seed=5)
    assert not np.array_equal(parts[1], other[1])
