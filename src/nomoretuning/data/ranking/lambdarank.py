"""LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset` of `GroupedSplit`s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nomoretuning.checks import fraction, task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import DenseScaler, FeatureEncoder
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.ranking.grouped import GroupedSplit, split_groups
from nomoretuning.data.ranking.spec import PairwiseSpec
from nomoretuning.data.ranking.svmlight import RankingArrays, load_svmlight_ranking
from nomoretuning.data.schema import Schema
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig

__all__ = ["LAMBDARANK_FEATURES", "load_lambdarank_example"]

LAMBDARANK_FEATURES = 300
"""Number of features of LightGBM's lambdarank example (file indices 1..300 -> f0..f299)."""

_TASKS = ("relevance",)


def load_lambdarank_example(
    directory: str | Path,
    *,
    valid_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    tasks: Sequence[str] | None = None,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
) -> PreparedDataset:
    """LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset` of `GroupedSplit`s.

    Reads ``rank.train`` / ``rank.test`` with their ``.query`` group-size files (300 features,
    one-based indices 1..300 -> dense columns ``f0 .. f299``, graded relevance 0..4 as task
    ``relevance``). The validation split is ``round(valid_fraction * 201)`` whole training
    queries chosen by ``numpy.random.default_rng(seed)``; the test split is ``rank.test``.
    With ``standardize``, features are centred and scaled with the training part's mean and
    standard deviation (a `DenseScaler`: constant columns are only centred). Group ids are the
    query's position in its file (train and valid share ``rank.train``'s numbering).

    ``metadata["objective"]`` is a `PairwiseSpec` (pairwise logistic loss on all pairs, or
    ``max_pairs_per_group`` sampled ones per query and batch; NDCG@``ndcg_k`` with exponential
    gain), so the trainer and the command line train it as a ranking task.

    Raises:
        DataError: unknown tasks, a bad fraction, cap or ``ndcg_k``, or a missing or bad file.

    Example:
        >>> ds = load_lambdarank_example("../shared/data/lambdarank-example")  # doctest: +SKIP
        >>> len(ds.train) + len(ds.valid), len(ds.test)  # doctest: +SKIP
        (3005, 768)
    """
    chosen = _TASKS if tasks is None else (tasks,) if isinstance(tasks, str) else tasks
    names = task_names(chosen, "tasks", available=_TASKS, error=DataError)
    valid_fraction = fraction(valid_fraction, "valid_fraction", error=DataError)
    objective = PairwiseSpec(max_pairs_per_group=max_pairs_per_group, k=ndcg_k)
    root = Path(directory)
    train, test = _read_example(root)
    fit_rows, valid_rows, _ = split_groups(
        train.groups, (1.0 - valid_fraction, valid_fraction, 0.0), seed
    )
    scaler = DenseScaler()
    if standardize:
        scaler.fit(train.features[fit_rows])
    else:
        scaler = DenseScaler.from_dict(
            {"mean": [0.0] * LAMBDARANK_FEATURES, "std": [1.0] * LAMBDARANK_FEATURES}
        )
    features, test_features = scaler.transform(train.features), scaler.transform(test.features)
    columns = tuple(f"f{j}" for j in range(LAMBDARANK_FEATURES))
    encoder = FeatureEncoder(Schema(dense=columns, labels=names, group="qid"))
    encoder.scaler = scaler

    def split(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> GroupedSplit:
        return GroupedSplit.from_numpy(
            np.zeros((x.shape[0], 0), dtype=np.int64), x, {t: y for t in names}, g
        )

    return PreparedDataset(
        name="lambdarank",
        tasks=names,
        features=FeatureConfig(dense=columns),
        train=split(features[fit_rows], train.relevance[fit_rows], train.groups[fit_rows]),
        valid=split(features[valid_rows], train.relevance[valid_rows], train.groups[valid_rows]),
        test=split(test_features, test.relevance, test.groups),
        description=(
            f"real data: LightGBM examples/lambdarank from {root} (rank.train: "
            f"{int(train.groups.max()) + 1} queries, {train.features.shape[0]} rows; rank.test: "
            f"{int(test.groups.max()) + 1} queries, {test.features.shape[0]} rows); validation = "
            f"{valid_fraction:g} of the training queries (seed {seed})"
        ),
        metadata={
            "valid_fraction": valid_fraction,
            "standardized": standardize,
            "objective": objective,
            "encoder": encoder,
            "input_format": InputFormat(
                "letor", {"n_features": LAMBDARANK_FEATURES, "zero_based": False}
            ),
        },
    )


def _read_example(root: Path) -> tuple[RankingArrays, RankingArrays]:
    """``rank.train`` and ``rank.test`` of the folder, with their ``.query`` group sizes."""
    if not root.is_dir():
        raise DataError(
            f"{root}: directory not found; pass the folder holding rank.train, rank.test and "
            "their .query files"
        )
    train, test = (
        load_svmlight_ranking(
            root / name,
            query_path=root / f"{name}.query",
            n_features=LAMBDARANK_FEATURES,
            zero_based=False,
        )
        for name in ("rank.train", "rank.test")
    )
    return train, test
