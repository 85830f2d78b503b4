"""TikTok (ICME 2019 Short Video Understanding, track 2 format), preprocessed as STEM does.

Raw format: tab separated, no header, 12 columns (`TIKTOK_COLUMNS`). STEM (Su et al. 2024,
``data/TiktokLarge/preprocess.py`` + FuxiCTR) uses 8 categorical fields, read as text, with a
vocabulary fitted on the training split (min count 10), and a random 81/9/10 split made by
scikit-learn's ``train_test_split(test_size=0.1, random_state=42)`` applied twice; this module
reproduces that split exactly with numpy (`nomoretuning.data.splits.stem_split`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.checks import task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.lean import load_in_memory
from nomoretuning.data.pieces import TableFile, table_files
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import stem_split
from nomoretuning.data.streaming import RowSplit, StreamOptions, load_stream
from nomoretuning.data.table import hash_bucket_count, stream_options
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TIKTOK_COLUMNS",
    "TIKTOK_READ_OPTIONS",
    "TIKTOK_SPARSE",
    "TIKTOK_TASKS",
    "load_tiktok",
    "tiktok_file",
    "tiktok_frame",
]

TIKTOK_COLUMNS: tuple[str, ...] = (
    "uid", "user_city", "item_id", "author_id", "item_city", "channel", "finish", "like",
    "music_id", "device", "time", "duration_time",
)  # fmt: skip
"""The 12 raw columns, in file order."""

TIKTOK_SPARSE: tuple[str, ...] = (
    "uid", "item_id", "author_id", "item_city", "channel", "music_id", "device", "duration_time",
)  # fmt: skip
"""STEM's 8 categorical fields (``user_city`` and ``time`` unused; ``duration_time`` is a token)."""

TIKTOK_TASKS: tuple[str, ...] = ("finish", "like")

TIKTOK_READ_OPTIONS: Mapping[str, Any] = {
    "format": "csv",
    "sep": "\t",
    "header": False,
    "dtype": str,
}
"""How the raw log is read (`read_table` / `read_table_chunks` keyword arguments)."""


