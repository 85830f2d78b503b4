"""Feature descriptions shared by the models and the data layer."""

from __future__ import annotations

from dataclasses import dataclass

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
        if not self.name:
            raise ValueError("SparseField name must be a non-empty string")
        if self.vocab_size < 1:
            raise ValueError(
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
        names = [f.name for f in self.sparse] + list(self.dense)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"FeatureConfig: feature {name!r} appears twice")
            seen.add(name)
        if not names:
            raise ValueError("FeatureConfig needs at least one sparse or dense feature")

    @property
    def num_sparse(self) -> int:
        return len(self.sparse)

    @property
    def num_dense(self) -> int:
        return len(self.dense)
