"""From a checked table and split indices to a `PreparedDataset` (shared by every builder).

1. `check_frame`: the schema's columns exist, labels are 0/1 (no NaN, no empty), dense columns are
   numeric. Row numbers in messages are 1-based data rows of the file.
2. `build_dataset`: every task has both classes in every split, the encoders are fitted on the
   training rows only, every split is encoded and turned into a `TensorSplit`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.data.encoders import FeatureEncoder, encode_groups, numeric_column
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.schema import Schema
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SPLITS",
    "assemble_dataset",
    "binary_label",
    "build_dataset",
    "check_frame",
    "check_split_classes",
    "class_check",
    "ranking_label",
    "shift_rows",
]

SPLITS = ("train", "valid", "test")


_ROW = re.compile(r"data row (\d+)")


def shift_rows(error: DataError, offset: int) -> DataError:
    """``error`` with its "data row N" counted from the top of the file, for an error raised on a
    piece of the file that starts ``offset`` rows in.

    Example:
        >>> str(shift_rows(DataError("t.csv: bad value at data row 3; fix it"), 100))
        't.csv: bad value at data row 103; fix it'
    """
    if offset == 0:
        return error
    return DataError(_ROW.sub(lambda m: f"data row {int(m.group(1)) + offset}", str(error)))


def binary_label(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A 0/1 label column as float32; NaN, empty or other values raise `DataError`.

    Accepts numbers (0, 1, 0.0, 1.0), booleans and their text forms ("0", "1", "1.0").

    Example:
        >>> import pandas as pd
        >>> binary_label(pd.Series(["1", "0", "1.0"]), "click", "t.csv").tolist()
        [1.0, 0.0, 1.0]
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(numeric)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raw = values.iloc[row]
        text = "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
        if pd.isna(raw) or not text.strip():
            raise DataError(
                f"{source}: label column {column!r} is empty or NaN at data row {row + 1} "
                f"({int(missing.sum())} such rows); fill it with 0 or 1 or drop those rows"
            )
        raise DataError(
            f"{source}: label column {column!r} has value {text!r} at data row {row + 1}; "
            "labels must be 0 or 1, binarize the column first"
        )
    bad = (numeric != 0.0) & (numeric != 1.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: label column {column!r} has value {str(values.iloc[row])!r} at data row "
            f"{row + 1}; labels must be 0 or 1, binarize the column first"
        )
    return numeric.astype(np.float32)


def ranking_label(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A ranking label column (finite numbers >= 0: grades, amounts) as float32; an empty,
    non-numeric or negative value raises `DataError` naming its row. Distinct values that
    float32 cannot tell apart (integers above 2**24, cents above about 131,072.00) would rank
    as ties: that warns, with the fix.

    Example:
        >>> import pandas as pd
        >>> ranking_label(pd.Series(["2", "0", "12.5"]), "amount", "t.csv").tolist()
        [2.0, 0.0, 12.5]
    """
    numeric = numeric_column(values, column, source)
    bad = ~np.isfinite(numeric)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: label column {column!r} is empty at data row {row + 1}; ranking labels "
            "must be numbers (fill them, or drop those rows)"
        )
    negative = numeric < 0
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise DataError(
            f"{source}: label column {column!r} is {numeric[row]:g} at data row {row + 1}; "
            "ranking labels must be >= 0 (grades, amounts: NDCG's gains need it); shift the "
            "column or clip it at 0"
        )
    labels = numeric.astype(np.float32)
    distinct = np.unique(numeric)
    merged = np.flatnonzero(distinct[1:].astype(np.float32) == distinct[:-1].astype(np.float32))
    if merged.size:
        a, b = distinct[merged[0]], distinct[merged[0] + 1]
        warnings.warn(
            f"{source}: label column {column!r} has values that 32-bit floats cannot tell apart "
            f"(e.g. {a:.10g} and {b:.10g}), so they rank as ties (float32 keeps about 7 "
            "significant digits); round the column to the digits that matter, or accept the "
            "ties",
            UserWarning,
            stacklevel=2,
        )
    return labels


def check_frame(frame: pd.DataFrame, schema: Schema, source: str) -> pd.DataFrame:
    """The schema's columns of `frame`, with labels as float32 0/1 and dense columns as float64.

    Raises `DataError` for a missing column, a bad label or a non-numeric dense value.
    """
    import pandas as pd

    schema.check_columns(frame.columns, source)
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows; point to a file with data rows")
    frame = frame.reset_index(drop=True)
    out: dict[str, Any] = {}
    for column in schema.columns:
        if column in schema.labels:
            out[column] = binary_label(frame[column], column, source)
        elif column in schema.dense:
            out[column] = numeric_column(frame[column], column, source)
        else:
            out[column] = frame[column]
    return pd.DataFrame(out, index=frame.index)


def class_check(
    labels: Mapping[str, np.ndarray],
    splits: Mapping[str, np.ndarray],
    source: str,
    allow_single_class: bool,
) -> None:
    """Every split has rows, and both classes of every task (``labels``: all rows; ``splits``:
    each split's rows); raises `DataError` (or warns with ``allow_single_class``)."""
    check_split_classes(
        {
            s: (len(splits[s]), {t: int(y[splits[s]].sum()) for t, y in labels.items()})
            for s in SPLITS
        },
        source,
        allow_single_class,
        stacklevel=5,
    )


