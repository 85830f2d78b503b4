"""Batches of preloaded tensors.

`Batch` and `PreparedDataset` are the contract between the data layer and the trainer
(see docs/architecture.md). `TensorSplit` batches a split held in memory with one random
permutation per epoch and tensor slicing: no per-row Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from nomoretuning.checks import positive_int
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig

__all__ = ["Batch", "PreparedDataset", "TensorSplit"]


@dataclass
class Batch:
    """A mini-batch: sparse ids, dense values, one label vector per task, optional group ids.

    Example:
        >>> b = Batch(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 0),
        ...           {"click": torch.tensor([0.0, 1.0])})
        >>> len(b)
        2
    """

    sparse: Tensor
    dense: Tensor
    labels: dict[str, Tensor]
    groups: Tensor | None = None

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Moves every tensor to `device`."""
        return Batch(
            sparse=self.sparse.to(device, non_blocking=non_blocking),
            dense=self.dense.to(device, non_blocking=non_blocking),
            labels={k: v.to(device, non_blocking=non_blocking) for k, v in self.labels.items()},
            groups=None
            if self.groups is None
            else self.groups.to(device, non_blocking=non_blocking),
        )


@dataclass
class TensorSplit:
    """One split (train, valid or test) held as tensors, batched without per-row Python.

    Args:
        sparse: ``LongTensor[N, S]`` vocabulary indices, column j for field j.
        dense: ``FloatTensor[N, D]`` standardized values (``[N, 0]`` when there are none).
        labels: one ``FloatTensor[N]`` of 0/1 per task.
        groups: optional ``LongTensor[N]`` group ids (user / query) for gAUC and ranking.

    ``batches`` draws one ``randperm`` per epoch (when shuffling) and slices it, so an epoch costs
    a handful of tensor gathers per batch whatever the batch size.

    Example:
        >>> split = TensorSplit(torch.arange(5).view(5, 1), torch.zeros(5, 0),
        ...                     {"click": torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])})
        >>> gen = torch.Generator().manual_seed(0)
        >>> [len(b) for b in split.batches(2, shuffle=True, generator=gen)]
        [2, 2, 1]
        >>> len(split.subset([0, 2]))
        2
    """

    sparse: Tensor
    dense: Tensor
    labels: dict[str, Tensor]
    groups: Tensor | None = None

    def __post_init__(self) -> None:
        if self.sparse.dim() != 2:
            raise ValueError(
                f"TensorSplit: sparse must be 2-D [N, S], got {tuple(self.sparse.shape)}"
            )
        if self.sparse.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"TensorSplit: sparse must hold integers, got {self.sparse.dtype}")
        n = int(self.sparse.shape[0])
        if self.dense.dim() != 2 or int(self.dense.shape[0]) != n:
            raise ValueError(
                f"TensorSplit: dense must be [N={n}, D], got {tuple(self.dense.shape)}"
            )
        if not self.dense.is_floating_point():
            raise ValueError(f"TensorSplit: dense must be floating point, got {self.dense.dtype}")
        if not self.labels:
            raise ValueError("TensorSplit: needs at least one label tensor")
        for task, y in self.labels.items():
            if y.dim() != 1 or int(y.shape[0]) != n:
                raise ValueError(
                    f"TensorSplit: labels[{task!r}] must be [N={n}], got {tuple(y.shape)}"
                )
        if self.groups is not None and (self.groups.dim() != 1 or int(self.groups.shape[0]) != n):
            raise ValueError(f"TensorSplit: groups must be [N={n}], got {tuple(self.groups.shape)}")

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task names, in label order."""
        return tuple(self.labels)

    @property
    def device(self) -> torch.device:
        return self.sparse.device

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Number of batches `batches(batch_size, drop_last=drop_last)` yields per epoch."""
        positive_int(batch_size, "batch_size", error=DataError)
        n = len(self)
        return n // batch_size if drop_last else -(-n // batch_size)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """One epoch of batches: every row once (all but the last partial batch if `drop_last`).

        With `shuffle`, the order is ``torch.randperm(N, generator=generator)``: a seeded
        generator gives the same order on every run. Without it, rows come in storage order as
        views (no copy).
        """
        positive_int(batch_size, "batch_size", error=DataError)
        n = len(self)
        stop = n - n % batch_size if drop_last else n
        order: Tensor | None = None
        if shuffle and n > 0:
            device = generator.device if generator is not None else torch.device("cpu")
            order = torch.randperm(n, generator=generator, device=device).to(self.device)
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, n)
            if order is None:
                yield self._slice(start, end)
            else:
                yield self._gather(order[start:end])

    def batch(self, indices: Tensor | np.ndarray | Sequence[int]) -> Batch:
        """The rows `indices` as one `Batch`."""
        return self._gather(self._as_index(indices))

    def full_batch(self) -> Batch:
        """The whole split as one `Batch` (views, no copy)."""
        return self._slice(0, len(self))

    def subset(self, indices: Tensor | np.ndarray | Sequence[int] | slice) -> TensorSplit:
        """A new split with the rows `indices` (a slice gives views, indices copy)."""
        if isinstance(indices, slice):
            return TensorSplit(
                self.sparse[indices],
                self.dense[indices],
                {k: v[indices] for k, v in self.labels.items()},
                None if self.groups is None else self.groups[indices],
            )
        b = self.batch(indices)
        return TensorSplit(b.sparse, b.dense, b.labels, b.groups)

    def to(self, device: torch.device | str) -> TensorSplit:
        """Moves every tensor to `device` (e.g. to batch on the GPU)."""
        b = self.full_batch().to(device)
        return TensorSplit(b.sparse, b.dense, b.labels, b.groups)

    def _slice(self, start: int, end: int) -> Batch:
        return Batch(
            sparse=self.sparse[start:end],
            dense=self.dense[start:end],
            labels={k: v[start:end] for k, v in self.labels.items()},
            groups=None if self.groups is None else self.groups[start:end],
        )

    def _gather(self, index: Tensor) -> Batch:
        return Batch(
            sparse=self.sparse.index_select(0, index),
            dense=self.dense.index_select(0, index),
            labels={k: v.index_select(0, index) for k, v in self.labels.items()},
            groups=None if self.groups is None else self.groups.index_select(0, index),
        )

    def _as_index(self, indices: Tensor | np.ndarray | Sequence[int]) -> Tensor:
        index = torch.as_tensor(np.asarray(indices) if not isinstance(indices, Tensor) else indices)
        if index.dtype == torch.bool:
            index = index.nonzero().view(-1)
        return index.to(device=self.device, dtype=torch.int64).view(-1)

    @staticmethod
    def from_numpy(
        sparse: np.ndarray,
        dense: np.ndarray,
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None = None,
    ) -> TensorSplit:
        """Builds a split from numpy arrays (int64 or int32 sparse, float32 dense and labels)."""
        ids = np.int32 if np.asarray(sparse).dtype == np.int32 else np.int64
        return TensorSplit(
            sparse=torch.from_numpy(np.ascontiguousarray(sparse, dtype=ids)),
            dense=torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32)),
            labels={
                k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))
                for k, v in labels.items()
            },
            groups=None
            if groups is None
            else torch.from_numpy(np.ascontiguousarray(groups, dtype=np.int64)),
        )


@dataclass
class PreparedDataset:
    """Encoded train/validation/test splits ready for training, with their provenance.

    `train`, `valid` and `test` are `TensorSplit`s (or any object with the same `batches()`
    and `__len__`).
    """

    name: str
    tasks: tuple[str, ...]
    features: FeatureConfig
    train: object
    valid: object
    test: object
    description: str = ""
    metadata: dict[str, object] = field(default_factory=dict)
