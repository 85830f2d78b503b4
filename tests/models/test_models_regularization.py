"""Embedding L2: embedding_l2 * (1/B) * sum_b sum_j ||e_bj||^2 over the last forward's lookups."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from models_helpers import batch, small_model

from nomoretuning.models import MODEL_NAMES, FeatureConfig, SparseField


def _expected(sparse: torch.Tensor, l2: float, tables: list[Any]) -> torch.Tensor:
    total = sum(table.weight[sparse[:, j]].pow(2).sum() for j, table in enumerate(tables))
    return l2 * total / sparse.shape[0]


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n != "single_task"])
def test_formula(name: str) -> None:
    model = small_model(name, embedding_l2=0.01, embedding_init_std=0.5)
    sparse, dense = batch(6)
    model(sparse, dense)
    expected = _expected(sparse, 0.01, list(model.embedding.tables))
    torch.testing.assert_close(model.regularization(), expected)


def test_single_task_sums_every_tasks_embeddings() -> None:
    model = small_model("single_task", ("a", "b", "c"), embedding_l2=0.1, embedding_init_std=0.5)
    sparse, dense = batch(5)
    model(sparse, dense)
    expected = sum(_expected(sparse, 0.1, list(net.embedding.tables)) for net in model.networks)
    torch.testing.assert_close(model.regularization(), expected)


def test_hand_computed_value_and_gradient() -> None:
    features = FeatureConfig(sparse=(SparseField("u", 4),))
    model = small_model("shared_bottom", features=features, embedding_l2=0.5, embedding_dim=2)
    table = model.embedding.tables[0]
    with torch.no_grad():
        table.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]))
    sparse = torch.tensor([[1], [1], [2]])  # row 1 twice: counted twice
    model(sparse, torch.zeros(3, 0))
    reg = model.regularization()
    assert float(reg.detach()) == pytest.approx(0.5 * (2 + 2 + 4) / 3)
    reg.backward()
    expected = torch.zeros(4, 2)
    expected[1] = 2 * 0.5 / 3 * 2 * torch.tensor([1.0, 1.0])  # d/de of lambda/B * 2 * ||e||^2
    expected[2] = 2 * 0.5 / 3 * torch.tensor([2.0, 0.0])
    torch.testing.assert_close(table.weight.grad, expected)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_zero_when_off_before_forward_and_without_sparse_fields(name: str) -> None:
    off = small_model(name, embedding_l2=0.0)
    off(*batch(4))
    assert float(off.regularization()) == 0.0
    on = small_model(name, embedding_l2=1.0)
    assert float(on.regularization()) == 0.0  # before any forward
    dense_only = FeatureConfig(dense=("x",))
    model = small_model(name, features=dense_only, embedding_l2=1.0)
    model(*batch(4, dense_only))
    assert float(model.regularization()) == 0.0


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_uses_the_last_forward_only(name: str) -> None:
    model = small_model(name, embedding_l2=1.0, embedding_init_std=0.5)
    model(*batch(8, seed=0))
    first = model.regularization()
    sparse, dense = batch(3, seed=5)
    model(sparse, dense)
    second = model.regularization()
    assert float(first.detach()) != float(second.detach())
    assert second.requires_grad


def test_default_embedding_l2_is_stem_value() -> None:
    assert small_model("mmoe").embedding_l2 == 1e-6