def check_split_classes(
    counts: Mapping[str, tuple[int, Mapping[str, int]]],
    source: str,
    allow_single_class: bool,
    stacklevel: int = 4,
) -> None:
    """`class_check` on counts: ``counts[split] = (rows, {task: positives})``."""
    total = sum(rows for rows, _ in counts.values())
    for split in SPLITS:
        rows, positives_by_task = counts[split]
        if rows == 0:
            raise DataError(
                f"{source}: the {split} split is empty ({total} rows in all); use more rows or "
                "larger split fractions"
            )
        for task, positives in positives_by_task.items():
            if 0 < positives < rows:
                continue
            only = "0" if positives == 0 else "1"
            found = f"{source}: label column {task!r} is all {only} in the {split} split"
            found += f" ({rows} rows)"
            if not allow_single_class:
                raise DataError(
                    f"{found}; use more data, another seed or split, drop the task, or pass "
                    "allow_single_class=True (data.options.allow_single_class: true in a config)"
                )
            warnings.warn(
                f"{found}; kept (allow_single_class=True): its AUC there is NaN",
                UserWarning,
                stacklevel=stacklevel,
            )


def build_dataset(
    frame: pd.DataFrame,
    splits: Mapping[str, np.ndarray],
    schema: Schema,
    *,
    name: str,
    description: str,
    source: str,
    min_count: int | Mapping[str, int] = 1,
    allow_single_class: bool = False,
    groups_from_encoded: bool = False,
    metadata: Mapping[str, object] | None = None,
    input_format: InputFormat | None = None,
) -> PreparedDataset:
    """Encodes `frame` (already through `check_frame`) into train/valid/test `TensorSplit`s.

    Args:
        frame: the checked table (all rows of all splits).
        splits: row positions of ``"train"``, ``"valid"`` and ``"test"`` in `frame`.
        schema: column roles; its labels are the tasks, in order.
        name, description: stored on the `PreparedDataset` (description = provenance).
        source: the file(s), for error messages.
        min_count: minimum training count of a kept token (all sparse columns or per column).
        allow_single_class: warn instead of raising when a task has one class in a split.
        groups_from_encoded: group ids are the *encoded* group column (a sparse column), so
            rare ids share the OOV group as in STEM's gAUC; by default distinct raw ids stay
            distinct (codes of the raw values, shared by all splits).
        metadata: extra entries for ``PreparedDataset.metadata``.
        input_format: how the raw files were read (stored for scoring new files of a trained run).

    ``metadata`` holds ``encoder`` (the fitted `FeatureEncoder`, reusable on new rows),
    ``schema``, ``indices`` (row positions of each split in `frame`), ``rows``, and
    ``input_format`` when given.
    """
    for split in SPLITS:
        if split not in splits:
            raise ValueError(f"splits needs the keys {SPLITS}, got {tuple(splits)}")
    index = {s: np.asarray(splits[s], dtype=np.int64) for s in SPLITS}
    labels = {t: frame[t].to_numpy(dtype=np.float32) for t in schema.labels}
    class_check(labels, index, source, allow_single_class)

    encoder = FeatureEncoder(schema, min_count).fit(frame.iloc[index["train"]], source)
    sparse, dense = encoder.transform(frame, source)
    groups: np.ndarray | None = None
    if schema.group is not None:
        if groups_from_encoded:
            if schema.group not in schema.sparse:
                raise DataError(
                    f"{source}: groups_from_encoded needs the group column {schema.group!r} "
                    "among the sparse columns; add it there or set groups_from_encoded=False"
                )
            groups = sparse[:, schema.sparse.index(schema.group)].copy()
        else:
            groups = encode_groups(frame[schema.group])

    result = {
        s: TensorSplit.from_numpy(
            sparse[idx],
            dense[idx],
            {t: y[idx] for t, y in labels.items()},
            None if groups is None else groups[idx],
        )
        for s, idx in index.items()
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


def assemble_dataset(
    splits: Mapping[str, Any],
    encoder: FeatureEncoder,
    *,
    name: str,
    description: str,
    indices: Mapping[str, np.ndarray] | None = None,
    input_format: InputFormat | None = None,
    metadata: Mapping[str, object] | None = None,
) -> PreparedDataset:
    """The `PreparedDataset` of encoded ``splits`` (train, valid, test), with the metadata every
    builder records: ``encoder``, ``schema``, ``indices`` (when given), ``rows``,
    ``input_format`` (when given), then ``metadata``."""
    meta: dict[str, object] = {"encoder": encoder, "schema": encoder.schema}
    if indices is not None:
        meta["indices"] = indices
    meta["rows"] = {s: len(splits[s]) for s in SPLITS}
    if input_format is not None:
        meta["input_format"] = input_format
    meta.update(metadata or {})
    return PreparedDataset(
        name=name,
        tasks=encoder.schema.labels,
        features=encoder.features,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=description,
        metadata=meta,
    )
