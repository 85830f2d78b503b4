"""Columns of pyarrow tables as model inputs, with the pandas path's semantics and messages.

- `numeric_values` / `label_values`: dense values (float64, NaN for missing) and 0/1 labels
  (float32). Text is converted by pyarrow; when it cannot convert a value, the pandas checks of
  `nomoretuning.data.prepare` convert or reject it, so messages name the same row as before.
- `TokenCounts`: token counts merged over the pieces of a stream, giving the vocabulary
  `CategoricalEncoder.fit` gives on the same rows (count descending, then token ascending).

Example:
    >>> import pyarrow as pa
    >>> counts = TokenCounts()
    >>> counts.add(pa.array(["b", "a", "b"])); counts.add(pa.array(["a", "c", "b", None]))
    >>> kept = counts.kept(min_count=2)
    >>> tokens = pa.array(["a", "c", "b"])
    >>> kept.collect(tokens, kept.codes(tokens))
    >>> enc, remap = kept.encoder()
    >>> enc.vocabulary, enc.counts, remap[kept.codes(tokens)].tolist()
    (('b', 'a'), (3, 2), [2, 0, 1])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.data.encoders import (
    CategoricalEncoder,
    DenseScaler,
    DenseTransform,
    numeric_column,
)
from nomoretuning.data.prepare import binary_label, shift_rows
from nomoretuning.data.tokens import stable_hash
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DenseMoments", "KeptTokens", "TokenCounts", "label_values", "numeric_values"]


def numeric_values(column: Any, name: str, source: str, first_row: int = 0) -> np.ndarray:
    """A dense column as float64, NaN for missing, empty and +-inf; text that is not a number
    raises `DataError` naming its data row (counted from the top of the file)."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = _as_float(array)
    if values is None:
        try:
            values = numeric_column(array.to_pandas(), name, source)
        except DataError as error:
            raise shift_rows(error, first_row) from None
    values[~np.isfinite(values)] = np.nan
    return values


def label_values(column: Any, name: str, source: str, first_row: int = 0) -> np.ndarray:
    """A 0/1 label column as float32; an empty, NaN or other value raises `DataError` naming its
    data row, with the message of `nomoretuning.data.prepare.binary_label`."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = _as_float(array)
    if values is not None and bool(np.all((values == 0.0) | (values == 1.0))):
        return values.astype(np.float32)
    try:
        return binary_label(array.to_pandas(), name, source)
    except DataError as error:
        raise shift_rows(error, first_row) from None


def _as_float(array: pa.Array) -> np.ndarray | None:
    """float64 values (NaN for null), or None when pyarrow cannot convert some text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(array.type):
        array = pc.cast(array, pa.int8())
    try:
        cast = pc.cast(array, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.float64).copy()


