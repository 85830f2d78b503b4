"""Streaming datasets: logs larger than memory, read from CSV/Parquet files in pieces every epoch.

`load_stream` gives a `PreparedDataset` whose splits are `StreamingSplit` objects: the trainer
batches them as it batches in-memory splits, while only a shuffle buffer of rows is ever held.

- Splits: by file (train/valid/test files or folders), or by a seeded hash of each row's position
  or of a key column (`RowSplit`); no permutation of all rows is needed.
- Vocabularies: fitted in a streaming pass, the same as the in-memory path's on the same training
  rows (`nomoretuning.data.streaming.fitting`); or hashed ids into a fixed number of buckets
  (``hash_buckets``: no pass, memory independent of the number of distinct ids).
- Epochs: shuffled by piece and by a bounded buffer, exactly resumable, dealt to lanes across
  data-parallel ranks (`nomoretuning.data.streaming.split`).

Example:
    >>> import pathlib, tempfile
    >>> from nomoretuning.data.pieces import TableFile
    >>> from nomoretuning.data.schema import Schema
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> rows = "".join(f"u{i % 7},{i % 3},{i % 2}\\n" for i in range(200))
    >>> _ = p.write_text("user,item,click\\n" + rows)
    >>> ds = load_stream([TableFile.open(p)], Schema(sparse=["user", "item"], labels=["click"]),
    ...                  RowSplit("position"), name="log", description="", progress=False)
    >>> len(ds.train) + len(ds.valid) + len(ds.test), type(ds.train).__name__
    (200, 'StreamingSplit')
    >>> sum(len(b) for b in ds.train.batches(32, shuffle=True)) == len(ds.train)
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import DenseTransform, FeatureEncoder
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.pieces import TableFile
from nomoretuning.data.prepare import SPLITS, assemble_dataset
from nomoretuning.data.schema import Schema
from nomoretuning.data.streaming.encoding import EncodedRows, PieceEncoder, RowSplit
from nomoretuning.data.streaming.fitting import fit_stream
from nomoretuning.data.streaming.split import StreamingSplit, StreamOptions

__all__ = ["EncodedRows", "RowSplit", "StreamOptions", "StreamingSplit", "load_stream"]


def load_stream(
    files: Sequence[TableFile],
    schema: Schema,
    split: RowSplit,
    *,
    name: str,
    description: str,
    min_count: int | Mapping[str, int] = 1,
    dense_transform: DenseTransform = "none",
    hash_buckets: int | Mapping[str, int] | None = None,
    seed: int = 0,
    options: StreamOptions | None = None,
    allow_single_class: bool = False,
    groups_from_encoded: bool = False,
    input_format: InputFormat | None = None,
    progress: bool = True,
) -> PreparedDataset:
    """A dataset streamed from ``files`` (the same columns each); see the module docstring.

    Args:
        files: the files, numbered in this order (``split.file_splits`` refers to it).
        schema: the column roles; its labels are the tasks, in order.
        split: how rows are assigned to train, valid and test.
        name, description: stored on the dataset.
        min_count: minimum training count of a kept token (all sparse columns or per column).
        dense_transform: applied to dense columns before standardizing.
        hash_buckets: hash sparse ids into this many rows instead of fitting vocabularies (a
            mapping: those columns into their own numbers of rows).
        seed: the seed of those hashes.
        options: pieces, shuffle buffer and lanes (`StreamOptions`).
        allow_single_class: warn instead of raising when a task has one class in a split.
        groups_from_encoded: group ids are the encoded group column.
        input_format: stored for scoring new files of a trained run.
        progress: show progress bars for the fitting passes.
    """
    options = options or StreamOptions()
    for file in files:
        file.check_columns(schema.columns)
    pieces = [piece for i, file in enumerate(files) for piece in file.pieces(options.piece_rows, i)]
    features = FeatureEncoder(schema, min_count, dense_transform, hash_buckets, seed)
    encoder = PieceEncoder(files, schema, features, split, groups_from_encoded)
    fit = fit_stream(
        encoder, pieces, min_count, progress=progress, allow_single_class=allow_single_class
    )
    parts = {
        s: StreamingSplit(encoder, pieces, fit.rows[code], code, options)
        for code, s in enumerate(SPLITS)
    }
    streamed = {
        "split": split.describe(),
        "pieces": len(pieces),
        "piece_rows": options.piece_rows,
        "shuffle_rows": options.shuffle_rows,
        "lanes": options.lanes,
    }
    return assemble_dataset(
        parts,
        features,
        name=name,
        description=f"{description}; streamed, {split.describe()}",
        input_format=input_format,
        metadata={"streaming": streamed},
    )
