"""Hash splits: rows assigned to train/validation/test without a permutation of all rows.

`hash_split` assigns rows to train/validation/test by a seeded hash of a row key (the row's
position, or a column such as the user id), so a split needs no permutation of all rows and a
row lands in the same split whatever the pieces it is read in.

Example:
    >>> parts = hash_split(row_keys(0, 0, 6), (0.5, 0.25, 0.25), seed=0)
    >>> parts.dtype, len(parts)
    (dtype('int8'), 6)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nomoretuning.data.tokens import arrow_tokens, splitmix64, stable_hash

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["hash_split", "row_keys"]

_UNIT = 2.0**-53


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
