"""Encoders fitted on the training split only: categorical vocabularies and dense standardization.

Index layout of a categorical column (`CategoricalEncoder`):

- ``0`` is the out-of-vocabulary (OOV) bucket. It also receives missing values (NaN / None / NA)
  and every token seen fewer than ``min_count`` times in the training split or not at all.
- ``1 .. V`` are the kept training tokens sorted by descending training frequency, ties broken by
  the token in ascending string order (the order FuxiCTR/STEM use).
- ``vocab_size = V + 1`` embedding rows. There is no separate padding row.

Tokens are strings: integers are written without a decimal point (``12``, also when a float column
holds integral values such as ``12.0`` because of missing values), so the same id gets the same
token whether a file was read as text, integers or floats.

Dense columns (`DenseScaler`): ``(x - mean) / std`` with the training split's mean and
population std, both ignoring missing values (NaN, empty, +-inf). A std of 0 (constant column) or
an all-missing column uses std 1 (and mean 0 when all are missing). After scaling, missing values
become 0.0, the training mean. Non-numeric text in a dense column raises `DataError`.

pandas is imported inside the functions that need it, so ``import nomoretuning.data`` works with
only torch and numpy installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nomoretuning.checks import positive_int
from nomoretuning.data.schema import Schema
from nomoretuning.data.tokens import stable_hash
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig, SparseField

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "DEFAULT_HASH_BUCKETS",
    "DENSE_TRANSFORMS",
    "OOV_INDEX",
    "CategoricalEncoder",
    "DenseScaler",
    "DenseTransform",
    "FeatureEncoder",
    "HashedEncoder",
    "to_tokens",
]

OOV_INDEX = 0
"""Index of the out-of-vocabulary / missing bucket of every categorical column."""


def to_tokens(values: pd.Series) -> pd.Series:
    """Turns a column into string tokens (pandas ``string`` dtype, ``<NA>`` for missing).

    Example:
        >>> import pandas as pd
        >>> to_tokens(pd.Series([3.0, None, 12.0])).tolist()
        ['3', <NA>, '12']
    """
    import pandas as pd

    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = np.isfinite(v)
        if np.all(np.mod(v[finite], 1.0) == 0.0) and np.all(np.abs(v[finite]) < 2.0**63):
            ints = pd.array(np.where(finite, v, 0).astype(np.int64), dtype="Int64")
            ints[~finite] = pd.NA
            return pd.Series(ints, index=values.index).astype("string")
        out = values.astype("string")
        out[~finite] = pd.NA
        return out
    return values.astype("string")


class CategoricalEncoder:
    """Vocabulary of one categorical column, fitted on training values only.

    Args:
        min_count: tokens seen fewer times than this in the training values map to OOV (0).

    Example:
        >>> import pandas as pd
        >>> enc = CategoricalEncoder(min_count=2).fit(pd.Series(["a", "b", "b", "a", "c", "b"]))
        >>> enc.vocabulary, enc.vocab_size
        (('b', 'a'), 3)
        >>> enc.transform(pd.Series(["a", "b", "c", "zzz", None])).tolist()
        [2, 1, 0, 0, 0]
    """

    def __init__(self, min_count: int = 1) -> None:
        self.min_count = positive_int(min_count, "min_count", error=DataError)
        self.vocabulary: tuple[str, ...] = ()
        self.counts: tuple[int, ...] = ()
        self._fitted = False
        self._index: Any = None
        self._arrow_values: Any = None

    @property
    def vocab_size(self) -> int:
        """Number of embedding rows: the kept tokens plus the OOV bucket."""
        return len(self.vocabulary) + 1

    def fit(self, values: pd.Series) -> CategoricalEncoder:
        """Counts tokens (missing ignored) and keeps those seen at least `min_count` times."""
        import pandas as pd

        counts = to_tokens(values).value_counts(dropna=True)
        counts = counts[counts >= self.min_count]
        table = pd.DataFrame(
            {"token": counts.index.astype(str), "count": counts.to_numpy(dtype=np.int64)}
        )
        table = table.sort_values(["count", "token"], ascending=[False, True], kind="mergesort")
        self.vocabulary = tuple(str(t) for t in table["token"])
        self.counts = tuple(int(c) for c in table["count"])
        self._fitted = True
        self._index = None
        self._arrow_values = None
        return self

    def transform(self, values: pd.Series) -> np.ndarray:
        """Maps values to indices (int64): vocabulary position + 1, or 0 for OOV and missing."""
        import pandas as pd

        if not self._fitted:
            raise RuntimeError("CategoricalEncoder.transform called before fit")
        if self._index is None:
            self._index = pd.Index(list(self.vocabulary), dtype="string")
        codes = np.asarray(self._index.get_indexer(to_tokens(values)), dtype=np.int64)
        return codes + 1  # -1 (unknown or missing) becomes OOV_INDEX = 0

    def transform_arrow(self, tokens: pa.Array) -> np.ndarray:
        """Indices (int32) of a pyarrow string array of tokens, as `transform` gives them."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self._arrow_values is None:
            self._arrow_values = pa.array(list(self.vocabulary), type=pa.string())
        found = pc.index_in(tokens, value_set=self._arrow_values)
        codes = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), np.int32)
        return codes + 1  # -1 (unknown or missing) becomes OOV_INDEX = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description, enough to rebuild the encoder with `from_dict`."""
        return {
            "min_count": self.min_count,
            "vocabulary": list(self.vocabulary),
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> CategoricalEncoder:
        enc = cls(int(state["min_count"]))
        enc.vocabulary = tuple(str(t) for t in state["vocabulary"])
        enc.counts = tuple(int(c) for c in state.get("counts", [0] * len(enc.vocabulary)))
        enc._fitted = True
        return enc


DEFAULT_HASH_BUCKETS = 1 << 20
"""Buckets per sparse column when ``hash_buckets: true``."""


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

        tokens = pa.array(to_tokens(values).to_numpy(dtype=object, na_value=None), pa.string())
        return self.transform_arrow(tokens).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"hash_buckets": self.buckets, "seed": self.seed}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> HashedEncoder:
        return cls(int(state["hash_buckets"]), int(state.get("seed", 0)))


