"""`make_pairs` on the data layer's arrays: numpy arrays and sequences as well as tensors.

The pairs themselves are `nomoretuning.core.losses.make_pairs` (tensors only, as the core layer
depends on torch alone); this converts its inputs with ``torch.as_tensor(numpy.asarray(x))``.

Example:
    >>> import numpy as np
    >>> first, second = make_pairs(np.array([2.0, 0.0, 1.0, 1.0]), np.array([0, 0, 0, 1]))
    >>> first.tolist(), second.tolist()
    ([2, 0, 0], [1, 1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from nomoretuning.core import losses

__all__ = ["TensorLike", "make_pairs"]

TensorLike = Tensor | np.ndarray | Sequence[float]
"""A tensor, a numpy array or a sequence of numbers."""


def _as_tensor(values: TensorLike) -> Tensor:
    return values if isinstance(values, Tensor) else torch.as_tensor(np.asarray(values))


def make_pairs(
    labels: TensorLike,
    groups: TensorLike | None = None,
    *,
    mask: TensorLike | None = None,
    max_pairs_per_group: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """`nomoretuning.core.losses.make_pairs` (same arguments and result) for array-likes.

    Example:
        >>> first, second = make_pairs([30.0, 0.0, 10.0], mask=np.array([True, False, True]))
        >>> first.tolist(), second.tolist()
        ([0], [2])
    """
    return losses.make_pairs(
        _as_tensor(labels),
        None if groups is None else _as_tensor(groups),
        mask=None if mask is None else _as_tensor(mask),
        max_pairs_per_group=max_pairs_per_group,
        generator=generator,
    )
