"""Your own table: a CSV/TSV/Parquet file (or three) described by column lists."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.prepare import build_dataset, check_frame
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.errors import DataError

__all__ = ["load_table"]

PathLike = str | os.PathLike[str]


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
) -> PreparedDataset:
    """A multi-task table of your own as a `PreparedDataset`.

    Schema: exactly the columns you list. `sparse` columns are read as text and encoded with a
    vocabulary fitted on the training split (index 0 = OOV and missing, then tokens by
    descending count); `dense` columns are standardized with the training mean/std (missing ->
    0); `labels` are 0/1 task columns, in priority order; `group` (optional) holds user or query
    ids for gAUC. Other columns are ignored.

    Give either `path` (one file, split by `split` and `seed`) or `train`, `valid` and `test`
    (three files with the same columns). Formats: ``.csv``, ``.tsv``, ``.txt`` (optionally
    ``.gz``) with a header row, or ``.parquet``.

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
    dtype = {c: str for c in schema.sparse}
    if group is not None:
        dtype[group] = str
    files = (train, valid, test)
    if path is not None:
        if any(f is not None for f in files):
            raise DataError(
                f"{path}: pass either path= (one file to split) or train=, valid= and test=, "
                "not both"
            )
        fractions = check_fractions(split)
        src = str(path)
        raw = read_table(path, sep=sep, columns=schema.columns, dtype=dtype)
        frame = check_frame(raw, schema, src)
        tr, va, te = split_indices(len(frame), fractions, seed)
        how = f"{src} split {fractions} with seed {seed}"
    else:
        if any(f is None for f in files):
            missing = [
                n for n, f in zip(("train", "valid", "test"), files, strict=True) if f is None
            ]
            raise DataError(
                f"load_table: no file given for {', '.join(missing)}; pass path= (one file to "
                "split) or all of train=, valid= and test="
            )
        import pandas as pd

        frames = [
            check_frame(read_table(f, sep=sep, columns=schema.columns, dtype=dtype), schema, str(f))
            for f in files
            if f is not None
        ]
        sizes = np.cumsum([0] + [len(f) for f in frames])
        tr, va, te = (np.arange(sizes[i], sizes[i + 1], dtype=np.int64) for i in range(3))
        frame = pd.concat(frames, ignore_index=True)
        src = " + ".join(str(f) for f in files)
        how = f"train {train}, valid {valid}, test {test}"
    return build_dataset(
        frame,
        {"train": tr, "valid": va, "test": te},
        schema,
        name=name,
        description=f"table {how}; tasks {', '.join(schema.labels)}",
        source=src,
        min_count=min_count,
        allow_single_class=allow_single_class,
        input_format=InputFormat("table", {"sep": sep}),
    )
