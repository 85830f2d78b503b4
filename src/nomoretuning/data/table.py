"""Your own table: a CSV/TSV/Parquet file (or three) described by column lists."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nomoretuning.checks import optional_path
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import DEFAULT_HASH_BUCKETS
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.lean import load_in_memory
from nomoretuning.data.pieces import TableFile, table_files
from nomoretuning.data.prepare import SPLITS
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.data.streaming import RowSplit, StreamOptions, load_stream
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "hash_bucket_count",
    "load_table",
    "read_split_files",
    "stream_options",
    "table_paths",
    "valid_from_train",
]

PathLike = str | os.PathLike[str]


def read_split_files(
    path: PathLike | None,
    files: tuple[PathLike | None, PathLike | None, PathLike | None],
    *,
    read: Callable[[PathLike], pd.DataFrame],
    split: Callable[[pd.DataFrame], tuple[Sequence[np.ndarray], str]],
    hold_out: Callable[[pd.DataFrame], tuple[Sequence[np.ndarray], str]] | None = None,
    caller: str,
) -> tuple[pd.DataFrame, dict[str, np.ndarray], str, str]:
    """One file to split, or the files of train, valid and test: ``(frame, rows of each split,
    source for messages, how the splits were made)``.

    ``read`` reads and checks one file; ``split`` gives one file's (train, valid, test) rows and
    their description; ``hold_out`` (optional) the same for the train file when there is no
    valid file (its test rows empty); without it a valid file is required. Raises `DataError`
    when both or neither are given.
    """
    import pandas as pd

    _check_given(path, files, caller, valid_optional=hold_out is not None)
    if path is not None:
        frame = read(path)
        rows, how = split(frame)
        parts = dict(zip(SPLITS, (np.asarray(r) for r in rows), strict=True))
        return frame, parts, str(path), f"{path} {how}"
    train, valid, test = files
    if valid is None:
        assert train is not None and test is not None and hold_out is not None
        fit, tested = read(train), read(test)
        (fit_rows, held_rows, _), how = hold_out(fit)
        first = len(fit)
        parts = {
            "train": np.asarray(fit_rows, dtype=np.int64),
            "valid": np.asarray(held_rows, dtype=np.int64),
            "test": np.arange(first, first + len(tested), dtype=np.int64),
        }
        return (
            pd.concat([fit, tested], ignore_index=True),
            parts,
            f"{train} + {test}",
            f"train {train} {how}, test {test}",
        )
    frames = [read(f) for f in files if f is not None]
    sizes = np.cumsum([0] + [len(f) for f in frames])
    parts = {
        name: np.arange(sizes[i], sizes[i + 1], dtype=np.int64) for i, name in enumerate(SPLITS)
    }
    return (
        pd.concat(frames, ignore_index=True),
        parts,
        " + ".join(str(f) for f in files),
        f"train {train}, valid {valid}, test {test}",
    )


def load_table(
    path: PathLike | None = None,
    *,
    train: PathLike | None = None,
    valid: PathLike | None = None,
    test: PathLike | None = None,
    sparse: Sequence[str] = (),
    dense: Sequence[str] = (),
    labels: Sequence[str] = (),
    group: str | None = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_count: int | Mapping[str, int] = 1,
    sep: str | None = None,
    name: str = "table",
    allow_single_class: bool = False,
    streaming: bool | StreamOptions | Mapping[str, Any] = False,
    hash_buckets: int | bool | Mapping[str, int] | None = None,
    split_key: str | None = None,
) -> PreparedDataset:
    """A multi-task table of your own as a `PreparedDataset`.

    Schema: exactly the columns you list. `sparse` columns are read as text and encoded with a
    vocabulary fitted on the training split (index 0 = OOV and missing, then tokens by
    descending count); `dense` columns are standardized with the training mean/std (missing ->
    0); `labels` are 0/1 task columns, in priority order; `group` (optional) holds user or query
    ids for gAUC. Other columns are ignored.

    Give either `path` (one file, or a folder of files read in name order as one table, split by
    `split` and `seed`) or `train`, `valid` and `test` (a file or folder each, the same columns).
    Without `valid`, the validation rows are drawn from the `train` files with `seed`, in the
    proportion of `split`'s first two fractions (1 row in 9 with the default split).
    Formats: ``.csv``, ``.tsv``, ``.txt`` (optionally ``.gz``) with a header row, or
    ``.parquet``. Files are read with pyarrow in blocks (`nomoretuning.data.lean`); the peak
    memory above the imports stays under twice the raw size.

    Data larger than memory: ``streaming=True`` (or `StreamOptions`, or their fields as a
    mapping) reads the files in pieces every epoch (`nomoretuning.data.streaming`). A path is then
    split by a seeded hash of each row's position, or of the `split_key` column (every row of a
    user in one split), with the `split` fractions; three paths split by file. `hash_buckets`
    (an int, True for 2**20, or a mapping of columns to ints) hashes the sparse ids into that
    many rows instead of fitting vocabularies, in memory or streamed.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> rows = "".join(f"u{i % 7},{i % 3},{i / 10},{i % 2},{i // 2 % 2}\\n" for i in range(60))
        >>> _ = p.write_text("user,item,price,click,like\\n" + rows)
        >>> ds = load_table(p, sparse=["user", "item"], dense=["price"],
        ...                 labels=["click", "like"], group="user")
        >>> ds.tasks, [len(s) for s in (ds.train, ds.valid, ds.test)]
        (('click', 'like'), [48, 6, 6])
    """
    schema = Schema(sparse=sparse, dense=dense, labels=labels, group=group)
    given = table_paths(path, (train, valid, test), caller="load_table")
    buckets = hash_bucket_count(hash_buckets)
    options = stream_options(streaming)
    hashed: Literal["position", "key"] = "position" if split_key is None else "key"
    if isinstance(given, dict) and "valid" in given and split_key is not None:
        raise DataError(
            f"split_key={split_key!r} has nothing to split: train, valid and test come from "
            "their files; leave split_key unset, or leave valid unset to draw it from train"
        )
    if split_key is not None and options is None:
        raise DataError(
            f"split_key={split_key!r} splits a streamed table; set streaming=True, or leave "
            "split_key unset"
        )
    # the files in split order (a path's, or train's, valid's if given, then test's)
    paths = given if isinstance(given, list) else [f for part in given for f in given[part]]
    files = [TableFile.open(f, sep=sep) for f in paths]
    if options is not None:
        if isinstance(given, list):
            rows = RowSplit(hashed, check_fractions(split), seed, split_key)
        else:
            file_splits = tuple(SPLITS.index(part) for part in given for _ in given[part])
            if "valid" in given:
                rows = RowSplit("file", file_splits=file_splits)
            else:
                rows = RowSplit(
                    hashed, valid_from_train(split), seed, split_key, file_splits=file_splits
                )
        return load_stream(
            files,
            schema,
            rows,
            name=name,
            description=f"table {_sources(path, given)}; tasks {', '.join(schema.labels)}",
            min_count=min_count,
            hash_buckets=buckets,
            seed=seed,
            options=options,
            allow_single_class=allow_single_class,
            input_format=InputFormat("table", {"sep": sep}),
        )
    if isinstance(given, list):
        fractions = check_fractions(split)

        def split_rows(sizes: Sequence[int]) -> dict[str, np.ndarray]:
            rows = split_indices(int(sum(sizes)), fractions, seed)
            return dict(zip(SPLITS, rows, strict=True))

        how = f"{path} split {fractions} with seed {seed}"
    elif "valid" not in given:
        shares = valid_from_train(split)
        train_files = len(given["train"])

        def split_rows(sizes: Sequence[int]) -> dict[str, np.ndarray]:
            n_train = int(sum(sizes[:train_files]))
            fit, held, _ = split_indices(n_train, shares, seed)
            test_rows = np.arange(n_train, int(sum(sizes)), dtype=np.int64)
            return {"train": fit, "valid": held, "test": test_rows}

        how = f"train {train} (valid: {shares[1]:.1%} of it, seed {seed}), test {test}"
    else:
        counts = [len(given[part]) for part in SPLITS]

        def split_rows(sizes: Sequence[int]) -> dict[str, np.ndarray]:
            edges = np.cumsum([0, *counts])
            rows = np.cumsum([0, *(sum(sizes[edges[i] : edges[i + 1]]) for i in range(3))])
            return {
                p: np.arange(rows[i], rows[i + 1], dtype=np.int64) for i, p in enumerate(SPLITS)
            }

        how = f"train {train}, valid {valid}, test {test}"
    return load_in_memory(
        files,
        schema,
        split_rows,
        name=name,
        description=f"table {how}; tasks {', '.join(schema.labels)}",
        min_count=min_count,
        hash_buckets=buckets,
        seed=seed,
        allow_single_class=allow_single_class,
        input_format=InputFormat("table", {"sep": sep}),
    )


def valid_from_train(split: Sequence[float]) -> tuple[float, float, float]:
    """The (train, valid, 0) shares of a train file that gives the validation rows: `split`'s
    first two fractions, rescaled to sum to 1.

    Example:
        >>> [round(share, 4) for share in valid_from_train((0.8, 0.1, 0.1))]
        [0.8889, 0.1111, 0.0]
    """
    fit, held, _ = check_fractions(split)
    if held == 0:
        raise DataError(
            f"split={tuple(split)!r} leaves no validation rows to draw from the train files; "
            "give a validation file (valid=), or a split with a validation fraction > 0"
        )
    return fit / (fit + held), held / (fit + held), 0.0


def hash_bucket_count(
    value: int | bool | Mapping[str, int] | None,
) -> int | dict[str, int] | None:
    """``hash_buckets`` checked: None or False (vocabularies), True (2**20 for every sparse
    column), a number of buckets, or a mapping of columns to numbers of buckets.

    Example:
        >>> hash_bucket_count(True), hash_bucket_count(None), hash_bucket_count({"item": 1000})
        (1048576, None, {'item': 1000})
    """
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_HASH_BUCKETS
    if isinstance(value, Mapping):
        return {str(column): _buckets(n, f"hash_buckets.{column}") for column, n in value.items()}
    return _buckets(value, "hash_buckets")


def _buckets(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{where}={value!r} is invalid; pass a positive number of buckets, true "
            f"({DEFAULT_HASH_BUCKETS}), a mapping of columns to numbers, or null (vocabularies)"
        )
    return value


def stream_options(value: bool | StreamOptions | Mapping[str, Any]) -> StreamOptions | None:
    """``streaming`` as `StreamOptions` (None: in memory).

    Example:
        >>> stream_options(False), stream_options({"shuffle_rows": 4096}).shuffle_rows
        (None, 4096)
    """
    if value is False:
        return None
    if value is True:
        return StreamOptions()
    if isinstance(value, StreamOptions):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(StreamOptions)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise DataError(
                f"streaming option {unknown[0]!r} is unknown; use {', '.join(sorted(known))}"
            )
        return StreamOptions(**value)
    raise DataError(
        f"streaming={value!r} is invalid; pass true, false or a mapping of "
        "piece_rows, shuffle_rows, lanes"
    )


def table_paths(
    path: PathLike | None,
    files: tuple[PathLike | None, PathLike | None, PathLike | None],
    *,
    caller: str,
) -> list[Path] | dict[str, list[Path]]:
    """The files of one path to split (a list), or of each split given (``train``, ``valid``
    when given, ``test``); each path may be a file or a folder of files.

    Raises:
        DataError: both or neither are given, train or test is missing, or a path has no table
            files.
    """
    _check_given(path, files, caller, valid_optional=True)
    if path is not None:
        return table_files(path)
    return {n: table_files(f) for n, f in zip(SPLITS, files, strict=True) if f is not None}


def _check_given(
    path: PathLike | None,
    files: tuple[PathLike | None, PathLike | None, PathLike | None],
    caller: str,
    *,
    valid_optional: bool,
) -> None:
    """Refuses a blank path (it would read the working folder), a path and split files both,
    and split files without train or test (or valid, unless it may be drawn from train)."""
    for name, value in zip(("path", *SPLITS), (path, *files), strict=True):
        optional_path(value, name, error=DataError)
    splits = (
        "train= and test= (and valid=, or it is drawn from train)"
        if valid_optional
        else ("train=, valid= and test=")
    )
    if path is not None:
        if any(f is not None for f in files):
            raise DataError(f"{path}: pass either path= (one file to split) or {splits}, not both")
        return
    missing = [
        n
        for n, f in zip(SPLITS, files, strict=True)
        if f is None and not (valid_optional and n == "valid")
    ]
    if missing:
        raise DataError(
            f"{caller}: no file given for {', '.join(missing)}; pass path= (one file to "
            f"split) or {splits}"
        )


def _sources(path: PathLike | None, given: list[Path] | dict[str, list[Path]]) -> str:
    """Where a table comes from, for its description: the path, or each split's."""
    if path is not None or not isinstance(given, dict):
        return str(path)
    return ", ".join(f"{part} {', '.join(str(f) for f in files)}" for part, files in given.items())
