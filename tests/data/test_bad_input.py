"""Every kind of bad input raises DataError with one line naming the file, the column and a fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nomoretuning.data import (
    QK_VIDEO_COLUMNS,
    load_census_income,
    load_lambdarank_example,
    load_qk_video,
    load_svmlight_ranking,
    load_table,
    load_tiktok,
)
from nomoretuning.errors import DataError

COLUMNS = {"sparse": ["user"], "dense": ["price"], "labels": ["click", "buy"], "group": "user"}


def _good(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 20, n)],
            "price": rng.normal(size=n).round(3),
            "click": np.arange(n) % 2,
            "buy": (np.arange(n) // 2) % 2,
        }
    )


def _expect(load: Callable[[], object], path: Path, column: str | None, pattern: str) -> str:
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(DataError, match=pattern) as info:
        load()
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    if column is not None:
        assert repr(column) in message, message
    assert "; " in message, message  # "<what is wrong>; <how to fix it>"
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written
    return message


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "log.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_missing_column(tmp_path: Path) -> None:
    path = _csv(tmp_path, _good().drop(columns=["buy"]))
    _expect(lambda: load_table(path, **COLUMNS), path, "buy", "is missing .*fix the column name")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2, -1, 0.5, "yes"])
def test_label_that_is_not_binary(tmp_path: Path, value: object) -> None:
    frame = _good().astype({"click": object})
    frame.loc[41, "click"] = value
    path = _csv(tmp_path, frame)
    message = _expect(
        lambda: load_table(path, **COLUMNS),  # type: ignore[arg-type]
        path,
        "click",
        "has value .* at data row 42; labels must be 0 or 1",
    )
    assert str(value) in message


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_nan_or_empty_label(tmp_path: Path, fmt: str) -> None:
    frame = _good().astype({"buy": float})
    frame.loc[[7, 9], "buy"] = np.nan
    path = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)  # NaN is written as an empty field
    else:
        frame.to_parquet(path, index=False)
    _expect(
        lambda: load_table(path, **COLUMNS),  # type: ignore[arg-type]
        path,
        "buy",
        r"is empty or NaN at data row 8 \(2 such rows\); fill it with 0 or 1 or drop those rows",
    )


def test_empty_label_text_in_a_tab_separated_log(tmp_path: Path, tiktok_path: Path) -> None:
    lines = tiktok_path.read_text().splitlines()
    fields = lines[3].split("\t")
    fields[7] = ""
    lines[3] = "\t".join(fields)
    path = tmp_path / "track2.txt"
    path.write_text("\n".join(lines) + "\n")
    _expect(lambda: load_tiktok(path), path, "like", "empty or NaN at data row 4")


@pytest.mark.parametrize("content", [b"", b"user,price,click,buy\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(content)
    _expect(lambda: load_table(path, **COLUMNS), path, None, "file is empty|no data rows")  # type: ignore[arg-type]
    if content:  # a header-only file is "no data rows" only for formats with a header
        qk = tmp_path / "QK-video.csv"
        qk.write_text(",".join(QK_VIDEO_COLUMNS) + "\n")
        _expect(lambda: load_qk_video(qk), qk, None, "no data rows")
        return
    for loader in (load_tiktok, load_qk_video, load_census_income):
        _expect(lambda loader=loader: loader(path), path, None, "file is empty|no data rows")  # type: ignore[misc]


def test_unknown_task_name(tmp_path: Path, tiktok_path: Path) -> None:
    path = _csv(tmp_path, _good(), "QK-video.csv")
    _expect(lambda: load_qk_video(path, tasks=["click", "watch"]), path, "watch", "unknown task")
    _expect(
        lambda: load_tiktok(tiktok_path, tasks=["finish", "share"]),
        tiktok_path,
        "share",
        r"unknown task 'share'; choose from \['finish', 'like'\]",
    )
    census = tmp_path / "census-income.test.gz"
    _expect(
        lambda: load_census_income(census, tasks=["income", "wealth"]),
        census,
        "wealth",
        r"unknown task 'wealth'; choose from \['income', 'marital', 'education'\]",
    )


def test_a_split_that_leaves_a_task_with_one_class(tmp_path: Path) -> None:
    frame = _good()
    frame["buy"] = 0
    frame.loc[3, "buy"] = 1  # a single positive: some split has none
    path = _csv(tmp_path, frame)
    _expect(
        lambda: load_table(path, **COLUMNS),  # type: ignore[arg-type]
        path,
        "buy",
        r"is all 0 in the (train|valid|test) split .*pass allow_single_class=True \(data.options",
    )
    with pytest.warns(UserWarning, match="'buy' is all 0") as caught:
        load_table(path, allow_single_class=True, **COLUMNS)  # type: ignore[arg-type]
    for warning in caught:  # says what happens, not to pass the flag that was passed
        assert str(warning.message).endswith("kept (allow_single_class=True): its AUC there is NaN")


def test_a_split_left_empty(tmp_path: Path) -> None:
    path = _csv(tmp_path, _good(4))
    _expect(lambda: load_table(path, **COLUMNS), path, None, "the valid split is empty")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "content"),
    [("log.xlsx", b"PK\x03\x04binary"), ("log.parquet", b"not parquet"), ("log.csv.gz", b"plain")],
)
def test_unreadable_format(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _expect(lambda: load_table(path, **COLUMNS), path, None, "unreadable")  # type: ignore[arg-type]


def test_non_numeric_dense_column(tmp_path: Path) -> None:
    frame = _good().astype({"price": object})
    frame.loc[5, "price"] = "n/a?"
    path = _csv(tmp_path, frame)
    _expect(
        lambda: load_table(path, **COLUMNS),  # type: ignore[arg-type]
        path,
        "price",
        "non-numeric value 'n/a\\?' at data row 6; clean the value or list the column as sparse",
    )


def test_bad_split_fractions_and_missing_census_file(tmp_path: Path) -> None:
    path = _csv(tmp_path, _good())
    with pytest.raises(DataError, match="split fractions"):
        load_table(path, split=(0.5, 0.5, 0.5), **COLUMNS)  # type: ignore[arg-type]
    missing = tmp_path / "census-income.test.gz"
    _expect(lambda: load_census_income(missing), missing, None, "file not found; check the path")


@pytest.mark.parametrize(
    ("load", "name"),
    [
        (lambda: load_census_income(""), "path"),
        (lambda: load_qk_video(""), "path"),
        (lambda: load_lambdarank_example(""), "directory"),
        (lambda: load_svmlight_ranking(""), "path"),
        (lambda: load_tiktok(""), "path"),
    ],
)
def test_an_empty_path_names_no_file(load: object, name: str) -> None:
    """`Path("")` is the working folder: reading it would be a surprise, not an error."""
    with pytest.raises(DataError, match=f"{name}='' names no file"):
        load()  # type: ignore[operator]
