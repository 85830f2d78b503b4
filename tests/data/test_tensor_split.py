"""TensorSplit batching: every row once per epoch, seeded order, drop_last, subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nomoretuning.data import Batch, TensorSplit
from nomoretuning.errors import DataError


def _split(n: int = 103) -> TensorSplit:
    ids = torch.arange(n)
    return TensorSplit(
        sparse=torch.stack([ids, ids % 7], dim=1),
        dense=ids.float().view(n, 1) / 10,
        labels={"click": (ids % 2).float(), "like": (ids % 3 == 0).float()},
        groups=ids // 10,
    )


def _rows(batches: list[Batch]) -> list[int]:
    return [int(i) for b in batches for i in b.sparse[:, 0]]


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 10, 103, 1000])
def test_every_row_once_per_epoch_with_aligned_columns(shuffle: bool, batch_size: int) -> None:
    split = _split()
    batches = list(
        split.batches(batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0))
    )
    assert sorted(_rows(batches)) == list(range(103))
    assert len(batches) == split.num_batches(batch_size)
    for b in batches:
        ids = b.sparse[:, 0]
        assert torch.equal(b.sparse[:, 1], ids % 7)
        assert torch.equal(b.dense[:, 0], ids.float() / 10)
        assert torch.equal(b.labels["click"], (ids % 2).float())
        assert torch.equal(b.labels["like"], (ids % 3 == 0).float())
        assert b.groups is not None and torch.equal(b.groups, ids // 10)


def test_unshuffled_batches_are_in_storage_order() -> None:
    assert _rows(list(_split().batches(10, shuffle=False))) == list(range(103))


def test_seeded_order_is_reproducible_and_seed_dependent() -> None:
    split = _split()

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return _rows(list(split.batches(16, shuffle=True, generator=gen)))

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(103))
    # One generator drives successive epochs to different orders.
    gen = torch.Generator().manual_seed(1)
    first = _rows(list(split.batches(16, shuffle=True, generator=gen)))
    second = _rows(list(split.batches(16, shuffle=True, generator=gen)))
    assert first == order(1) and first != second


def test_drop_last_drops_only_the_partial_batch() -> None:
    split = _split()
    batches = list(
        split.batches(10, shuffle=True, generator=torch.Generator().manual_seed(0), drop_last=True)
    )
    assert [len(b) for b in batches] == [10] * 10
    assert len(set(_rows(batches))) == 100
    assert split.num_batches(10, drop_last=True) == 10
    assert [len(b) for b in split.batches(10, shuffle=False)][-1] == 3


def test_subset_batch_and_full_batch() -> None:
    split = _split()
    sub = split.subset(np.array([5, 1, 9]))
    assert len(sub) == 3 and sub.sparse[:, 0].tolist() == [5, 1, 9]
    assert sub.labels["click"].tolist() == [1.0, 1.0, 1.0]
    assert split.subset(torch.arange(103) < 4).sparse[:, 0].tolist() == [0, 1, 2, 3]
    assert split.subset(slice(10, 13)).sparse[:, 0].tolist() == [10, 11, 12]
    assert split.batch([2, 3]).sparse[:, 0].tolist() == [2, 3]
    full = split.full_batch()
    assert len(full) == 103 and full.sparse.data_ptr() == split.sparse.data_ptr()
    assert split.tasks == ("click", "like")
    assert len(split.to("cpu")) == 103


def test_empty_split_and_splits_without_groups() -> None:
    split = _split().subset(slice(0, 0))
    assert len(split) == 0
    assert list(split.batches(8, shuffle=True)) == []
    nogroups = TensorSplit.from_numpy(
        np.zeros((4, 1), dtype=np.int64), np.zeros((4, 0)), {"y": np.array([0, 1, 0, 1])}
    )
    batch = next(nogroups.batches(4, shuffle=False))
    assert batch.groups is None and batch.dense.shape == (4, 0)
    assert batch.labels["y"].dtype == torch.float32


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size(batch_size: object) -> None:
    with pytest.raises(DataError, match="batch_size must be a positive integer, got"):
        next(_split().batches(batch_size, shuffle=False))  # type: ignore[arg-type]


def test_inconsistent_tensors_are_rejected() -> None:
    with pytest.raises(ValueError, match="dense must be"):
        TensorSplit(torch.zeros(3, 1, dtype=torch.long), torch.zeros(2, 0), {"y": torch.zeros(3)})
    with pytest.raises(ValueError, match="labels\\['y'\\]"):
        TensorSplit(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 0), {"y": torch.zeros(2)})
    with pytest.raises(ValueError, match="sparse must hold integers"):
        TensorSplit(torch.zeros(3, 1), torch.zeros(3, 0), {"y": torch.zeros(3)})
    with pytest.raises(ValueError, match="groups"):
        TensorSplit(
            torch.zeros(3, 1, dtype=torch.long),
            torch.zeros(3, 0),
            {"y": torch.zeros(3)},
            torch.zeros(4, dtype=torch.long),
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("generator_device", ["cpu", "cuda"])
def test_batches_on_the_gpu(generator_device: str) -> None:
    split = _split().to("cuda")
    gen = torch.Generator(device=generator_device).manual_seed(0)
    batches = list(split.batches(16, shuffle=True, generator=gen))
    assert all(b.sparse.is_cuda and b.labels["click"].is_cuda for b in batches)
    assert sorted(_rows(batches)) == list(range(103))
