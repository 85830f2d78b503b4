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
    with pytest.raises(DataError, match=r"either path= .* or train=, valid= and test="):
        load_table(path, train=path, **COLUMNS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no file given for valid, test"):
        load_table(train=path, **COLUMNS)  # type: ignore[arg-type]
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
