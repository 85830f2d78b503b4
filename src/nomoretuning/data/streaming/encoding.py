"""Reading one piece of a stream and encoding the rows of one split.

`RowSplit` says which split each row belongs to: by file (every row of a file in one split), by a
seeded hash of the row's position (file number, row), or by a seeded hash of a key column (every
row of a user in one split). `PieceEncoder` reads a piece (`nomoretuning.data.pieces`), checks and
encodes its rows with a fitted `FeatureEncoder`, and keeps the rows of one split as numpy arrays
(`EncodedRows`), ready to be shuffled and batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from nomoretuning.data.batching import Batch
from nomoretuning.data.columnar import label_values, numeric_values
from nomoretuning.data.encoders import FeatureEncoder
from nomoretuning.data.hashing import hash_split, row_keys
from nomoretuning.data.pieces import ColumnTypes, Piece, TableFile
from nomoretuning.data.schema import Schema
from nomoretuning.data.tokens import arrow_tokens, group_hashes

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EncodedRows", "PieceEncoder", "RowSplit"]


@dataclass(frozen=True)
class RowSplit:
    """How rows are assigned to train (0), valid (1) and test (2).

    ``by="file"``: ``file_splits[i]`` is the split of file ``i``. ``by="position"``: a seeded
    hash of (file number, row) against ``fractions``. ``by="key"``: a seeded hash of the ``key``
    column's value. A hash split with ``file_splits`` takes test from the files marked 2 and
    hashes the rows of the others into train and valid (``fractions`` then ends in 0).
    """

    by: Literal["file", "position", "key"]
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    key: str | None = None
    file_splits: tuple[int, ...] = ()

    def codes(self, piece: Piece, table: pa.Table | None) -> np.ndarray:
        """The split (int8) of each row of ``piece`` (``table``: its rows, for ``by="key"``)."""
        if self.by == "file" or (self.file_splits and self.file_splits[piece.file] == 2):
            return np.full(piece.rows, self.file_splits[piece.file], dtype=np.int8)
        if self.by == "position":
            return hash_split(
                row_keys(piece.file, piece.start, piece.rows), self.fractions, self.seed
            )
        assert table is not None and self.key is not None
        return hash_split(arrow_tokens(table.column(self.key)), self.fractions, self.seed)

    def describe(self) -> str:
        if self.by == "file":
            return "split by file"
        what = "row position" if self.by == "position" else f"column {self.key!r}"
        if self.file_splits:
            shares = self.fractions[:2]
            return (
                f"test by file, train and valid {shares} by a hash of the {what} with seed "
                f"{self.seed}"
            )
        return f"split {self.fractions} by a hash of the {what} with seed {self.seed}"


@dataclass
class EncodedRows:
    """Encoded rows: sparse ids (int32), dense values (float32), labels, optional group ids."""

    sparse: np.ndarray
    dense: np.ndarray
    labels: dict[str, np.ndarray]
    groups: np.ndarray | None

    def __len__(self) -> int:
        return int(self.sparse.shape[0])

    def take(self, rows: np.ndarray | slice) -> EncodedRows:
        return EncodedRows(
            self.sparse[rows],
            self.dense[rows],
            {t: y[rows] for t, y in self.labels.items()},
            None if self.groups is None else self.groups[rows],
        )

    @staticmethod
    def concat(parts: Sequence[EncodedRows]) -> EncodedRows:
        if len(parts) == 1:
            return parts[0]
        return EncodedRows(
            np.concatenate([p.sparse for p in parts]),
            np.concatenate([p.dense for p in parts]),
            {t: np.concatenate([p.labels[t] for p in parts]) for t in parts[0].labels},
            None if parts[0].groups is None else np.concatenate([p.groups for p in parts]),
        )

    def batch(self) -> Batch:
        """The rows as a `Batch` of tensors (no copy)."""
        return Batch(
            sparse=torch.from_numpy(np.ascontiguousarray(self.sparse)),
            dense=torch.from_numpy(np.ascontiguousarray(self.dense)),
            labels={t: torch.from_numpy(np.ascontiguousarray(y)) for t, y in self.labels.items()},
            groups=None
            if self.groups is None
            else torch.from_numpy(np.ascontiguousarray(self.groups)),
        )


class PieceEncoder:
    """Reads pieces of ``files`` and encodes the rows of a split with ``encoder``.

    Group ids are the 64-bit hash of the group token (equal ids for equal tokens), or the encoded
    group column with ``groups_from_encoded``.
    """

    def __init__(
        self,
        files: Sequence[TableFile],
        schema: Schema,
        encoder: FeatureEncoder,
        split: RowSplit,
        groups_from_encoded: bool = False,
    ) -> None:
        self.files = list(files)
        self.schema = schema
        self.encoder = encoder
        self.split = split
        self.groups_from_encoded = groups_from_encoded
        text = [*schema.sparse]
        if schema.group is not None:
            text.append(schema.group)
        if split.by == "key" and split.key is not None:
            text.append(split.key)
        self.types = ColumnTypes(tuple(dict.fromkeys(text)), (*schema.labels, *schema.dense))

    def read(self, piece: Piece) -> pa.Table:
        return self.files[piece.file].read_piece(piece, self.types)

    def source(self, piece: Piece) -> str:
        return str(self.files[piece.file].path)

    def encode(self, piece: Piece, code: int) -> EncodedRows:
        """The rows of ``piece`` in split ``code``, encoded (in file order)."""
        table = self.read(piece)
        rows = np.flatnonzero(self.split.codes(piece, table) == code)
        return self.encode_rows(piece, table, rows)

    def encode_rows(self, piece: Piece, table: pa.Table, rows: np.ndarray) -> EncodedRows:
        """Rows ``rows`` (offsets in the piece) of ``table``, checked and encoded."""
        import pyarrow as pa

        schema, source, first = self.schema, self.source(piece), piece.start
        taken = table.take(pa.array(rows, pa.int64())) if len(rows) < table.num_rows else table
        labels = {t: label_values(table.column(t), t, source, first)[rows] for t in schema.labels}
        dense = np.empty((len(rows), len(schema.dense)), dtype=np.float64)
        for j, column in enumerate(schema.dense):
            dense[:, j] = numeric_values(table.column(column), column, source, first)[rows]
        sparse = np.empty((len(rows), len(schema.sparse)), dtype=np.int32)
        for j, column in enumerate(schema.sparse):
            tokens = arrow_tokens(taken.column(column))
            sparse[:, j] = self.encoder.categorical[column].transform_arrow(tokens)
        groups = None
        if schema.group is not None:
            if self.groups_from_encoded:
                groups = sparse[:, schema.sparse.index(schema.group)].astype(np.int64)
            else:
                groups = group_ids(taken.column(schema.group))
        return EncodedRows(sparse, self.encoder.scaler.transform(dense), labels, groups)


def group_ids(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 group ids: the hash of each token (missing values share one id)."""
    return group_hashes(column).view(np.int64)
