"""Which columns of a table are sparse features, dense features, labels and the group id.

A `Schema` is pure bookkeeping: it names columns and checks that a table has them. Encoding is
done by `nomoretuning.data.encoders`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nomoretuning.errors import DataError

__all__ = ["MissingColumnError", "Schema", "missing_column"]


def _names(value: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise DataError(f"schema: {what} must be a list of column names, got {value!r}")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise DataError(f"schema: {what} column names must be non-empty strings, got {name!r}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"schema: column {dup!r} is listed twice in {what}; list it once")
    return names


@dataclass(frozen=True, init=False)
class Schema:
    """Column roles of a multi-task table.

    Args:
        sparse: categorical columns, encoded to vocabulary indices (one embedding table each).
        dense: numeric columns, standardized with the training split's mean and std.
        labels: binary task columns (0/1), one per task, in task order.
        group: optional column of group ids (user or query) for gAUC and ranking metrics. It may
            also be a sparse feature; it is never a label.

    A label column cannot also be a feature (that would leak the label), and a column cannot be
    both sparse and dense.

    Example:
        >>> s = Schema(sparse=["uid", "item"], dense=["age"], labels=["click"], group="uid")
        >>> s.columns
        ('uid', 'item', 'age', 'click')
    """

    sparse: tuple[str, ...]
    dense: tuple[str, ...]
    labels: tuple[str, ...]
    group: str | None

    def __init__(
        self,
        sparse: Sequence[str] = (),
        dense: Sequence[str] = (),
        labels: Sequence[str] = (),
        group: str | None = None,
    ) -> None:
        object.__setattr__(self, "sparse", _names(sparse, "sparse"))
        object.__setattr__(self, "dense", _names(dense, "dense"))
        object.__setattr__(self, "labels", _names(labels, "labels"))
        object.__setattr__(self, "group", group)
        sparse, dense, labels = self.sparse, self.dense, self.labels
        if not sparse and not dense:
            raise DataError("schema: no feature columns; list at least one sparse or dense column")
        if not labels:
            raise DataError("schema: no label columns; list at least one binary task column")
        for name in sparse:
            if name in dense:
                raise DataError(
                    f"schema: column {name!r} is both sparse and dense; list it in one of them"
                )
        for name in labels:
            if name in sparse or name in dense:
                raise DataError(
                    f"schema: label column {name!r} is also a feature (label leakage); "
                    "remove it from the features"
                )
            if name == self.group:
                raise DataError(
                    f"schema: label column {name!r} is also the group id; choose another group"
                )
        if self.group is not None and (not isinstance(self.group, str) or not self.group):
            raise DataError(f"schema: group must be a column name or None, got {self.group!r}")

    @property
    def features(self) -> tuple[str, ...]:
        """Sparse then dense feature columns."""
        return self.sparse + self.dense

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the schema needs, each once: features, labels, then the group id."""
        cols = list(self.sparse + self.dense + self.labels)
        if self.group is not None and self.group not in cols:
            cols.append(self.group)
        return tuple(cols)

    def check_columns(self, columns: Iterable[str], source: str) -> None:
        """Raises `DataError` naming `source` and the first column of the schema not in `columns`.

        Example:
            >>> try:
            ...     Schema(sparse=["a"], labels=["y"]).check_columns(["a", "b"], "t.csv")
            ... except DataError as e:
            ...     print(str(e)[:59])
            t.csv: column 'y' is missing (columns found: 'a', 'b'); fix
        """
        present = [str(c) for c in columns]
        have = set(present)
        for name in self.columns:
            if name not in have:
                raise missing_column(source, name, present)


class MissingColumnError(DataError):
    """A column a file or table lacks; ``column`` names it, ``present`` lists what it has."""

    def __init__(self, message: str, column: str, present: Sequence[str]) -> None:
        super().__init__(message)
        self.column = column
        self.present = tuple(present)


def missing_column(
    source: str, name: str, present: Sequence[str], fix: str = "in the file or in the schema"
) -> MissingColumnError:
    """The error for a column that a file lacks (lists the columns it has).

    Example:
        >>> str(missing_column("a.csv", "price", ["user", "click"]))
        "a.csv: column 'price' is missing (columns found: 'user', 'click'); fix the column name in the file or in the schema"
    """  # noqa: E501
    shown = ", ".join(repr(str(c)) for c in present[:12])
    more = f" and {len(present) - 12} more" if len(present) > 12 else ""
    return MissingColumnError(
        f"{source}: column {name!r} is missing (columns found: {shown or 'none'}{more}); "
        f"fix the column name {fix}",
        name,
        [str(c) for c in present],
    )
