"""Tokens of pyarrow columns and their seeded 64-bit hashes (numpy and pyarrow only).

- `arrow_tokens`: a column as string tokens, the same tokens as `encoders.to_tokens` (integers
  without a decimal point, also in a float column of integral values; missing values null).
- `stable_hash`: a seeded 64-bit hash of tokens (FNV-1a over the UTF-8 bytes, then splitmix64),
  the same on every machine and run, for hashed ids, hash splits and group ids.

Example:
    >>> import pyarrow as pa
    >>> arrow_tokens(pa.array([3.0, None, 12.0])).to_pylist()
    ['3', None, '12']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["arrow_tokens", "group_hashes", "splitmix64", "stable_hash"]

_NA_GROUP = "\x00<missing group>"

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def arrow_tokens(column: Any) -> pa.Array:
    """A pyarrow column (array or chunked array) as a string array of tokens."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_string(kind):
        return array
    if pa.types.is_large_string(kind):
        return pc.cast(array, pa.string())
    if pa.types.is_boolean(kind):
        return pc.if_else(array, "True", "False")
    if pa.types.is_floating(kind):
        values = np.asarray(
            pc.cast(array, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
        finite = np.isfinite(values)
        integral = np.all(np.mod(values[finite], 1.0) == 0.0) and np.all(
            np.abs(values[finite]) < 2.0**63
        )
        mask = pa.array(~finite)
        if integral:
            ints = pa.array(np.where(finite, values, 0).astype(np.int64))
            return pc.if_else(mask, pa.scalar(None, pa.string()), pc.cast(ints, pa.string()))
        return pc.if_else(
            mask, pa.scalar(None, pa.string()), pc.cast(pa.array(values), pa.string())
        )
    return pc.cast(array, pa.string())


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer of uint64 ``values`` (a bijection that mixes every bit).

    Example:
        >>> int(splitmix64(np.array([0], dtype=np.uint64))[0])
        16294208416658607535
    """
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def stable_hash(tokens: pa.Array, seed: int = 0) -> np.ndarray:
    """uint64 hashes of string tokens (nulls hash to 0 before mixing); see the module docstring.

    Example:
        >>> import pyarrow as pa
        >>> h = stable_hash(pa.array(["a", "b", "a"]), seed=1)
        >>> bool(h[0] == h[2]), bool(h[0] == h[1])
        (True, False)
    """
    import pyarrow as pa

    array = tokens.combine_chunks() if isinstance(tokens, pa.ChunkedArray) else tokens
    if not pa.types.is_string(array.type):
        array = arrow_tokens(array)
    n = len(array)
    valid = np.ones(n, dtype=bool) if array.null_count == 0 else ~np.asarray(array.is_null())
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[array.offset : array.offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    starts = offsets[:-1].astype(np.int64)
    lengths = (offsets[1:] - offsets[:-1]).astype(np.int64)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        rows = np.flatnonzero(lengths > 0)
        position = 0
        while rows.size:
            h[rows] = (h[rows] ^ data[starts[rows] + position].astype(np.uint64)) * _FNV_PRIME
            position += 1
            rows = rows[lengths[rows] > position]
        h[~valid] = 0
        seeded = h ^ splitmix64(np.array([seed], dtype=np.uint64))[0]
    return splitmix64(seeded)


def group_hashes(column: Any) -> np.ndarray:
    """uint64 hashes of a group column's tokens; missing values share one hash of their own.

    Example:
        >>> import pyarrow as pa
        >>> h = group_hashes(pa.array(["u1", None, "u1", None]))
        >>> bool(h[0] == h[2]), bool(h[1] == h[3]), bool(h[0] == h[1])
        (True, True, False)
    """
    import pyarrow.compute as pc

    return stable_hash(pc.fill_null(arrow_tokens(column), _NA_GROUP))
