"""make_search_logs: shapes, the amount encoding, the conflict knobs and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nomoretuning.data.ranking import PairwiseSpec, make_pairs, make_search_logs
from nomoretuning.errors import DataError


def test_search_logs_shapes_and_encoding() -> None:
    ds = make_search_logs(200, (5, 15), seed=3)
    assert ds.tasks == ("pay", "amount", "relevance")
    assert ds.features.dense[-1] == "log_price" and ds.features.num_sparse == 0
    total = len(ds.train) + len(ds.valid) + len(ds.test)
    assert 200 * 5 <= total <= 200 * 15
    assert ds.train.num_groups == 160 and ds.valid.num_groups == 20 and ds.test.num_groups == 20
    groups = [set(s.groups.tolist()) for s in (ds.train, ds.valid, ds.test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    y = ds.train.labels
    assert set(y["pay"].unique().tolist()) == {0.0, 1.0}
    assert set(y["relevance"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert torch.equal(y["amount"] > 0, y["pay"] == 1)
    first, second = make_pairs(y["amount"], ds.train.groups, mask=y["amount"] > 0)
    assert bool((y["pay"][first] == 1).all() and (y["pay"][second] == 1).all())
    assert "synthetic" in ds.description
    again = make_search_logs(200, (5, 15), seed=3)
    assert torch.equal(again.train.dense, ds.train.dense)
    only = make_search_logs(20, 4, seed=0, tasks=["relevance", "pay"])
    assert only.tasks == ("relevance", "pay") and set(only.train.labels) == {"relevance", "pay"}


def test_search_logs_conflict_knob() -> None:
    correlations = []
    for conflict in (0.0, 0.5, 1.0):
        ds = make_search_logs(1000, 20, seed=0, conflict=conflict)
        y = ds.train.labels
        correlations.append(float(np.corrcoef(y["pay"].numpy(), y["relevance"].numpy())[0, 1]))
        truth = ds.metadata["true_utility"]["train"]
        empirical = np.corrcoef(truth["pay"].numpy(), truth["relevance"].numpy())[0, 1]
        # documented corr(u_pay, z); z adds unit noise to u_rel, so corr(u_pay, u_rel) is larger
        documented = ds.metadata["utility_correlation"]["pay_relevance"]
        assert empirical == pytest.approx(documented * np.sqrt(5.0) / 2.0, abs=0.03)
    assert correlations[0] > 0.3 and abs(correlations[1]) < 0.05 and correlations[2] < -0.2


def test_search_logs_price_effect_conflict() -> None:
    def corr(price_effect: float) -> float:
        ds = make_search_logs(1000, 20, seed=0, price_effect=price_effect)
        y = ds.train.labels
        price = ds.train.dense[:, -1].numpy()
        return float(np.corrcoef(price, y["pay"].numpy())[0, 1])

    assert corr(0.0) == pytest.approx(0.0, abs=0.03)
    assert corr(2.0) < -0.2  # pricier items are bought less ...
    ds = make_search_logs(300, 20, seed=0)
    y = ds.train.labels
    bought = y["pay"] == 1
    price = ds.train.dense[bought, -1].numpy()
    assert np.corrcoef(price, np.log(y["amount"][bought].numpy()))[0, 1] > 0.8  # ... but pay more


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_queries": 0}, "n_queries must be a positive integer, got 0"),
        ({"items_per_query": 0}, "items_per_query must be a positive integer or a"),
        ({"items_per_query": (5, 2)}, r"items_per_query .* got \(5, 2\)"),
        ({"conflict": 1.5}, r"conflict must be a number in \[0, 1\], got 1.5"),
        ({"price_effect": -1.0}, "price_effect must be a finite number >= 0, got -1.0"),
        ({"pay_rate": 1.0}, r"pay_rate must be a number in \(0, 1\), got 1.0"),
        ({"signal": 0.0}, "signal must be a finite number > 0, got 0.0"),
        ({"n_features": 1}, "n_features must be an integer >= 2, got 1"),
        ({"split": (0.5, 0.5)}, r"split fractions \(0.5, 0.5\) are invalid"),
        ({"tasks": ["click"]}, "tasks: unknown task 'click'; choose from"),
        ({"tasks": []}, "tasks must name at least one task"),
        ({"max_pairs_per_group": 0}, "max_pairs_per_group must be a positive integer or null"),
        ({"ndcg_k": 0}, "ndcg_k must be a positive integer, got 0"),
    ],
)
def test_search_logs_bad_inputs(kwargs: dict, match: str) -> None:
    args = {"n_queries": 10, "items_per_query": 3, "seed": 0, **kwargs}
    with pytest.raises(DataError, match=match):
        make_search_logs(**args)


def test_search_logs_name_their_pairwise_objective() -> None:
    spec = make_search_logs(30, 5, seed=0, max_pairs_per_group=4, ndcg_k=5).metadata["objective"]
    assert spec == PairwiseSpec({"amount": "positive"}, {"amount": "linear"}, 4, 5)
    spec = make_search_logs(30, 5, seed=0, tasks=["pay", "relevance"]).metadata["objective"]
    assert spec.pair_masks == {}  # no amount task: no amount mask