class TokenCounts:
    """Token counts of one column, merged over pieces (missing values not counted).

    Tokens are counted by their 64-bit `stable_hash` with numpy: 12 bytes per distinct token and
    no text. Two distinct tokens with the same hash (about ``n**2 / 2**65`` for ``n`` distinct
    tokens: 5e-7 for 4 million) would be counted as one.
    """

    _MERGE_EVERY = 32

    def __init__(self) -> None:
        self._hashes: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []

    def add(self, tokens: pa.Array) -> None:
        """Counts the tokens of one piece (a string array)."""
        hashes, counts = np.unique(stable_hash(tokens.drop_null()), return_counts=True)
        self._hashes.append(hashes)
        self._counts.append(counts.astype(np.int32))
        if len(self._hashes) >= self._MERGE_EVERY:
            self._merge()

    def _merge(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._hashes:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        hashes, counts = np.concatenate(self._hashes), np.concatenate(self._counts)
        if len(self._hashes) > 1:
            hashes, inverse = np.unique(hashes, return_inverse=True)
            counts = np.bincount(inverse.reshape(-1), weights=counts, minlength=len(hashes))
            counts = counts.astype(np.int64)
        self._hashes, self._counts = [hashes], [counts]
        return hashes, counts.astype(np.int64)

    def kept(self, min_count: int = 1) -> KeptTokens:
        """The tokens counted at least ``min_count`` times (by hash, their text not yet known)."""
        hashes, counts = self._merge()
        keep = counts >= min_count
        self._hashes, self._counts = [], []
        return KeptTokens(hashes[keep], counts[keep], min_count)


class KeptTokens:
    """A column's kept tokens: sorted hashes and counts, and the text of each once seen.

    `codes` gives every token its position among the hashes (+1; 0 for missing or not kept);
    `collect` records the text of the positions it has not seen; `encoder` orders the
    vocabulary as `CategoricalEncoder.fit` does and maps positions to vocabulary indices.
    """

    def __init__(self, hashes: np.ndarray, counts: np.ndarray, min_count: int) -> None:
        self.hashes = hashes
        self.counts = counts
        self.min_count = min_count
        self._seen = np.zeros(len(hashes), dtype=bool)
        self._positions: list[np.ndarray] = []
        self._text: list[pa.Array] = []

    @property
    def complete(self) -> bool:
        """Whether the text of every kept token has been collected."""
        return bool(self._seen.all())

    def codes(self, tokens: pa.Array) -> np.ndarray:
        """Positions + 1 (int32) of ``tokens`` among the kept hashes, 0 when not kept."""
        hashed = stable_hash(tokens)
        at = np.minimum(np.searchsorted(self.hashes, hashed), max(len(self.hashes) - 1, 0))
        found = (self.hashes[at] == hashed) if len(self.hashes) else np.zeros(len(at), bool)
        if tokens.null_count:
            found &= ~np.asarray(tokens.is_null())
        return np.where(found, at + 1, 0).astype(np.int32)

    def collect(self, tokens: pa.Array, codes: np.ndarray) -> None:
        """Keeps the text of the kept tokens among ``tokens`` not seen before."""
        import pyarrow as pa

        new = np.flatnonzero(codes > 0)
        new = new[~self._seen[codes[new] - 1]]
        if new.size == 0:
            return
        positions, first = np.unique(codes[new] - 1, return_index=True)
        self._seen[positions] = True
        self._positions.append(positions)
        self._text.append(tokens.take(pa.array(new[first])))

    def encoder(self) -> tuple[CategoricalEncoder, np.ndarray]:
        """The `CategoricalEncoder` of the kept tokens and ``remap`` (int32): vocabulary index
        ``remap[code]`` of each `codes` value."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self.complete:
            raise RuntimeError("KeptTokens.encoder: the text of some kept tokens was not seen")
        positions = np.concatenate(self._positions) if self._positions else np.zeros(0, int)
        text = pa.concat_arrays(self._text) if self._text else pa.array([], pa.string())
        table = pa.table({"token": text, "count": self.counts[positions], "at": positions})
        order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("token", "ascending")])
        table = table.take(order)
        encoder = CategoricalEncoder(self.min_count)
        encoder.vocabulary = tuple(table.column("token").to_pylist())
        encoder.counts = tuple(table.column("count").to_pylist())
        encoder._fitted = True
        remap = np.zeros(len(self.hashes) + 1, dtype=np.int32)
        remap[np.asarray(table.column("at")) + 1] = np.arange(1, table.num_rows + 1)
        return encoder, remap


class DenseMoments:
    """Count, mean and sum of squared deviations of dense columns, merged over pieces (NaN
    ignored; Chan et al.'s update), for the scaler `DenseScaler.fit` gives on the same rows.

    Example:
        >>> m = DenseMoments(1)
        >>> m.add(np.array([[1.0], [np.nan]])); m.add(np.array([[3.0]]))
        >>> scaler = m.scaler("none")
        >>> scaler.mean.tolist(), scaler.std.tolist()
        ([2.0], [1.0])
    """

    def __init__(self, columns: int) -> None:
        self.count = np.zeros(columns)
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)

    def add(self, values: np.ndarray) -> None:
        """Adds rows (float64 [n, D], already transformed; NaN and inf for missing)."""
        x = np.where(np.isfinite(values), values, np.nan)
        count = (~np.isnan(x)).sum(axis=0).astype(np.float64)
        seen = count > 0
        mean = np.zeros_like(self.mean)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # `check` reports it
            mean[seen] = np.nansum(x[:, seen], axis=0) / count[seen]
            m2 = np.nansum((x - mean) ** 2, axis=0)
            total = self.count + count
            delta = mean - self.mean
            self.mean = np.where(total > 0, self.mean + delta * count / total, 0.0)
            self.m2 = np.where(total > 0, self.m2 + m2 + delta**2 * self.count * count / total, 0.0)
        self.count = total

    def scaler(self, transform: DenseTransform) -> DenseScaler:
        """The fitted `DenseScaler` (std 1 for a constant or never-seen column)."""
        with np.errstate(invalid="ignore"):
            std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        return DenseScaler.from_dict(
            {
                "mean": np.where(self.count > 0, self.mean, 0.0).tolist(),
                "std": np.where((self.count > 0) & (std > 0), std, 1.0).tolist(),
                "transform": transform,
            }
        )