def tiktok_frame(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Raw rows (12 unnamed columns) with the column names of `TIKTOK_COLUMNS`.

    Raises:
        DataError: another column count.
    """
    if raw.shape[1] != len(TIKTOK_COLUMNS):
        raise DataError(
            f"{source}: expected {len(TIKTOK_COLUMNS)} tab-separated columns (ICME 2019 track 2 "
            f"format: {', '.join(TIKTOK_COLUMNS)}), found {raw.shape[1]}; pass the raw file"
        )
    return raw.set_axis(list(TIKTOK_COLUMNS), axis=1)


def load_tiktok(
    path: str | os.PathLike[str],
    *,
    tasks: Sequence[str] = ("finish", "like"),
    min_count: int = 10,
    seed: int = 42,
    test_size: float = 0.1,
    stem_gauc_groups: bool = False,
    allow_single_class: bool = False,
    streaming: bool | StreamOptions | Mapping[str, Any] = False,
    hash_buckets: int | bool | Mapping[str, int] | None = None,
    split_key: str | None = None,
) -> PreparedDataset:
    """The TikTok ICME 2019 log (e.g. ``final_track2_train.txt``) as a `PreparedDataset`.

    Schema: 8 sparse fields in the order of `TIKTOK_SPARSE` (uid, item_id, author_id, item_city,
    channel, music_id, device, duration_time), all read as text; no dense columns; labels
    ``finish`` and ``like``; group id ``uid``. Every field's vocabulary is fitted on the training
    split with `min_count` (index 0 = OOV and missing, then tokens by descending count, then
    token; STEM puts OOV last instead, the embedding rows are the same up to order).

    The file is read with pyarrow in blocks (`nomoretuning.data.lean`): the peak memory above
    the imports stays under twice the raw file's size.

    Split: ``train_test_split(test_size, random_state=seed)`` gives (train+valid, test), then the
    same call on train+valid gives (train, valid): 81 / 9 / 10 % with the defaults, identical
    to STEM's rows.

    Args:
        path: the raw tab-separated file (``.gz`` works too), or a folder of such files (read
            in name order as one log).
        tasks: any of ``finish``, ``like``, in priority order.
        min_count: minimum training count of a kept token (STEM: 10).
        seed: ``random_state`` of both splits (STEM: 42).
        test_size: fraction of each of the two splits (STEM: 0.1).
        stem_gauc_groups: groups are the *encoded* uid, so users with fewer than `min_count`
            training rows share the OOV group, as in STEM's gAUC. By default (False) every raw
            uid is its own group.
        allow_single_class: warn instead of raising when a task has one class in a split (the
            200-row sample has no ``like`` positive in its validation and test splits).
        streaming: read the log in pieces every epoch instead of into memory (True, or
            `StreamOptions`, or their fields): for logs larger than memory. The split is then a
            seeded hash of each row's position (81 / 9 / 10 % with the defaults), not STEM's.
        hash_buckets: hash the ids into this many rows (True: 2**20; a mapping: those columns
            into their own numbers of rows) instead of vocabularies.
        split_key: streamed only: hash this id column's value instead of the row's position
            (one of `TIKTOK_SPARSE`; ``"uid"`` keeps every row of a user in one split).

    Example:
        >>> ds = load_tiktok("../shared/data/tiktok-icme2019-sample/final_track2_sample.txt",
        ...                  allow_single_class=True)  # doctest: +SKIP
        >>> [len(s) for s in (ds.train, ds.valid, ds.test)]  # doctest: +SKIP
        [162, 18, 20]
    """
    src = str(path)
    chosen = task_names(tasks, src, available=TIKTOK_TASKS, error=DataError)
    schema = Schema(sparse=TIKTOK_SPARSE, labels=chosen, group="uid")
    files = [tiktok_file(f) for f in table_files(path)]
    buckets = hash_bucket_count(hash_buckets)
    options = stream_options(streaming)
    input_format = InputFormat("tiktok", {"groups_from_encoded": stem_gauc_groups})
    if split_key is not None and options is None:
        raise DataError(
            f"split_key={split_key!r} splits a streamed log (in memory the split is STEM's); "
            "set streaming=True, or leave split_key unset"
        )
    if split_key is not None and split_key not in TIKTOK_SPARSE:
        raise DataError(
            f"split_key={split_key!r} is not an id column of the TikTok log; pick one of: "
            f"{', '.join(TIKTOK_SPARSE)}"
        )
    if options is not None:
        train_share = (1 - test_size) ** 2
        fractions = (train_share, 1 - test_size - train_share, test_size)
        return load_stream(
            files,
            schema,
            RowSplit("position" if split_key is None else "key", fractions, seed, split_key),
            name="tiktok",
            description=(
                f"TikTok ICME 2019 from {src}; tasks {', '.join(chosen)}; min_count {min_count}"
            ),
            min_count=min_count,
            hash_buckets=buckets,
            seed=seed,
            options=options,
            allow_single_class=allow_single_class,
            groups_from_encoded=stem_gauc_groups,
            input_format=input_format,
        )

    def split(sizes: Sequence[int]) -> dict[str, np.ndarray]:
        train, valid, test = stem_split(int(sum(sizes)), seed=seed, test_size=test_size)
        return {"train": train, "valid": valid, "test": test}

    return load_in_memory(
        files,
        schema,
        split,
        name="tiktok",
        description=(
            f"TikTok ICME 2019 from {src}; tasks {', '.join(chosen)}; STEM split "
            f"(train_test_split test_size={test_size} random_state={seed}, twice); "
            f"min_count {min_count}"
        ),
        min_count=min_count,
        hash_buckets=buckets,
        seed=seed,
        allow_single_class=allow_single_class,
        groups_from_encoded=stem_gauc_groups,
        input_format=input_format,
    )


def tiktok_file(path: Path) -> TableFile:
    """A raw log file, its column count checked (12 tab-separated columns, no header)."""
    import pyarrow.csv as pacsv

    file = TableFile.open(path, sep="\t", header=False, names=TIKTOK_COLUMNS)
    try:
        with pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=1 << 16),
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(include_columns=[]),
        ) as reader:
            fields = len(reader.schema.names)
    except (OSError, ValueError) as error:
        raise DataError(
            f"{path}: unreadable as tab-separated text ({' '.join(str(error).split())[:160]}); "
            "pass the raw ICME 2019 track 2 file"
        ) from None
    if fields != len(TIKTOK_COLUMNS):
        raise DataError(
            f"{path}: expected {len(TIKTOK_COLUMNS)} tab-separated columns (ICME 2019 track 2 "
            f"format: {', '.join(TIKTOK_COLUMNS)}), found {fields}; pass the raw file"
        )
    return file
