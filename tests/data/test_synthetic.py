"""Synthetic click logs: seeded, fast, with ground truth and a working conflict knob."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch

from nomoretuning.data import TensorSplit, make_synthetic
from nomoretuning.errors import DataError


def _logit_corr(conflict: float) -> float:
    ds = make_synthetic(20_000, conflict=conflict, seed=11)
    logits = ds.metadata["true_logits"]["train"]
    return float(np.corrcoef(logits["click"].numpy(), logits["like"].numpy())[0, 1])


def test_task_correlation_falls_as_conflict_rises() -> None:
    corr = [_logit_corr(c) for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in itertools.pairwise(corr))
    assert corr[0] > 0.99 and abs(corr[-1]) < 0.05
    np.testing.assert_allclose(corr[2], np.cos(np.pi / 4), atol=0.03)


def test_labels_follow_the_true_probabilities() -> None:
    ds = make_synthetic(50_000, tasks=("click", "like", "share"), conflict=0.3, seed=2)
    train = ds.train
    assert isinstance(train, TensorSplit)
    for task in ds.tasks:
        p = ds.metadata["true_probabilities"]["train"][task]
        y = train.labels[task]
        assert p.shape == y.shape
        assert abs(float(y.mean() - p.mean())) < 0.01
        # Calibration: rows with p > 0.8 are mostly positive, p < 0.2 mostly negative.
        assert float(y[p > 0.8].mean()) > 0.8 and float(y[p < 0.2].mean()) < 0.2
        logit = ds.metadata["true_logits"]["train"][task]
        assert torch.allclose(torch.sigmoid(logit), p, atol=1e-6)
    assert ds.metadata["task_weights"].shape == (3, 12)


def test_schema_and_seeding() -> None:
    ds = make_synthetic(5_000, n_users=50, n_items=70, n_dense=3, seed=4)
    assert [(f.name, f.vocab_size) for f in ds.features.sparse] == [
        ("user_id", 51),
        ("item_id", 71),
    ]
    assert ds.features.dense == ("x0", "x1", "x2")
    train = ds.train
    assert isinstance(train, TensorSplit) and train.groups is not None
    assert int(train.sparse[:, 0].min()) >= 1 and int(train.sparse[:, 0].max()) <= 50
    assert torch.equal(train.groups + 1, train.sparse[:, 0])
    same = make_synthetic(5_000, n_users=50, n_items=70, n_dense=3, seed=4)
    other = make_synthetic(5_000, n_users=50, n_items=70, n_dense=3, seed=5)
    assert torch.equal(train.labels["click"], same.train.labels["click"])  # type: ignore[attr-defined]
    assert not torch.equal(train.sparse, other.train.sparse)  # type: ignore[attr-defined]


def test_a_million_rows_in_a_few_seconds() -> None:
    start = time.perf_counter()
    ds = make_synthetic(1_000_000, seed=0)
    assert len(ds.train) == 800_000  # type: ignore[arg-type]
    assert time.perf_counter() - start < 15.0  # about 1 s alone; generous for a shared CPU


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conflict": 1.5}, r"conflict must be a number in \[0, 1\], got 1.5"),
        ({"tasks": ()}, "tasks must name at least one task"),
        ({"tasks": ("a", "a")}, "tasks: task 'a' appears more than once"),
        ({"positive_rate": 1.0}, r"positive_rate must be a number in \(0, 1\), got 1.0"),
        ({"positive_rate": (0.2,)}, r"positive_rate must be one rate in \(0, 1\) per task"),
        ({"n_users": 0}, "n_users must be a positive integer, got 0"),
        ({"dim": 0}, "dim must be a positive integer, got 0"),
        ({"n_dense": -1}, "n_dense must be an integer >= 0, got -1"),
        ({"dim": 1, "n_dense": 0, "tasks": ("a", "b")}, "2 tasks need dim [+] n_dense >= 2"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        make_synthetic(100, **kwargs)  # type: ignore[arg-type]
