"""read_table: CSV, TSV, gzip and Parquet by path; every failure is a one-line DataError."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from nomoretuning.data import read_table
from nomoretuning.data.readers import detect_format
from nomoretuning.errors import DataError

FRAME = pd.DataFrame({"uid": ["007", "42"], "price": [1.5, 2.0], "click": [1, 0]})


def test_reads_csv_tsv_gzip_and_parquet_alike(tmp_path: Path) -> None:
    FRAME.to_csv(tmp_path / "a.csv", index=False)
    FRAME.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    FRAME.to_csv(tmp_path / "a.csv.gz", index=False, compression="gzip")
    FRAME.to_parquet(tmp_path / "a.parquet", index=False)
    for name in ("a.csv", "a.tsv", "a.csv.gz", "a.parquet"):
        got = read_table(tmp_path / name, dtype={"uid": str})
        assert got["uid"].tolist() == ["007", "42"], name  # ids kept verbatim
        assert got["click"].tolist() == [1, 0], name
        assert got["price"].tolist() == [1.5, 2.0], name


def test_reads_only_the_requested_columns(tmp_path: Path) -> None:
    FRAME.to_csv(tmp_path / "a.csv", index=False)
    FRAME.to_parquet(tmp_path / "a.parquet", index=False)
    for name in ("a.csv", "a.parquet"):
        got = read_table(tmp_path / name, columns=["click", "uid"])
        assert list(got.columns) == ["click", "uid"]


def test_headerless_text_with_names_and_explicit_format(tmp_path: Path) -> None:
    path = tmp_path / "log.data"
    path.write_text("1\tx\n0\ty\n")
    got = read_table(path, format="csv", sep="\t", header=False, names=["click", "item"])
    assert got.to_dict("list") == {"click": [1, 0], "item": ["x", "y"]}


def test_format_detection() -> None:
    assert detect_format("x.CSV") == ("csv", ",")
    assert detect_format("x.tsv.gz") == ("csv", "\t")
    assert detect_format("x.txt") == ("csv", "\t")
    assert detect_format("x.pq") == ("parquet", None)
    with pytest.raises(DataError, match=r"x\.xlsx: unreadable format .*name the file \.csv"):
        detect_format("x.xlsx")


def test_a_folder_where_one_file_is_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder; this reads one file"):
        read_table(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("header.csv", b"uid,click\n", "no data rows"),
        ("blank.csv.gz", gzip.compress(b"", mtime=0), "file is empty"),
        ("fake.csv.gz", b"uid,click\nu1,1\n", "unreadable as csv"),
        ("fake.parquet", b"not parquet at all", "unreadable as parquet"),
        ("ragged.csv", b"uid,click\nu1,1\nu2,0,7,8\n", "unreadable as csv"),
        ("table.xlsx", b"PK\x03\x04", "unreadable format"),
    ],
)
def test_bad_files_raise_one_line_data_errors(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_table(path)
    text = str(info.value)
    assert "\n" not in text
    assert str(path) in text


def test_missing_file_and_missing_column(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found; check the path"):
        read_table(tmp_path / "nope.csv")
    FRAME.to_csv(tmp_path / "a.csv", index=False)
    FRAME.to_parquet(tmp_path / "a.parquet", index=False)
    for name in ("a.csv", "a.parquet"):
        with pytest.raises(DataError, match=r"column 'like' is missing \(columns found: 'uid'"):
            read_table(tmp_path / name, columns=["uid", "like"])
