"""Seeded train/validation/test splits of row indices (numpy only).

- `split_indices`: one shuffle with ``numpy.random.default_rng(seed)``, then cut by fractions.
- `train_test_split_indices`: bit-for-bit the permutation of scikit-learn's
  ``train_test_split(X, test_size=..., random_state=seed)`` (its ``ShuffleSplit``), without
  importing scikit-learn.
- `stem_split`: STEM's TikTok split, ``train_test_split`` twice (81 / 9 / 10 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nomoretuning.checks import fraction
from nomoretuning.errors import DataError

__all__ = ["check_fractions", "split_indices", "stem_split", "train_test_split_indices"]


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validates (train, valid, test) fractions: three numbers >= 0 summing to 1, train > 0."""
    values = tuple(float(f) for f in fractions)
    if (
        len(values) != 3
        or any(not math.isfinite(f) or f < 0 for f in values)
        or abs(sum(values) - 1.0) > 1e-6
        or values[0] <= 0
    ):
        raise DataError(
            f"split fractions {tuple(fractions)!r} are invalid; pass three numbers >= 0 "
            "(train, valid, test) that sum to 1 with train > 0, e.g. (0.8, 0.1, 0.1)"
        )
    return values[0], values[1], values[2]


def split_indices(
    n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint, sorted int64 row indices (train, valid, test) covering ``range(n)``.

    Rows are shuffled with ``numpy.random.default_rng(seed).permutation(n)``; the validation and
    test sizes are ``round(n * fraction)`` and train gets the rest. The same ``(n, fractions,
    seed)`` always gives the same split.

    Example:
        >>> train, valid, test = split_indices(10, (0.8, 0.1, 0.1), seed=0)
        >>> len(train), len(valid), len(test)
        (8, 1, 1)
        >>> sorted(np.concatenate([train, valid, test]).tolist()) == list(range(10))
        True
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _, f_valid, f_test = check_fractions(fractions)
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    n_valid = round(n * f_valid)
    n_test = round(n * f_test)
    n_train = n - n_valid - n_test
    return (
        np.sort(perm[:n_train]),
        np.sort(perm[n_train : n_train + n_valid]),
        np.sort(perm[n_train + n_valid :]),
    )


def train_test_split_indices(
    n: int, test_size: float = 0.25, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices in the order scikit-learn's ``train_test_split`` returns rows.

    Same as ``train_test_split(np.arange(n), test_size=test_size, random_state=seed)``:
    ``perm = np.random.RandomState(seed).permutation(n)``, ``n_test = ceil(test_size * n)``,
    test ``= perm[:n_test]``, train ``= perm[n_test:]``.

    Example:
        >>> train, test = train_test_split_indices(10, 0.1, seed=42)
        >>> len(train), len(test)
        (9, 1)
    """
    fraction(test_size, "test_size", allow_zero=False, error=DataError)
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise DataError(f"test_size={test_size} of {n} rows leaves no training rows; use more rows")
    perm = np.random.RandomState(seed).permutation(n).astype(np.int64)
    return perm[n_test:], perm[:n_test]


def stem_split(
    n: int, seed: int = 42, test_size: float = 0.1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """STEM's TikTok split: ``train_test_split`` (test 10 %, seed 42), then again on the rest.

    Returns (train, valid, test) indices into ``range(n)``, in scikit-learn's row order.

    Example:
        >>> train, valid, test = stem_split(1000)
        >>> len(train), len(valid), len(test)
        (810, 90, 100)
    """
    rest, test = train_test_split_indices(n, test_size, seed)
    inner_train, inner_valid = train_test_split_indices(len(rest), test_size, seed)
    return rest[inner_train], rest[inner_valid], test
