"""Census-Income (KDD) on the real UCI test file (99,762 rows)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nomoretuning.data import (
    CENSUS_COLUMNS,
    CENSUS_DENSE,
    PreparedDataset,
    TensorSplit,
    census_schema,
    load_census_income,
)
from nomoretuning.errors import DataError


def _splits(ds: PreparedDataset) -> list[TensorSplit]:
    return [ds.train, ds.valid, ds.test]  # type: ignore[list-item]


def test_rows_tasks_and_positive_rates(census: PreparedDataset) -> None:
    splits = _splits(census)
    assert sum(len(s) for s in splits) == 99_762
    assert [len(s) for s in splits] == [79_810, 9_976, 9_976]
    assert census.tasks == ("income", "marital")
    income = torch.cat([s.labels["income"] for s in splits]).mean().item()
    marital = torch.cat([s.labels["marital"] for s in splits]).mean().item()
    assert income == pytest.approx(6_186 / 99_762, abs=1e-6)  # 6.2 %
    assert marital == pytest.approx(43_143 / 99_762, abs=1e-6)  # 43 %
    assert "census-income.test.gz" in census.description


def test_features_exclude_labels_and_the_survey_weight(census: PreparedDataset) -> None:
    sparse = [f.name for f in census.features.sparse]
    assert census.features.dense == CENSUS_DENSE
    for column in ("income_50k", "marital_stat", "instance_weight"):
        assert column not in sparse and column not in census.features.dense
    expected = [
        c
        for c in CENSUS_COLUMNS
        if c not in CENSUS_DENSE and c not in ("income_50k", "marital_stat", "instance_weight")
    ]
    assert sparse == expected and len(sparse) == 32
    assert "education" in sparse  # only the selected tasks' columns are removed
    for split in _splits(census):
        assert split.sparse.shape[1] == 32 and split.dense.shape[1] == 7
        assert split.sparse.dtype == torch.int64 and split.dense.dtype == torch.float32
        assert split.groups is None
        vocab = torch.tensor([f.vocab_size for f in census.features.sparse])
        assert bool((split.sparse >= 0).all()) and bool((split.sparse < vocab).all())


def test_encoders_are_fitted_on_the_training_split(census: PreparedDataset) -> None:
    train = census.train
    assert isinstance(train, TensorSplit)
    # Dense columns are standardized with train statistics.
    assert torch.allclose(train.dense.mean(0), torch.zeros(7), atol=1e-4)
    assert torch.allclose(train.dense.std(0, unbiased=False), torch.ones(7), atol=1e-4)
    # Index 1 is the most frequent training token; every vocab row is used in train.
    for j, field in enumerate(census.features.sparse):
        counts = torch.bincount(train.sparse[:, j], minlength=field.vocab_size)
        assert int(counts[0]) == 0 and bool((counts[1:] > 0).all()), field.name
        assert bool((counts[1:-1] >= counts[2:]).all()), field.name
    encoder = census.metadata["encoder"]
    assert encoder.categorical["education"].vocabulary[0] == "High school graduate"


def test_seeded_split_is_reproducible(census_sample_path: Path) -> None:
    a = load_census_income(census_sample_path, tasks=["marital"], seed=3)
    b = load_census_income(census_sample_path, tasks=["marital"], seed=3)
    c = load_census_income(census_sample_path, tasks=["marital"], seed=4)
    ia, ib, ic = (d.metadata["indices"] for d in (a, b, c))
    assert all(np.array_equal(ia[s], ib[s]) for s in ("train", "valid", "test"))
    assert not np.array_equal(ia["test"], ic["test"])
    assert set(ia["train"]).isdisjoint(ia["valid"]) and set(ia["valid"]).isdisjoint(ia["test"])
    assert torch.equal(a.test.sparse, b.test.sparse)  # type: ignore[attr-defined]


def test_education_task_and_its_column(census_sample_path: Path) -> None:
    ds = load_census_income(census_sample_path, tasks=["education", "marital"])
    names = [f.name for f in ds.features.sparse]
    assert "education" not in names and "marital_stat" not in names
    assert "income_50k" in names  # income is not a task here, so it may be a feature
    raw = pd.read_csv(census_sample_path, header=None, skipinitialspace=True, keep_default_na=False)
    expected = (
        raw.iloc[:, raw.shape[1] - 42 + 4]  # the sample has a leading row id
        .isin(
            [
                "Bachelors degree(BA AB BS)",
                "Masters degree(MA MS MEng MEd MSW MBA)",
                "Prof school degree (MD DDS DVM LLB JD)",
                "Doctorate degree(PhD EdD)",
            ]
        )
        .to_numpy()
    )
    got = np.zeros(len(raw))
    for split in ("train", "valid", "test"):
        got[ds.metadata["indices"][split]] = getattr(ds, split).labels["education"].numpy()
    assert np.array_equal(got, expected.astype(float))


def test_official_train_and_test_files(tmp_path: Path, census_sample_path: Path) -> None:
    lines = census_sample_path.read_bytes().splitlines(keepends=True)
    train = tmp_path / "census-income.data.gz"
    test = tmp_path / "census-income.test"
    train.write_bytes(gzip.compress(b"".join(lines[:150])))
    test.write_bytes(b"".join(lines[150:]))
    ds = load_census_income(train, test_path=test, tasks=["marital"], seed=1)
    assert [len(ds.train), len(ds.valid), len(ds.test)] == [133, 17, 50]  # type: ignore[arg-type]
    assert ds.metadata["indices"]["test"].tolist() == list(range(150, 200))


def test_lookup_in_the_cache_directory(
    tmp_path: Path, census_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    small = flat / "census-income.test.gz"
    # A small file with the real name, to keep the test fast.
    with gzip.open(census_path) as fh:
        head = [next(fh) for _ in range(300)]
    small.write_bytes(gzip.compress(b"".join(head)))
    monkeypatch.setenv("NOMORETUNING_CACHE", str(flat))
    assert len(load_census_income(tasks=["marital"]).test) == 30  # type: ignore[arg-type]
    nested = tmp_path / "nested" / "census-income-kdd"
    nested.mkdir(parents=True)
    shutil.copy(small, nested / "census-income.test.gz")
    ds = load_census_income(tasks=["marital"], cache=tmp_path / "nested")
    assert "nested" in ds.description
    with pytest.raises(
        DataError,
        match=r"no census-income\.test\.gz found; pass path= \(data\.path\), set NOMORETUNING",
    ):
        load_census_income(cache=tmp_path / "empty")


def test_census_schema_rejects_unknown_tasks() -> None:
    assert census_schema(["income"]).labels == ("income",)
    with pytest.raises(
        DataError, match=r"unknown task 'age'; choose from \['income', 'marital', 'education'\]"
    ):
        census_schema(["age"])


def test_wrong_column_count_and_unknown_income_value(
    tmp_path: Path, census_sample_path: Path
) -> None:
    lines = census_sample_path.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(line.split(",", 2)[2] for line in lines) + "\n")
    with pytest.raises(DataError, match=r"short\.csv: expected 42 comma-separated columns"):
        load_census_income(short)
    odd = tmp_path / "odd.csv"
    odd.write_text("\n".join([*lines[:5], lines[5].rsplit(",", 1)[0] + ", maybe", *lines[6:]]))
    with pytest.raises(DataError, match=r"column 'income_50k' has value 'maybe' at data row 6"):
        load_census_income(odd)
    # Without the income task the odd value is just another category.
    assert load_census_income(odd, tasks=["marital"]).tasks == ("marital",)
