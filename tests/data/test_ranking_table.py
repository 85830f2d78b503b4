"""`load_ranking_table`: a CSV/Parquet table with a query column, features and several label
columns as prioritized pairwise tasks; pair rules, gains, splits by query, every bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nomoretuning.data import make_search_logs
from nomoretuning.data.ranking import load_ranking_table
from nomoretuning.errors import DataError
from nomoretuning.training.objectives import PairwiseObjective, objective_for


def search_log_table(path: Path, queries: int = 120, seed: int = 0) -> pd.DataFrame:
    """The search-log simulator's sessions as a table (SYNTHETIC): query, 8 features, log_price,
    pay, amount, relevance; one row per item."""
    logs = make_search_logs(queries, 8, seed=seed)
    parts = []
    for split in (logs.train, logs.valid, logs.test):
        frame = pd.DataFrame(split.dense.numpy(), columns=list(logs.features.dense))
        frame.insert(0, "query", [f"q{g}" for g in split.groups.tolist()])
        for task in logs.tasks:
            frame[task] = split.labels[task].numpy()
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True)
    if path.suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False)
    return table


FEATURES = [*(f"x{j}" for j in range(8)), "log_price"]


def test_a_table_becomes_prioritized_pairwise_tasks(tmp_path: Path) -> None:
    table = search_log_table(tmp_path / "sessions.csv")
    ds = load_ranking_table(
        tmp_path / "sessions.csv",
        labels=["pay", "amount", "relevance"],
        dense=FEATURES,
        pair_masks={"amount": "positive"},
        gains={"amount": "linear"},
        feature_transform="log1p",
    )
    assert ds.tasks == ("pay", "amount", "relevance")
    assert ds.train.num_groups + ds.valid.num_groups + ds.test.num_groups == 120
    assert len(ds.train) + len(ds.valid) + len(ds.test) == len(table)
    objective = objective_for(ds, ds.tasks)
    assert isinstance(objective, PairwiseObjective)
    assert objective.pair_masks == {"amount": "positive"}
    assert objective.gains["amount"] == "linear" and objective.gains["pay"] == "exponential"
    # whole queries per split, and labels carried as they are
    train_queries = set(ds.train.groups.tolist())
    assert not train_queries & set(ds.test.groups.tolist())
    assert sorted(np.unique(ds.train.labels["relevance"].numpy())) == [0.0, 1.0, 2.0, 3.0]


def test_three_files_and_parquet(tmp_path: Path) -> None:
    table = search_log_table(tmp_path / "all.parquet")
    queries = table["query"].unique()
    for name, part in zip(("train", "valid", "test"), np.array_split(queries, 3), strict=True):
        table[table["query"].isin(part)].to_parquet(tmp_path / f"{name}.parquet")
    ds = load_ranking_table(
        train=tmp_path / "train.parquet",
        valid=tmp_path / "valid.parquet",
        test=tmp_path / "test.parquet",
        labels=["pay", "relevance"],
        dense=FEATURES,
    )
    assert (ds.train.num_groups, ds.valid.num_groups, ds.test.num_groups) == (40, 40, 40)


def test_train_and_test_files_hold_out_whole_queries_of_train_for_validation(
    tmp_path: Path,
) -> None:
    table = search_log_table(tmp_path / "all.parquet")
    queries = table["query"].unique()
    table[table["query"].isin(queries[:90])].to_parquet(tmp_path / "train.parquet")
    table[table["query"].isin(queries[90:])].to_parquet(tmp_path / "test.parquet")
    options = {"labels": ["pay", "relevance"], "dense": FEATURES}
    ds = load_ranking_table(
        train=tmp_path / "train.parquet", test=tmp_path / "test.parquet", seed=5, **options
    )  # type: ignore[arg-type]
    assert (ds.train.num_groups, ds.valid.num_groups, ds.test.num_groups) == (80, 10, 30)
    assert not set(ds.train.groups.tolist()) & set(ds.valid.groups.tolist())
    assert "valid: 11.1% of its queries, seed 5" in ds.description
    indices = ds.metadata["indices"]
    assert sorted([*indices["train"], *indices["valid"]]) == list(
        range(len(indices["train"]) + len(indices["valid"]))
    )
    other = load_ranking_table(
        train=tmp_path / "train.parquet", test=tmp_path / "test.parquet", seed=6, **options
    )  # type: ignore[arg-type]
    assert not np.array_equal(other.metadata["indices"]["valid"], indices["valid"])


def test_bad_tables_get_one_line(tmp_path: Path) -> None:
    table = search_log_table(tmp_path / "ok.csv", queries=30)
    path = tmp_path / "bad.csv"
    options = {"labels": ["pay", "relevance"], "dense": FEATURES}

    def fails(frame: pd.DataFrame, *needles: str, **extra: object) -> None:
        frame.to_csv(path, index=False)
        with pytest.raises(DataError) as raised:
            load_ranking_table(path, **{**options, **extra})  # type: ignore[arg-type]
        message = str(raised.value)
        assert "\n" not in message
        for needle in needles:
            assert needle in message, message

    fails(table.drop(columns=["query"]), "column 'query' is missing")
    broken = table.astype({"relevance": object})
    broken.loc[7, "relevance"] = "good"
    fails(broken, "'relevance'", "'good'", "data row 8")
    empty = table.copy()
    empty.loc[3, "pay"] = np.nan
    fails(empty, "'pay' is empty at data row 4")
    negative = table.copy()
    negative.loc[5, "relevance"] = -1.0
    fails(negative, "'relevance' is -1 at data row 6", "must be >= 0")
    no_query = table.astype({"query": object})
    no_query.loc[5, "query"] = None
    fails(no_query, "query column 'query' is empty at data row 6")
    fails(table, "pair_masks names 'amount'", pair_masks={"amount": "positive"})
    fails(table, "gains['pay']", gains={"pay": "quadratic"})
    with pytest.raises(DataError, match="no file given for test"):
        load_ranking_table(train=tmp_path / "ok.csv", **options)  # type: ignore[arg-type]
    nothing = table.assign(pay=0.0)  # no purchase anywhere: nothing to rank by pay
    fails(nothing, "task 'pay' has no query with two different labels in the train split")
    one_amount = table.assign(amount=np.where(table["amount"] > 0, 5.0, 0.0))
    fails(
        one_amount,
        "task 'amount' has no query with two different positive labels",
        labels=["pay", "amount"],
        pair_masks={"amount": "positive"},
    )


def test_amounts_float32_cannot_tell_apart_warn() -> None:
    from nomoretuning.data.prepare import ranking_label

    merged = r"e\.g\. 16777216 and 16777217\), so they rank as ties .* round the column"
    with pytest.warns(UserWarning, match=merged):
        ranking_label(pd.Series([16777216.0, 16777217.0, 3.0]), "amount", "t.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking_label(pd.Series([0.0, 12.5, 99_999.99, 4.0]), "amount", "t.csv")