def numeric_column(values: pd.Series, column: str, source: str) -> np.ndarray:
    """A column as float64 with NaN for missing (empty, NA, +-inf); text raises `DataError`."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    numeric = pd.to_numeric(values, errors="coerce")
    out = numeric.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        text = values.astype("string").str.strip().fillna("")
        bad = np.isnan(out) & (text != "").to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: dense column {column!r} has non-numeric value "
                f"{str(values.iloc[row])!r} at data row {row + 1}; "
                "clean the value or list the column as sparse"
            )
    out[~np.isfinite(out)] = np.nan
    return out


DenseTransform = Literal["none", "log1p"]
DENSE_TRANSFORMS: tuple[DenseTransform, ...] = ("none", "log1p")
"""What `DenseScaler` applies before standardizing: nothing, or the signed ``log1p``
(``sign(x) * log(1 + |x|)``, for heavy-tailed counts such as LETOR's features)."""


class DenseScaler:
    """Standardizes numeric columns with the training split's mean and std (NaN-aware), after an
    optional transform (`DENSE_TRANSFORMS`) of every column.

    Example:
        >>> import numpy as np
        >>> sc = DenseScaler().fit(np.array([[1.0], [3.0], [np.nan]]))
        >>> sc.transform(np.array([[1.0], [np.nan], [5.0]])).ravel().tolist()
        [-1.0, 0.0, 3.0]
        >>> DenseScaler("log1p").fit(np.array([[0.0], [np.e - 1]])).mean.tolist()
        [0.5]
    """

    def __init__(self, transform: DenseTransform = "none") -> None:
        if transform not in DENSE_TRANSFORMS:
            raise DataError(
                f"dense transform {transform!r} is unknown; use one of {list(DENSE_TRANSFORMS)}"
            )
        self.transform_name: DenseTransform = transform
        self.mean: np.ndarray = np.zeros(0)
        self.std: np.ndarray = np.ones(0)
        self._fitted = False

    def transformed(self, values: np.ndarray) -> np.ndarray:
        """``values`` (float64) after the transform, before standardizing."""
        x = np.asarray(values, dtype=np.float64)
        if self.transform_name == "log1p":
            return np.sign(x) * np.log1p(np.abs(x))
        return x

    def fit(self, values: np.ndarray) -> DenseScaler:
        """`values`: float array [N, D] with NaN for missing."""
        x = self.transformed(values)
        if x.ndim != 2:
            raise ValueError(f"DenseScaler.fit expects a 2-D array, got shape {x.shape}")
        x = np.where(np.isfinite(x), x, np.nan)
        seen = (~np.isnan(x)).sum(axis=0)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is `check`'s to report
            total = np.where(seen > 0, np.nansum(x, axis=0), 0.0)
            mean = np.where(seen > 0, total / np.maximum(seen, 1), 0.0)
            var = np.nansum((x - mean) ** 2, axis=0) / np.maximum(seen, 1)
            std = np.sqrt(var)
        self.mean = mean
        self.std = np.where((seen > 0) & (std > 0), std, 1.0)
        self._fitted = True
        return self

    def check(self, columns: Sequence[str], source: str) -> DenseScaler:
        """Refuses statistics that overflowed (values near float64's limit): every standardized
        value of such a column would be 0, the feature silently lost.

        Example:
            >>> DenseScaler().fit(np.array([[1e308], [-1e308]])).check(["price"], "a.csv")
            Traceback (most recent call last):
            ...
            nomoretuning.errors.DataError: a.csv: dense column 'price' is too large to standardize (its mean or std overflows float64); rescale it (e.g. transform log1p)
        """  # noqa: E501
        for j, column in enumerate(columns):
            if not (np.isfinite(self.mean[j]) and np.isfinite(self.std[j])):
                raise DataError(
                    f"{source}: dense column {column!r} is too large to standardize (its mean "
                    "or std overflows float64); rescale it (e.g. transform log1p)"
                )
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Standardized float32 array; missing values become 0 (the training mean)."""
        if not self._fitted:
            raise RuntimeError("DenseScaler.transform called before fit")
        z = (self.transformed(values) - self.mean) / self.std
        z[~np.isfinite(z)] = 0.0
        return z.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "transform": self.transform_name,
        }

    @classmethod
    def identity(cls, columns: int, transform: DenseTransform = "none") -> DenseScaler:
        """A fitted scaler that only applies ``transform`` (mean 0, std 1) to ``columns`` columns.

        Example:
            >>> DenseScaler.identity(2).transform(np.array([[1.5, -2.0]])).tolist()
            [[1.5, -2.0]]
        """
        return cls.from_dict(
            {"mean": [0.0] * columns, "std": [1.0] * columns, "transform": transform}
        )

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> DenseScaler:
        sc = cls(state.get("transform", "none"))
        sc.mean = np.asarray(state["mean"], dtype=np.float64)
        sc.std = np.asarray(state["std"], dtype=np.float64)
        sc._fitted = True
        return sc


class FeatureEncoder:
    """All feature columns of a `Schema`: one `CategoricalEncoder` per sparse column and a
    `DenseScaler` for the dense ones. Fit it on the training rows, then transform any split.

    Args:
        schema: the column roles.
        min_count: minimum training count of a kept token, for every sparse column or per column.
        dense_transform: applied to the dense columns before standardizing (`DENSE_TRANSFORMS`).
        hash_buckets: hash every sparse column into this many rows (`HashedEncoder`) instead of
            fitting vocabularies, or the columns of a mapping into their own numbers of rows (the
            others get vocabularies); None: vocabularies.
        hash_seed: the seed of those hashes.

    Example:
        >>> import pandas as pd
        >>> train = pd.DataFrame({"uid": ["u1", "u2", "u1"], "age": [20.0, 40.0, 30.0],
        ...                       "click": [0, 1, 1]})
        >>> enc = FeatureEncoder(Schema(sparse=["uid"], dense=["age"], labels=["click"]))
        >>> sparse, dense = enc.fit(train).transform(pd.DataFrame({"uid": ["u1", "u9"],
        ...                                                       "age": [30.0, None]}))
        >>> sparse.tolist(), dense.tolist()
        ([[1], [0]], [[0.0], [0.0]])
        >>> enc.features
        FeatureConfig(sparse=(SparseField(name='uid', vocab_size=3),), dense=('age',))
    """

    def __init__(
        self,
        schema: Schema,
        min_count: int | Mapping[str, int] = 1,
        dense_transform: DenseTransform = "none",
        hash_buckets: int | Mapping[str, int] | None = None,
        hash_seed: int = 0,
    ) -> None:
        self.schema = schema
        counts = {c: min_count for c in schema.sparse} if isinstance(min_count, int) else min_count
        unknown = sorted(set(counts) - set(schema.sparse))
        if unknown:
            raise DataError(
                f"min_count names column {unknown[0]!r}, which is not a sparse column; "
                "use one of the schema's sparse columns"
            )
        if hash_buckets is None:
            buckets: Mapping[str, int] = {}
        elif isinstance(hash_buckets, int):
            buckets = dict.fromkeys(schema.sparse, hash_buckets)
        else:
            buckets = hash_buckets
        for column in buckets:
            if column not in schema.sparse:
                raise DataError(
                    f"hash_buckets names column {column!r}, which is not a sparse column; "
                    "use one of the schema's sparse columns"
                )
        self.categorical: dict[str, CategoricalEncoder | HashedEncoder] = {
            c: HashedEncoder(buckets[c], hash_seed)
            if c in buckets
            else CategoricalEncoder(int(counts.get(c, 1)))
            for c in schema.sparse
        }
        self.scaler = DenseScaler(dense_transform)

    def fit(self, frame: pd.DataFrame, source: str = "train") -> FeatureEncoder:
        """Fits vocabularies and the scaler on `frame` (the training rows only)."""
        self.schema.check_columns(frame.columns, source)
        for column, enc in self.categorical.items():
            if isinstance(enc, CategoricalEncoder):
                enc.fit(frame[column])
        self.scaler.fit(self._dense(frame, source)).check(self.schema.dense, source)
        return self

    def transform(self, frame: pd.DataFrame, source: str = "data") -> tuple[np.ndarray, np.ndarray]:
        """Returns ``(sparse int64 [N, S], dense float32 [N, D])`` in the schema's column order."""
        n = len(frame)
        sparse = np.zeros((n, len(self.schema.sparse)), dtype=np.int64)
        for j, (column, enc) in enumerate(self.categorical.items()):
            if column not in frame.columns:
                self.schema.check_columns(frame.columns, source)
            sparse[:, j] = enc.transform(frame[column])
        return sparse, self.scaler.transform(self._dense(frame, source))

    def _dense(self, frame: pd.DataFrame, source: str) -> np.ndarray:
        out = np.empty((len(frame), len(self.schema.dense)), dtype=np.float64)
        for j, column in enumerate(self.schema.dense):
            if column not in frame.columns:
                self.schema.check_columns(frame.columns, source)
            out[:, j] = numeric_column(frame[column], column, source)
        return out

    @property
    def features(self) -> FeatureConfig:
        """The model inputs (`FeatureConfig`) this encoder produces."""
        return FeatureConfig(
            sparse=tuple(SparseField(c, e.vocab_size) for c, e in self.categorical.items()),
            dense=self.schema.dense,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (schema, vocabularies, scaler), see `from_dict`."""
        return {
            "schema": {
                "sparse": list(self.schema.sparse),
                "dense": list(self.schema.dense),
                "labels": list(self.schema.labels),
                "group": self.schema.group,
            },
            "categorical": {c: e.to_dict() for c, e in self.categorical.items()},
            "scaler": self.scaler.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> FeatureEncoder:
        s = state["schema"]
        enc = cls(Schema(s["sparse"], s["dense"], s["labels"], s["group"]))
        enc.categorical = {
            c: HashedEncoder.from_dict(v)
            if "hash_buckets" in v
            else CategoricalEncoder.from_dict(v)
            for c, v in state["categorical"].items()
        }
        enc.scaler = DenseScaler.from_dict(state["scaler"])
        return enc


def encode_groups(values: pd.Series) -> np.ndarray:
    """Group ids as int64 codes in order of first appearance; missing values share one code."""
    import pandas as pd

    codes, _ = pd.factorize(to_tokens(values), use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64)
