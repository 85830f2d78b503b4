"""Hashed ids: a fixed number of embedding rows whatever the number of distinct values.

`HashedEncoder` maps a token to ``1 + stable_hash(token, seed) % buckets`` and a missing value to
0 (the OOV index, as in `CategoricalEncoder`). It needs no fitting pass and no vocabulary, so its
memory does not grow with the data: the industrial choice when ids are unbounded (new users and
items every day). The price is collisions: with ``V`` distinct ids in ``B`` buckets, about
``V / B`` of them share a row with another id (the default ``B = 2**20`` suits ~10^5-10^6 ids).

`hash_split` assigns rows to train/validation/test by a seeded hash of a row key (the row's
position, or a column such as the user id), so a split needs no permutation of all rows and a
row lands in the same split whatever the pieces it is read in.

Example:
    >>> import pandas as pd
    >>> enc = HashedEncoder(buckets=100, seed=0)
    >>> codes = enc.transform(pd.Series(["u1", "u2", "u1", None]))
    >>> bool(codes[0] == codes[2]), int(codes[3]), enc.vocab_size
    (True, 0, 101)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.checks import positive_int
from nomoretuning.data.columnar import arrow_tokens, splitmix64, stable_hash
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DEFAULT_HASH_BUCKETS", "HashedEncoder", "hash_split", "row_keys"]

DEFAULT_HASH_BUCKETS = 1 << 20
"""Buckets per sparse column when ``hash_buckets: true``."""

_UNIT = 2.0**-53


class HashedEncoder:
    """A sparse column's ids hashed into ``buckets`` rows (plus row 0 for missing values)."""

    def __init__(self, buckets: int = DEFAULT_HASH_BUCKETS, seed: int = 0) -> None:
        self.buckets = positive_int(buckets, "hash_buckets", error=DataError)
        self.seed = int(seed)
        self.min_count = 1

    @property
    def vocab_size(self) -> int:
        return self.buckets + 1

    def fit(self, values: object) -> HashedEncoder:
        """Nothing to fit (kept for the encoder interface)."""
        return self

    def transform_arrow(self, tokens: pa.Array) -> np.ndarray:
        """Indices (int32) of string tokens: ``1 + hash % buckets``, 0 for missing."""
        import pyarrow as pa

        array = tokens.combine_chunks() if isinstance(tokens, pa.ChunkedArray) else tokens
        codes = (stable_hash(array, self.seed) % np.uint64(self.buckets)).astype(np.int32) + 1
        if array.null_count:
            codes[np.asarray(array.is_null())] = 0
        return codes

    def transform(self, values: pd.Series) -> np.ndarray:
        """Indices (int64) of a pandas column, the same as `transform_arrow` of its tokens."""
        import pyarrow as pa

        from nomoretuning.data.encoders import to_tokens

        tokens = pa.array(to_tokens(values).to_numpy(dtype=object, na_value=None), pa.string())
        return self.transform_arrow(tokens).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"hash_buckets": self.buckets, "seed": self.seed}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> HashedEncoder:
        return cls(int(state["hash_buckets"]), int(state.get("seed", 0)))


def row_keys(file: int, start: int, rows: int) -> np.ndarray:
    """uint64 keys of data rows ``start .. start + rows - 1`` of file number ``file``."""
    return (np.uint64(file) << np.uint64(40)) | np.arange(start, start + rows, dtype=np.uint64)


def hash_split(
    keys: np.ndarray | pa.Array, fractions: tuple[float, float, float], seed: int
) -> np.ndarray:
    """The split (0 train, 1 valid, 2 test; int8) of each row, by a seeded hash of its key.

    ``keys``: uint64 row keys (`row_keys`) or a column of tokens (rows with the same token, e.g.
    one user's, land in the same split).

    Example:
        >>> parts = hash_split(row_keys(0, 0, 10_000), (0.8, 0.1, 0.1), seed=0)
        >>> [round(float((parts == s).mean()), 2) for s in range(3)]
        [0.8, 0.1, 0.1]
    """
    if isinstance(keys, np.ndarray):
        mixed = splitmix64(keys ^ splitmix64(np.array([seed], dtype=np.uint64))[0])
    else:
        mixed = stable_hash(arrow_tokens(keys), seed)
    unit = (mixed >> np.uint64(11)).astype(np.float64) * _UNIT
    train, valid, _ = fractions
    out = np.full(unit.shape, 2, dtype=np.int8)
    out[unit < train + valid] = 1
    out[unit < train] = 0
    return out
