"""The registry of names: each dataset's builder and ranking flag, method labels."""

from __future__ import annotations

import pytest
from cli_helpers import LAMBDARANK

from nomoretuning import data
from nomoretuning.cli.registry import (
    COMPARED_METHODS,
    COMPOSITIONS,
    DATASETS,
    DEFAULT_COMPARED_METHODS,
    INNER_METHODS,
    METHODS,
    RANKING_DATASETS,
    method_label,
    parse_method_label,
)
from nomoretuning.training.objectives import PairwiseObjective, objective_for


def test_every_builder_is_a_data_layer_function() -> None:
    for name, entry in DATASETS.items():
        assert entry.builder.__module__.startswith("nomoretuning.data"), name
        assert getattr(data, entry.builder.__name__) is entry.builder, name
    assert RANKING_DATASETS == ("lambdarank", "letor", "ranking_table", "search_logs")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("synthetic", {"n_rows": 400}),
        ("search_logs", {"n_queries": 20, "items_per_query": 5}),
        pytest.param(
            "lambdarank",
            {"directory": LAMBDARANK},
            marks=pytest.mark.skipif(
                not (LAMBDARANK / "rank.train").is_file(), reason="no ../shared/data"
            ),
        ),
    ],
)
def test_ranking_datasets_are_the_ones_with_a_pairwise_objective(
    name: str, options: dict[str, object]
) -> None:
    dataset = DATASETS[name].builder(seed=0, **options)
    objective = objective_for(dataset, dataset.tasks)
    assert isinstance(objective, PairwiseObjective) == DATASETS[name].ranking


def test_every_compared_method_label_names_a_method() -> None:
    for label in COMPARED_METHODS:
        name, inner = parse_method_label(label)
        assert name in METHODS
        assert inner is None or inner in INNER_METHODS
        assert method_label(name, inner) == label
    assert set(DEFAULT_COMPARED_METHODS) <= set(COMPARED_METHODS)
    assert all(label.endswith("+nmt") for label in COMPOSITIONS)
