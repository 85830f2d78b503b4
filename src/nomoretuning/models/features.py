"""Feature descriptions shared by the models and the data layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nomoretuning.errors import ConfigError

__all__ = ["FeatureConfig", "SparseField"]


@dataclass(frozen=True)
class SparseField:
    """One categorical input column.

    Args:
        name: column name.
        vocab_size: number of embedding rows, out-of-vocabulary bucket included.

    Example:
        >>> SparseField("uid", 1000).vocab_size
        1000
    """

    name: str
    vocab_size: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"SparseField name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.vocab_size, int | np.integer) or isinstance(self.vocab_size, bool):
            raise ConfigError(
                f"SparseField {self.name!r}: vocab_size must be an integer, got {self.vocab_size!r}"
            )
        object.__setattr__(self, "vocab_size", int(self.vocab_size))
        if self.vocab_size < 1:
            raise ConfigError(
                f"SparseField {self.name!r}: vocab_size must be >= 1, got {self.vocab_size}"
            )


@dataclass(frozen=True)
class FeatureConfig:
    """The inputs of a model: categorical fields (in column order) and dense column names.

    Example:
        >>> cfg = FeatureConfig(sparse=(SparseField("uid", 10),), dense=("age",))
        >>> cfg.num_sparse, cfg.num_dense
        (1, 1)
    """

    sparse: tuple[SparseField, ...] = ()
    dense: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what in ("sparse", "dense"):
            given = getattr(self, what)
            if isinstance(given, str | SparseField):
                raise ConfigError(
                    f"FeatureConfig: {what} must be a sequence, got the single {given!r}; "
                    f"write ({given!r},)"
                )
            object.__setattr__(self, what, tuple(given))
        for field in self.sparse:
            if not isinstance(field, SparseField):
                raise ConfigError(f"FeatureConfig: sparse holds SparseField, got {field!r}")
        for column in self.dense:
            if not isinstance(column, str) or not column:
                raise ConfigError(f"FeatureConfig: dense column names are strings, got {column!r}")
        names = [f.name for f in self.sparse] + list(self.dense)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ConfigError(f"FeatureConfig: feature {name!r} appears twice")
            seen.add(name)
        if not names:
            raise ConfigError("FeatureConfig needs at least one sparse or dense feature")

    @property
    def num_sparse(self) -> int:
        return len(self.sparse)

    @property
    def num_dense(self) -> int:
        return len(self.dense)
