"""Any SVMlight/LETOR learning-to-rank files by path (MSLR-WEB10K/30K, Yahoo LTR, Istella,
LightGBM's examples) as a `PreparedDataset` of `GroupedSplit`s: `load_letor`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from nomoretuning.checks import fraction, optional_path, task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import DenseScaler, DenseTransform, FeatureEncoder
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.ranking.grouped import GroupedSplit, check_ranked_pairs, split_groups
from nomoretuning.data.ranking.spec import PairwiseSpec, RankingLoss
from nomoretuning.data.ranking.svmlight import (
    RankingArrays,
    check_relevance,
    load_svmlight_ranking,
)
from nomoretuning.data.schema import Schema
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig

__all__ = ["load_letor"]

PathLike = str | os.PathLike[str]


def load_letor(
    path: PathLike | None = None,
    *,
    train: PathLike | None = None,
    test: PathLike | None = None,
    valid: PathLike | None = None,
    valid_fraction: float = 0.2,
    seed: int = 0,
    n_features: int | None = None,
    zero_based: bool | Literal["auto"] = "auto",
    standardize: bool = True,
    feature_transform: DenseTransform = "none",
    tasks: Sequence[str] | str | None = None,
    min_query_size: int = 2,
    drop_small_queries: bool = False,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
    loss: RankingLoss = "pairwise",
    name: str = "letor",
) -> PreparedDataset:
    """SVMlight/LETOR ranking files as a `PreparedDataset` (one task ``relevance``, graded).

    Rows are ``label [qid:Q] index:value ... [# comment]``. Queries come from each file's ``qid:``
    or from a LightGBM-style ``<file>.query`` of group sizes beside it. The feature count is the
    largest index over every file (or ``n_features``); indices are one-based unless an index 0
    appears (``zero_based="auto"``; LETOR, MSLR, Yahoo and Istella files are one-based). Features
    become dense columns ``f0 .. f{F-1}``, transformed (``feature_transform="log1p"``: the signed
    ``log(1 + |x|)``, for heavy-tailed counts such as MSLR's) and standardized with the training
    part's statistics (a `DenseScaler`). Labels may be any finite numbers >= 0 (graded relevance).

    Splits: ``train`` (``path`` is the same), ``test``, and ``valid``, or else a validation part of
    ``round(valid_fraction * Q)`` whole training queries chosen by ``numpy.random.default_rng(
    seed)``. Group ids are positions of the queries in their file (valid drawn from train shares
    train's numbering).

    Queries with fewer than ``min_query_size`` rows (default 2: one item has no pair to learn
    from) are an error naming the query, or are dropped with ``drop_small_queries``.

    ``metadata["objective"]`` is a `PairwiseSpec` (the ``loss``: ``"pairwise"`` on all pairs, or
    ``max_pairs_per_group`` sampled per query and batch, or the listwise ``"softmax"``;
    NDCG@``ndcg_k``); ``metadata["input_format"]`` lets a trained run score
    LETOR files (``nomoretuning predict``).

    Raises:
        DataError: a missing file, a row without qid (none beside it either), a label that is not
            a number, a feature index beyond ``n_features``, a query too small, with the file and
            row.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> rows = [f"{i % 3} qid:{i // 4} 1:{i} 2:{i % 5}\\n" for i in range(40)]
        >>> _ = (folder / "train.txt").write_text("".join(rows))
        >>> _ = (folder / "test.txt").write_text("".join(rows[:20]))
        >>> ds = load_letor(folder / "train.txt", test=folder / "test.txt")
        >>> ds.tasks, ds.features.dense, ds.train.num_groups, ds.valid.num_groups
        (('relevance',), ('f0', 'f1'), 8, 2)
    """
    names = task_names(
        ("relevance",) if tasks is None else (tasks,) if isinstance(tasks, str) else tasks,
        "letor: tasks",
        available=("relevance",),
        error=DataError,
    )
    for name, value in (("path", path), ("train", train), ("valid", valid), ("test", test)):
        optional_path(value, name, error=DataError)
    if path is not None and train is not None and Path(path) != Path(train):
        raise DataError(f"letor: give the training file once, as path ({path}) or as train")
    train_file = path if path is not None else train
    if train_file is None:
        raise DataError("letor: no training file; set data.path or data.options.train")
    if test is None:
        raise DataError("letor: no test file; set data.options.test (e.g. MSLR's test.txt)")
    valid_fraction = fraction(valid_fraction, "valid_fraction", error=DataError)
    if min_query_size < 1:
        raise DataError(f"letor: min_query_size must be a positive integer, got {min_query_size}")
    files = {"train": Path(train_file), "test": Path(test)}
    if valid is not None:
        files["valid"] = Path(valid)
    arrays, count, based = _parse(files, n_features, zero_based)
    for part, parsed_part in arrays.items():
        check_relevance(files[part], parsed_part.relevance)
    parsed = {
        part: _check_queries(a, files[part], min_query_size, drop_small_queries)
        for part, a in arrays.items()
    }
    fit = parsed["train"]
    if "valid" in parsed:
        fit_rows = np.arange(fit.relevance.size)
        valid_arrays = parsed["valid"]
    else:
        fit_rows, valid_rows, _ = split_groups(
            fit.groups, (1.0 - valid_fraction, valid_fraction, 0.0), seed
        )
        valid_arrays = RankingArrays(
            fit.features[valid_rows], fit.relevance[valid_rows], fit.groups[valid_rows]
        )
    columns = tuple(f"f{j}" for j in range(count))
    encoder = FeatureEncoder(
        Schema(dense=columns, labels=names, group="qid"), dense_transform=feature_transform
    )
    if standardize:
        encoder.scaler.fit(fit.features[fit_rows])
    else:
        encoder.scaler = DenseScaler.identity(count, feature_transform)
    scaler = encoder.scaler

    def split(arrays: RankingArrays, rows: np.ndarray | slice) -> GroupedSplit:
        x = scaler.transform(arrays.features[rows])
        return GroupedSplit.from_numpy(
            np.zeros((x.shape[0], 0), dtype=np.int64),
            x,
            {t: arrays.relevance[rows] for t in names},
            arrays.groups[rows],
        )

    splits = {
        "train": split(fit, fit_rows),
        "valid": split(valid_arrays, slice(None)),
        "test": split(parsed["test"], slice(None)),
    }
    check_ranked_pairs(splits, names, str(files["train"]))
    how = (
        f"valid {files['valid']}"
        if "valid" in files
        else (f"valid = {valid_fraction:g} of the training queries (seed {seed})")
    )
    sizes = ", ".join(
        f"{part} {s.num_groups} queries / {len(s)} rows" for part, s in splits.items()
    )
    return PreparedDataset(
        name=name,
        tasks=names,
        features=FeatureConfig(dense=columns),
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=(
            f"LETOR files: train {files['train']}, test {files['test']}, {how}; {count} features "
            f"({'zero' if based else 'one'}-based), transform {feature_transform}; {sizes}"
        ),
        metadata={
            "valid_fraction": valid_fraction,
            "standardized": standardize,
            "objective": PairwiseSpec(max_pairs_per_group=max_pairs_per_group, k=ndcg_k, loss=loss),
            "encoder": encoder,
            "input_format": InputFormat("letor", {"n_features": count, "zero_based": based}),
        },
    )


def _parse(
    files: dict[str, Path], n_features: int | None, zero_based: bool | Literal["auto"]
) -> tuple[dict[str, RankingArrays], int, bool]:
    """Every file parsed with one feature count and one index base: (arrays, count, zero_based).

    ``"auto"``: one-based (the LETOR convention) unless some file has an index 0.
    """

    def parse(based: bool) -> dict[str, RankingArrays]:
        return {
            part: load_svmlight_ranking(file, n_features=n_features, zero_based=based)
            for part, file in files.items()
        }

    if zero_based == "auto":
        try:
            based, arrays = False, parse(False)
        except DataError as error:
            if "index 0" not in str(error):
                raise
            based, arrays = True, parse(True)
    else:
        based, arrays = bool(zero_based), parse(bool(zero_based))
    count = (
        n_features if n_features is not None else max(a.features.shape[1] for a in arrays.values())
    )
    padded = {
        part: a._replace(features=np.pad(a.features, ((0, 0), (0, count - a.features.shape[1]))))
        for part, a in arrays.items()
    }
    return padded, count, based


def _check_queries(arrays: RankingArrays, file: Path, min_size: int, drop: bool) -> RankingArrays:
    """Queries of at least ``min_size`` rows: others raise, or are dropped with ``drop``."""
    codes, counts = np.unique(arrays.groups, return_counts=True)
    small = codes[counts < min_size]
    if small.size == 0:
        return arrays
    if not drop:
        row = int(np.flatnonzero(arrays.groups == small[0])[0])
        raise DataError(
            f"{file}: query {int(small[0]) + 1} (data row {row + 1}) has "
            f"{int(counts[codes == small[0]][0])} item(s), fewer than min_query_size "
            f"{min_size} ({small.size} such queries); a query needs two items to form a pair: "
            "pass drop_small_queries: true to leave them out, or min_query_size: 1 to keep them"
        )
    keep = ~np.isin(arrays.groups, small)
    if not keep.any():
        raise DataError(f"{file}: every query has fewer than {min_size} items")
    _, groups = np.unique(arrays.groups[keep], return_inverse=True)
    return RankingArrays(arrays.features[keep], arrays.relevance[keep], groups.astype(np.int64))
