"""Seeded splits: deterministic, disjoint, complete, and sklearn-identical where claimed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from nomoretuning.data import split_indices, stem_split, train_test_split_indices
from nomoretuning.errors import DataError


@pytest.mark.parametrize("n", [1, 10, 997, 10_000])
def test_split_indices_are_disjoint_complete_and_sized(n: int) -> None:
    train, valid, test = split_indices(n, (0.8, 0.1, 0.1), seed=3)
    both = np.concatenate([train, valid, test])
    assert np.array_equal(np.sort(both), np.arange(n))
    assert len(valid) == round(0.1 * n) and len(test) == round(0.1 * n)
    assert all(np.all(np.diff(part) > 0) for part in (train, valid, test))


def test_split_indices_depend_only_on_the_seed() -> None:
    a = split_indices(1000, (0.7, 0.2, 0.1), seed=5)
    b = split_indices(1000, (0.7, 0.2, 0.1), seed=5)
    c = split_indices(1000, (0.7, 0.2, 0.1), seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    "fractions", [(0.8, 0.1), (0.5, 0.5, 0.5), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1)]
)
def test_bad_fractions_raise(fractions: tuple[float, ...]) -> None:
    with pytest.raises(DataError, match="split fractions"):
        split_indices(100, fractions)


@pytest.mark.parametrize(("n", "seed"), [(10, 0), (200, 42), (1001, 7), (12_345, 42)])
def test_train_test_split_indices_match_sklearn(n: int, seed: int) -> None:
    train, test = train_test_split_indices(n, 0.1, seed)
    ref_train, ref_test = train_test_split(np.arange(n), test_size=0.1, random_state=seed)
    assert np.array_equal(train, ref_train)
    assert np.array_equal(test, ref_test)


@pytest.mark.parametrize("n", [200, 5003])
def test_stem_split_matches_two_sklearn_calls(n: int) -> None:
    rows = np.arange(n)
    rest, ref_test = train_test_split(rows, test_size=0.1, random_state=42)
    ref_train, ref_valid = train_test_split(rest, test_size=0.1, random_state=42)
    train, valid, test = stem_split(n)
    assert np.array_equal(train, ref_train)
    assert np.array_equal(valid, ref_valid)
    assert np.array_equal(test, ref_test)


def test_train_test_split_rejects_degenerate_sizes() -> None:
    with pytest.raises(DataError, match=r"test_size must be a number in \(0, 1\), got 1.5"):
        train_test_split_indices(10, 1.5)
    with pytest.raises(DataError, match="no training rows"):
        train_test_split_indices(1, 0.5)
