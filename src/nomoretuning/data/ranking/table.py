"""Your own ranking table: a CSV/TSV/Parquet file (or three) with a query column, feature columns
and several label columns, trained as prioritized pairwise tasks on one score:
`load_ranking_table`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.checks import one_of, task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import (
    DenseTransform,
    FeatureEncoder,
    encode_groups,
    numeric_column,
)
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.prepare import ranking_label
from nomoretuning.data.ranking.grouped import GroupedSplit, check_ranked_pairs, split_groups
from nomoretuning.data.ranking.spec import GAINS, Gain, PairMaskRule, PairwiseSpec, RankingLoss
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import check_fractions
from nomoretuning.data.table import read_split_files, valid_from_train
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_ranking_table"]

PathLike = str | os.PathLike[str]


def load_ranking_table(
    path: PathLike | None = None,
    *,
    train: PathLike | None = None,
    valid: PathLike | None = None,
    test: PathLike | None = None,
    group: str = "query",
    labels: Sequence[str] = (),
    tasks: Sequence[str] | None = None,
    dense: Sequence[str] = (),
    sparse: Sequence[str] = (),
    pair_masks: Mapping[str, PairMaskRule] | None = None,
    gains: Mapping[str, Gain] | None = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_count: int = 1,
    feature_transform: DenseTransform = "none",
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
    loss: RankingLoss = "pairwise",
    sep: str | None = None,
    name: str = "ranking_table",
) -> PreparedDataset:
    """A ranking table of your own as a `PreparedDataset` of `GroupedSplit`s.

    Each row is an item shown for a query (or session): ``group`` names the query column, the
    ``labels`` columns are the tasks in priority order (finite numbers >= 0: 0/1 purchases, amounts,
    graded relevance), ``dense`` and ``sparse`` are the features (standardized after
    ``feature_transform``; vocabularies with index 0 for OOV, as `load_table`). Every task is
    trained with the pairwise logistic loss on one score: a pair is two rows of one query with
    different labels. ``pair_masks`` restricts a task's pairs (``{"amount": "positive"}``: only
    rows with a label > 0 pair, so amounts are compared among purchases) and ``gains`` sets a
    task's NDCG gain (``"linear"`` for amounts; ``"exponential"``, ``2**label - 1``, otherwise).
    ``loss="softmax"`` trains every task with the listwise softmax cross-entropy instead.

    ``tasks`` selects some of the label columns, in their priority order (a config's
    ``data.tasks``); the masks and gains of the others are ignored. Give ``path`` (one file, split
    by whole queries with ``split`` and ``seed``) or ``train``, ``valid`` and ``test``; without
    ``valid``, whole queries of ``train`` are held out for it with ``seed``, in the proportion of
    ``split``'s first two fractions.

    Raises:
        DataError: a missing column, a query id missing, a label or dense value that is not a
            number, a mask or gain naming a task that is not a label, an empty split.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sessions.csv"
        >>> rows = "".join(f"q{i // 5},{i % 5},{i % 2},{(i % 2) * (i % 7)}\\n" for i in range(200))
        >>> _ = p.write_text("query,price,pay,amount\\n" + rows)
        >>> ds = load_ranking_table(p, labels=["pay", "amount"], dense=["price"],
        ...                         pair_masks={"amount": "positive"}, gains={"amount": "linear"})
        >>> ds.tasks, ds.train.num_groups, ds.metadata["objective"].pair_masks
        (('pay', 'amount'), 32, {'amount': 'positive'})
    """
    every = Schema(sparse=sparse, dense=dense, labels=labels, group=group).labels
    masks = dict(pair_masks or {})
    chosen_gains = dict(gains or {})
    for option, values in (("pair_masks", masks), ("gains", chosen_gains)):
        for task in values:
            if task not in every:
                raise DataError(
                    f"{option} names {task!r}, which is not a label column; labels: {list(every)}"
                )
    chosen = (
        every if tasks is None else task_names(tasks, "tasks", available=every, error=DataError)
    )
    schema = Schema(sparse=sparse, dense=dense, labels=chosen, group=group)
    masks = {t: m for t, m in masks.items() if t in chosen}
    chosen_gains = {t: g for t, g in chosen_gains.items() if t in chosen}
    for task, rule in masks.items():
        one_of(rule, f"pair_masks[{task!r}]", ("positive",), error=DataError)
    for task, gain in chosen_gains.items():
        one_of(gain, f"gains[{task!r}]", GAINS, error=DataError)
    text = {c: str for c in (*schema.sparse, group)}

    def read(file: PathLike) -> pd.DataFrame:
        raw = read_table(file, sep=sep, columns=schema.columns, dtype=text)
        return _checked(raw, schema, str(file))

    def split_rows(frame: pd.DataFrame) -> tuple[Sequence[np.ndarray], str]:
        fractions = check_fractions(split)
        rows = split_groups(encode_groups(frame[group]), fractions, seed)
        return rows, f"split {fractions} by query with seed {seed}"

    def hold_out(frame: pd.DataFrame) -> tuple[Sequence[np.ndarray], str]:
        shares = valid_from_train(split)
        rows = split_groups(encode_groups(frame[group]), shares, seed)
        return rows, f"(valid: {shares[1]:.1%} of its queries, seed {seed})"

    frame, parts, src, how = read_split_files(
        path,
        (train, valid, test),
        read=read,
        split=split_rows,
        hold_out=hold_out,
        caller="ranking table",
    )
    codes = encode_groups(frame[group])
    for part, rows in parts.items():
        if len(rows) == 0:
            raise DataError(
                f"{src}: the {part} split has no query; use more queries or larger fractions"
            )
    encoder = FeatureEncoder(schema, min_count, dense_transform=feature_transform)
    encoder.fit(frame.iloc[parts["train"]], src)
    sparse_ids, dense_values = encoder.transform(frame, src)
    targets = {t: frame[t].to_numpy(dtype=np.float32) for t in schema.labels}
    splits = {
        part: GroupedSplit.from_numpy(
            sparse_ids[rows],
            dense_values[rows],
            {t: y[rows] for t, y in targets.items()},
            codes[rows],
        )
        for part, rows in parts.items()
    }
    check_ranked_pairs(splits, schema.labels, src, positive_only=list(masks))
    spec = PairwiseSpec(
        masks, chosen_gains, max_pairs_per_group=max_pairs_per_group, k=ndcg_k, loss=loss
    )
    counts = ", ".join(f"{p} {s.num_groups} queries / {len(s)} rows" for p, s in splits.items())
    return PreparedDataset(
        name=name,
        tasks=schema.labels,
        features=encoder.features,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=f"ranking table {how}; tasks {', '.join(schema.labels)}; {counts}",
        metadata={
            "objective": spec,
            "encoder": encoder,
            "schema": schema,
            "indices": parts,
            "input_format": InputFormat("table", {"sep": sep}),
        },
    )


def _checked(raw: pd.DataFrame, schema: Schema, source: str) -> pd.DataFrame:
    """The schema's columns with numeric labels and dense values; a missing query id raises."""
    import pandas as pd

    if len(raw) == 0:
        raise DataError(f"{source}: no data rows; point to a file with data rows")
    raw = raw.reset_index(drop=True)
    out: dict[str, Any] = {}
    for column in schema.columns:
        values = raw[column]
        if column in schema.labels:
            out[column] = ranking_label(values, column, source)
        elif column in schema.dense:
            out[column] = numeric_column(values, column, source)
        else:
            out[column] = values
    group = raw[schema.group]
    if group.isna().any():
        row = int(np.flatnonzero(group.isna().to_numpy())[0])
        raise DataError(
            f"{source}: query column {schema.group!r} is empty at data row {row + 1}; every row "
            "needs the id of its query"
        )
    return pd.DataFrame(out)
