"""load_lambdarank_example on the real LightGBM lambdarank example, and the pairwise loss on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nomoretuning.core.losses import make_pairs, pairwise_logistic_loss
from nomoretuning.data import PreparedDataset
from nomoretuning.data.ranking import GroupedSplit, PairwiseSpec, load_lambdarank_example
from nomoretuning.errors import DataError


@pytest.fixture(scope="module")
def lambdarank(lambdarank_dir: Path) -> PreparedDataset:
    return load_lambdarank_example(lambdarank_dir, seed=0)


def test_lambdarank_example(lambdarank: PreparedDataset, lambdarank_dir: Path) -> None:
    ds = lambdarank
    assert ds.tasks == ("relevance",)
    assert ds.features.num_sparse == 0 and ds.features.dense == tuple(f"f{j}" for j in range(300))
    assert len(ds.train) + len(ds.valid) == 3005 and len(ds.test) == 768
    assert ds.train.num_groups == 161 and ds.valid.num_groups == 40 and ds.test.num_groups == 50
    assert not set(ds.train.groups.tolist()) & set(ds.valid.groups.tolist())
    assert all(isinstance(s, GroupedSplit) for s in (ds.train, ds.valid, ds.test))
    assert ds.train.sparse.shape == (len(ds.train), 0)
    mean = ds.train.dense.mean(0)
    assert float(mean.abs().max()) < 1e-4  # standardized with the training part's statistics
    batch = next(ds.train.batches(256, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch.dense.shape[1] == 300 and set(batch.labels) == {"relevance"}
    assert str(lambdarank_dir) in ds.description and "real data" in ds.description
    other = load_lambdarank_example(lambdarank_dir, seed=1, standardize=False)
    assert set(other.valid.groups.tolist()) != set(ds.valid.groups.tolist())
    assert float(other.train.dense.min()) >= 0.0  # raw features lie in [0, 1]
    with pytest.raises(DataError, match="tasks: unknown task 'click'; choose from"):
        load_lambdarank_example(lambdarank_dir, tasks=["click"])
    with pytest.raises(DataError, match=r"valid_fraction must be a number in \[0, 1\)"):
        load_lambdarank_example(lambdarank_dir, valid_fraction=1.0)
    with pytest.raises(DataError, match="directory not found"):
        load_lambdarank_example(lambdarank_dir / "nope")


def test_the_dataset_names_its_pairwise_objective(lambdarank_dir: Path) -> None:
    ds = load_lambdarank_example(lambdarank_dir, max_pairs_per_group=7, ndcg_k=3)
    assert ds.metadata["objective"] == PairwiseSpec(max_pairs_per_group=7, k=3)
    with pytest.raises(DataError, match="ndcg_k must be a positive integer, got 0"):
        load_lambdarank_example(lambdarank_dir, ndcg_k=0)


def test_pairwise_loss_on_real_batches(lambdarank: PreparedDataset) -> None:
    batch = next(lambdarank.train.batches(512, shuffle=False))
    y, g = batch.labels["relevance"], batch.groups
    first, second = make_pairs(y, g)
    scores = torch.zeros(len(batch), requires_grad=True)
    loss = pairwise_logistic_loss(scores, y, g, pairs=(first, second))
    assert loss.item() == pytest.approx(np.log(2.0))
    torch.testing.assert_close(loss, pairwise_logistic_loss(scores, y, g))
