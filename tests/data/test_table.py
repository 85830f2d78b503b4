"""The generic table builder, from one CSV (split with a seed) or three Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nomoretuning.data import TensorSplit, load_table
from nomoretuning.errors import DataError
from nomoretuning.models.features import SparseField


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 30, n)],
            "item": rng.integers(0, 50, n),
            "price": rng.normal(10.0, 3.0, n),
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 70, n)),
            "click": rng.integers(0, 2, n),
            "buy": rng.integers(0, 2, n),
            "ignored": "x",
        }
    )


COLUMNS = {
    "sparse": ["user", "item"],
    "dense": ["price", "age"],
    "labels": ["click", "buy"],
    "group": "user",
}


def test_one_csv_split_with_a_seed(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    frame = _frame(1000, 0)
    frame.to_csv(path, index=False)
    ds = load_table(path, seed=7, **COLUMNS)  # type: ignore[arg-type]
    assert ds.tasks == ("click", "buy")
    assert [f.name for f in ds.features.sparse] == ["user", "item"]
    assert ds.features.dense == ("price", "age")
    assert [len(ds.train), len(ds.valid), len(ds.test)] == [800, 100, 100]  # type: ignore[arg-type]
    train = ds.train
    assert isinstance(train, TensorSplit)
    rows = frame.iloc[ds.metadata["indices"]["train"]]
    # Dense: standardized with train mean/std, missing age -> 0.
    price = (rows["price"] - rows["price"].mean()) / rows["price"].std(ddof=0)
    np.testing.assert_allclose(train.dense[:, 0].numpy(), price.to_numpy(), atol=1e-5)
    assert bool((train.dense[rows["age"].isna().to_numpy().copy(), 1] == 0).all())
    # Labels follow the rows.
    assert train.labels["buy"].tolist() == rows["buy"].astype(float).tolist()
    assert ds.features.sparse[0] == SparseField("user", rows["user"].nunique() + 1)
    assert ds.description.startswith(f"table {path} split (0.8, 0.1, 0.1) with seed 7")


def test_three_parquet_files_with_train_only_vocabulary(tmp_path: Path) -> None:
    paths = {}
    for i, split in enumerate(("train", "valid", "test")):
        frame = _frame(300, i)
        if split == "test":
            frame.loc[:9, "user"] = "never-seen-in-train"
        paths[split] = tmp_path / f"{split}.parquet"
        frame.to_parquet(paths[split], index=False)
    ds = load_table(train=paths["train"], valid=paths["valid"], test=paths["test"], **COLUMNS)  # type: ignore[arg-type]
    test = ds.test
    assert isinstance(test, TensorSplit) and test.groups is not None
    assert [len(ds.train), len(ds.valid), len(test)] == [300, 300, 300]  # type: ignore[arg-type]
    assert bool((test.sparse[:10, 0] == 0).all())  # unseen user -> OOV
    assert len(torch.unique(test.groups[:10])) == 1  # ... but still its own group
    assert ds.metadata["encoder"].categorical["item"].vocabulary[0].isdigit()


def test_csv_and_parquet_give_the_same_tensors(tmp_path: Path) -> None:
    frame = _frame(500, 1)
    frame.to_csv(tmp_path / "t.csv.gz", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    a = load_table(tmp_path / "t.csv.gz", **COLUMNS)  # type: ignore[arg-type]
    b = load_table(tmp_path / "t.parquet", **COLUMNS)  # type: ignore[arg-type]
    assert a.features == b.features
    for split in ("train", "valid", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        assert torch.equal(sa.sparse, sb.sparse)
        assert torch.allclose(sa.dense, sb.dense)


def test_argument_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _frame(100, 0).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"either path= .* or train= and test= \(and valid="):
        load_table(path, train=path, **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no file given for test"):
        load_table(train=path, valid=path, **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no file given for train"):
        load_table(test=path, **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="leaves no validation rows to draw from the train"):
        load_table(train=path, test=path, split=(0.9, 0.0, 0.1), **COLUMNS)  # type: ignore[arg-type]
    for blank in ("path", "train", "valid", "test"):  # '' would read the working folder
        files = {"train": path, "test": path, blank: ""}
        with pytest.raises(DataError, match=f"{blank}='' names no file"):
            load_table(**files, **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="split_key='user' has nothing to split"):
        load_table(train=path, valid=path, test=path, split_key="user", **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="label column 'click' is also a feature"):
        load_table(path, sparse=["user", "click"], labels=["click"])
    with pytest.raises(DataError, match="schema: sparse must be a list of column names, got 5"):
        load_table(path, sparse=5, labels=["click"])  # type: ignore[arg-type]


@pytest.mark.parametrize("streaming", [False, True])
def test_a_dense_column_too_large_to_standardize_is_refused(
    tmp_path: Path, streaming: bool
) -> None:
    frame = _frame(100, 0)
    frame["price"] = frame["price"] * 1e306  # finite, but its squares overflow float64
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="dense column 'price' is too large to standardize"):
        load_table(path, streaming=streaming, **COLUMNS)  # type: ignore[arg-type]


def _train_and_test(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _frame(900, 0).to_csv(train, index=False)
    _frame(200, 1).to_csv(test, index=False)
    return train, test


def test_train_and_test_files_draw_the_validation_rows_from_train(tmp_path: Path) -> None:
    train, test = _train_and_test(tmp_path)
    ds = load_table(train=train, test=test, seed=3, **COLUMNS)  # type: ignore[arg-type]
    assert [len(ds.train), len(ds.valid), len(ds.test)] == [800, 100, 200]  # type: ignore[arg-type]
    indices = ds.metadata["indices"]
    assert set(indices["train"]) | set(indices["valid"]) == set(range(900))
    assert not set(indices["train"]) & set(indices["valid"])
    assert indices["test"].tolist() == list(range(900, 1100))
    # The vocabulary is fitted on the train file's training rows only.
    rows = _frame(900, 0).iloc[indices["train"]]
    assert ds.features.sparse[0] == SparseField("user", rows["user"].nunique() + 1)
    assert "valid: 11.1% of it, seed 3" in ds.description
    again = load_table(train=train, test=test, seed=3, **COLUMNS)  # type: ignore[arg-type]
    assert torch.equal(again.valid.sparse, ds.valid.sparse)  # type: ignore[union-attr]
    other = load_table(train=train, test=test, seed=4, **COLUMNS)  # type: ignore[arg-type]
    assert not np.array_equal(other.metadata["indices"]["valid"], indices["valid"])
    shares = load_table(train=train, test=test, split=(0.5, 0.5, 0.0), **COLUMNS)  # type: ignore[arg-type]
    assert [len(shares.train), len(shares.valid)] == [450, 450]  # type: ignore[arg-type]


@pytest.mark.parametrize("split_key", [None, "user"])
def test_streamed_train_and_test_files_hash_the_validation_rows_out_of_train(
    tmp_path: Path, split_key: str | None
) -> None:
    train, test = _train_and_test(tmp_path)
    ds = load_table(
        train=train,
        test=test,
        streaming={"piece_rows": 128},
        split_key=split_key,
        seed=1,
        **COLUMNS,  # type: ignore[arg-type]
    )
    assert len(ds.train) + len(ds.valid) == 900 and len(ds.test) == 200  # type: ignore[arg-type]
    assert 40 < len(ds.valid) < 250  # type: ignore[arg-type]
    assert "test by file, train and valid" in ds.description
    assert f"table train {train}, test {test};" in ds.description
    test_labels = torch.cat([b.labels["click"] for b in ds.test.batches(64, shuffle=False)])  # type: ignore[union-attr]
    assert test_labels.tolist() == _frame(200, 1)["click"].astype(float).tolist()
    valid_users = torch.cat([b.sparse[:, 0] for b in ds.valid.batches(64, shuffle=False)])  # type: ignore[union-attr]
    # By key, no validation user is in the training rows, so none is in the vocabulary.
    assert bool((valid_users == 0).all()) == (split_key is not None)


def test_the_real_aliexpress_sample_as_it_ships(aliexpress_dir: Path) -> None:
    """AliExpress ships train and test files only; validation comes from train."""
    header = (aliexpress_dir / "aliexpress_train_sample.csv").read_text().splitlines()[0]
    columns = header.split(",")
    ds = load_table(
        train=aliexpress_dir / "aliexpress_train_sample.csv",
        test=aliexpress_dir / "aliexpress_test_sample.csv",
        sparse=[c for c in columns if c.startswith("categorical_")],
        dense=[c for c in columns if c.startswith("numerical_")],
        labels=["click", "conversion"],
        group="search_id",
        allow_single_class=True,  # 2 conversions in the sample's 100 training rows
    )
    assert [len(ds.train), len(ds.valid), len(ds.test)] == [89, 11, 20]  # type: ignore[arg-type]
    assert ds.tasks == ("click", "conversion")
