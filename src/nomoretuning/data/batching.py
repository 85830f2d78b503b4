"""Batches of preloaded tensors.

`Batch` and `PreparedDataset` are the contract between the data layer and the trainer
(see docs/architecture.md). `TensorSplit` batches a split held in memory with one random
permutation per epoch and tensor slicing: no per-row Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from nomoretuning.models.features import FeatureConfig

__all__ = ["Batch", "PreparedDataset"]


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
            groups=None if self.groups is None else self.groups.to(device, non_blocking=non_blocking),
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
