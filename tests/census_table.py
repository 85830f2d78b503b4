"""The real Census-Income rows written as a table with a header (a helper of the tests that read
tables by path: the lean in-memory path, streaming, the trainer on streamed data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nomoretuning.data.census import CENSUS_COLUMNS, CENSUS_DENSE, CENSUS_READ_OPTIONS
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema

CENSUS_FILE = (
    Path(__file__).resolve().parents[2] / "shared/data/census-income-kdd/census-income.test.gz"
)

CENSUS_SPARSE = [
    c
    for c in CENSUS_COLUMNS
    if c not in CENSUS_DENSE and c not in ("instance_weight", "income_50k", "marital_stat")
]
"""The sparse columns of the table (every raw column but the dense ones, the survey weight and
the two columns the labels come from)."""


def census_schema() -> Schema:
    """Income and married labels, the 30-odd sparse and 7 dense columns, ``race`` as group."""
    return Schema(
        sparse=CENSUS_SPARSE, dense=CENSUS_DENSE, labels=["income", "married"], group="race"
    )


def table_columns(schema: Schema) -> dict[str, object]:
    """``load_table`` keyword arguments of ``schema``."""
    return {
        "sparse": list(schema.sparse),
        "dense": list(schema.dense),
        "labels": list(schema.labels),
        "group": schema.group,
    }


def write_census_table(path: Path, rows: int | None = None) -> Path:
    """The real Census-Income file (its first ``rows`` rows) as a CSV table at ``path``, with
    0/1 labels ``income`` (50k+) and ``married``, and some missing dense values and ids."""
    if not CENSUS_FILE.is_file():
        pytest.skip(f"real data file {CENSUS_FILE} not available")
    raw = read_table(CENSUS_FILE, **CENSUS_READ_OPTIONS).iloc[:, : len(CENSUS_COLUMNS)]
    raw.columns = list(CENSUS_COLUMNS)
    if rows is not None:
        raw = raw.iloc[:rows].copy()
    raw["income"] = (raw["income_50k"] == "50000+.").astype(int)
    raw["married"] = raw["marital_stat"].str.startswith("Married").astype(int)
    raw.loc[::97, "age"] = np.nan  # missing dense values
    raw.loc[::89, "race"] = ""  # missing ids
    raw.drop(columns=["income_50k", "marital_stat"]).to_csv(path, index=False)
    return path
