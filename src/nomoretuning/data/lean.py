"""The in-memory dataset of one or more files, read with pyarrow in pieces: no per-value Python.

`load_in_memory` gives the `PreparedDataset` that `nomoretuning.data.prepare.build_dataset` gives
on the same rows (the same vocabularies, scaler, labels, groups and row order of every split) at a
fraction of the memory: the file is read three times in blocks of about 1 MiB and only the encoded
result is kept.

1. Rows are counted (the line breaks of a text file, the metadata of a Parquet file), and the
   split function places each row in its split.
2. First pass: labels (checked as `check_frame` checks them) and dense values are kept; the
   training rows' tokens are counted (`TokenCounts`). The class check runs, the encoders are
   fitted (the scaler on the training rows' values, exactly as `DenseScaler.fit`).
3. Second pass: every sparse column is encoded (``int32``) straight into its split's array, and
   the group column is factorized in order of first appearance (`encode_groups`).

Sparse ids are ``int32`` tensors (the models take both), half the memory of ``int64``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.data.columnar import TokenCounts, label_values, numeric_values
from nomoretuning.data.encoders import CategoricalEncoder, DenseTransform, FeatureEncoder
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.pieces import ColumnTypes, TableFile, release_memory
from nomoretuning.data.prepare import SPLITS, assemble_dataset, check_split_classes
from nomoretuning.data.schema import Schema
from nomoretuning.data.tokens import arrow_tokens, group_hashes
from nomoretuning.errors import DataError

__all__ = ["SplitRows", "count_rows", "load_in_memory"]

SplitRows = Callable[[Sequence[int]], Mapping[str, np.ndarray]]
"""Given the row count of each file, the rows (positions over all files, in file order) of
``train``, ``valid`` and ``test``, each in the order its split keeps them."""


def count_rows(file: TableFile) -> int:
    """The data rows of ``file``: its line breaks (or Parquet metadata); a compressed text file
    is read once."""
    if file.format == "parquet" or not file.compressed:
        return sum(piece.rows for piece in file.pieces(1 << 62))
    types = ColumnTypes((file.names[0],), ())
    return sum(table.num_rows for _, table in file.chunks(types))


def load_in_memory(
    files: Sequence[TableFile],
    schema: Schema,
    split_rows: SplitRows,
    *,
    name: str,
    description: str,
    min_count: int | Mapping[str, int] = 1,
    dense_transform: DenseTransform = "none",
    hash_buckets: int | Mapping[str, int] | None = None,
    seed: int = 0,
    allow_single_class: bool = False,
    groups_from_encoded: bool = False,
    input_format: InputFormat | None = None,
    metadata: Mapping[str, object] | None = None,
) -> PreparedDataset:
    """The dataset of ``files`` (the same columns each), in memory; see the module docstring.

    Args:
        files: the files, in order (rows are numbered across them).
        schema: the column roles; its labels are the tasks, in order.
        split_rows: the rows of each split (see `SplitRows`).
        name, description: stored on the dataset.
        min_count: minimum training count of a kept token (all sparse columns or per column).
        dense_transform: applied to dense columns before standardizing.
        hash_buckets: hash sparse ids into this many rows instead of fitting vocabularies (a
            mapping: those columns into their own numbers of rows).
        seed: the seed of those hashes.
        allow_single_class: warn instead of raising when a task has one class in a split.
        groups_from_encoded: group ids are the encoded group column (see `build_dataset`).
        input_format, metadata: stored in ``metadata`` as `build_dataset` stores them.
    """
    for file in files:
        file.check_columns(schema.columns)
    sizes = [count_rows(file) for file in files]
    index = {s: np.asarray(rows, dtype=np.int64) for s, rows in split_rows(sizes).items()}
    place = _Placement(int(sum(sizes)), index)

    encoder = FeatureEncoder(schema, min_count, dense_transform, hash_buckets, seed)
    counts = {
        c: TokenCounts()
        for c, e in encoder.categorical.items()
        if isinstance(e, CategoricalEncoder)
    }
    labels = {s: {t: np.empty(len(index[s]), np.float32) for t in schema.labels} for s in SPLITS}
    dense = {s: np.empty((len(index[s]), len(schema.dense)), np.float64) for s in SPLITS}
    first_pass = ColumnTypes(tuple(counts), (*schema.labels, *schema.dense))
    for start, first, table, source in _tables(files, sizes, first_pass):
        where, at = place.rows(start, table.num_rows)
        for task in schema.labels:
            values = label_values(table.column(task), task, source, first)
            for code, split in enumerate(SPLITS):
                labels[split][task][at[code]] = values[where[code]]
        for j, column in enumerate(schema.dense):
            values = numeric_values(table.column(column), column, source, first)
            for code, split in enumerate(SPLITS):
                dense[split][at[code], j] = values[where[code]]
        for column, counter in counts.items():
            counter.add(arrow_tokens(table.column(column)).take(where[0]))
    source = " + ".join(str(f.path) for f in files)
    counts_by_split = {
        s: (len(index[s]), {t: int(y.sum()) for t, y in labels[s].items()}) for s in SPLITS
    }
    check_split_classes(counts_by_split, source, allow_single_class)
    kept = {c: n.kept(encoder.categorical[c].min_count) for c, n in counts.items()}
    del counts
    encoder.scaler.fit(dense["train"]).check(schema.dense, source)
    split_dense = {s: encoder.scaler.transform(dense.pop(s)) for s in SPLITS}

    sparse = {s: np.zeros((len(index[s]), len(schema.sparse)), np.int32) for s in SPLITS}
    by_text = schema.group is not None and not groups_from_encoded
    groups = {s: np.zeros(len(index[s]), np.int64) for s in SPLITS} if by_text else None
    group_codes = _GroupCodes()
    group_column = [schema.group] if by_text and schema.group is not None else []
    text = tuple(dict.fromkeys((*schema.sparse, *group_column)))
    for start, _, table, _ in _tables(files, sizes, ColumnTypes(text, ())):
        where, at = place.rows(start, table.num_rows)
        for j, column in enumerate(schema.sparse):
            tokens = arrow_tokens(table.column(column))
            if column in kept:
                codes = kept[column].codes(tokens)
                kept[column].collect(tokens, codes)
            else:
                codes = encoder.categorical[column].transform_arrow(tokens)
            for code, split in enumerate(SPLITS):
                sparse[split][at[code], j] = codes[where[code]]
        if groups is not None and schema.group is not None:
            values = group_codes.codes(table.column(schema.group))
            for code, split in enumerate(SPLITS):
                groups[split][at[code]] = values[where[code]]
    del place, group_codes
    for j, column in enumerate(schema.sparse):
        if column in kept:  # positions among the kept hashes -> vocabulary indices
            encoder.categorical[column], remap = kept[column].encoder()
            for split in SPLITS:
                sparse[split][:, j] = remap[sparse[split][:, j]]
    if schema.group is not None and groups_from_encoded:
        groups = _encoded_groups(schema, sparse)
    release_memory()

    result = {
        s: TensorSplit.from_numpy(
            sparse[s], split_dense[s], labels[s], None if groups is None else groups[s]
        )
        for s in SPLITS
    }
    return assemble_dataset(
        result,
        encoder,
        name=name,
        description=description,
        indices=index,
        input_format=input_format,
        metadata=metadata,
    )


def _tables(files: Sequence[TableFile], sizes: Sequence[int], types: ColumnTypes) -> Any:
    """``(global first row, first row in its file, table, source)`` of every block of every
    file, in order."""
    offset = 0
    for file, size in zip(files, sizes, strict=True):
        seen = 0
        for count, (start, table) in enumerate(file.chunks(types)):
            if start + table.num_rows > size:
                break
            yield offset + start, start, table, str(file.path)
            seen = start + table.num_rows
            if count % 64 == 63:
                release_memory()
        if seen != size:
            raise DataError(
                f"{file.path}: read {seen} data rows, but {size} lines were counted (a blank line, "
                "a quoted value spanning lines, or the file changed while it was read); fix the "
                "file or convert it to Parquet"
            )
        offset += size
    release_memory()


class _Placement:
    """Where each row of the files goes: its split and its position in that split."""

    def __init__(self, total: int, index: Mapping[str, np.ndarray]) -> None:
        self.split = np.full(total, -1, dtype=np.int8)
        self.position = np.zeros(total, dtype=np.int32 if total < 2**31 else np.int64)
        for code, split in enumerate(SPLITS):
            self.split[index[split]] = code
            self.position[index[split]] = np.arange(len(index[split]))

    def rows(self, start: int, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """For rows ``start .. start + count - 1``: the offsets (in the piece) of each split's
        rows, and their positions in the split."""
        split = self.split[start : start + count]
        position = self.position[start : start + count]
        where = [np.flatnonzero(split == code) for code in range(len(SPLITS))]
        return where, [position[w] for w in where]


class _GroupCodes:
    """Group ids in order of first appearance over the pieces, as `encode_groups` numbers them
    (missing values share one id): an id per distinct 64-bit hash of the token."""

    def __init__(self) -> None:
        self._hashes = np.zeros(0, dtype=np.uint64)  # sorted
        self._ids = np.zeros(0, dtype=np.int64)  # the id of each hash

    def codes(self, column: Any) -> np.ndarray:
        hashed = group_hashes(column)
        unique, first, inverse = np.unique(hashed, return_index=True, return_inverse=True)
        at = np.searchsorted(self._hashes, unique)
        known = at < len(self._hashes)
        known[known] = self._hashes[at[known]] == unique[known]
        ids = np.empty(len(unique), dtype=np.int64)
        ids[known] = self._ids[at[known]]
        new = np.flatnonzero(~known)
        new = new[np.argsort(first[new], kind="stable")]  # numbered in order of appearance
        ids[new] = len(self._ids) + np.arange(len(new))
        merged = np.concatenate([self._hashes, unique[new]])
        order = np.argsort(merged, kind="stable")
        self._hashes = merged[order]
        self._ids = np.concatenate([self._ids, ids[new]])[order]
        return ids[inverse.reshape(-1)]


def _encoded_groups(schema: Schema, sparse: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each split's group ids from the encoded group column."""
    assert schema.group is not None
    if schema.group not in schema.sparse:
        raise DataError(
            f"groups_from_encoded needs the group column {schema.group!r} among the sparse "
            "columns; add it there or set groups_from_encoded=False"
        )
    j = schema.sparse.index(schema.group)
    return {s: sparse[s][:, j].astype(np.int64) for s in SPLITS}
