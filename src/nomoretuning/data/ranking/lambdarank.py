"""LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset` of `GroupedSplit`s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nomoretuning.checks import optional_path
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.encoders import DenseTransform
from nomoretuning.data.ranking.letor import load_letor
from nomoretuning.data.ranking.spec import RankingLoss
from nomoretuning.errors import DataError

__all__ = ["LAMBDARANK_FEATURES", "load_lambdarank_example"]

LAMBDARANK_FEATURES = 300
"""Number of features of LightGBM's lambdarank example (file indices 1..300 -> f0..f299)."""


def load_lambdarank_example(
    directory: str | Path,
    *,
    valid_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    feature_transform: DenseTransform = "none",
    tasks: Sequence[str] | None = None,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
    loss: RankingLoss = "pairwise",
) -> PreparedDataset:
    """LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset` of `GroupedSplit`s.

    `load_letor` on ``rank.train`` / ``rank.test`` with their ``.query`` group-size files
    (300 features, one-based indices 1..300 -> dense columns ``f0 .. f299``, graded relevance
    0..4 as task ``relevance``; its one single-item query is kept, ``min_query_size=1``). The
    validation split is ``round(valid_fraction * 201)`` whole training queries chosen by
    ``numpy.random.default_rng(seed)``; the test split is ``rank.test``. With ``standardize``,
    features are centred and scaled with the training part's mean and standard deviation (a
    `DenseScaler`: constant columns are only centred), after ``feature_transform``
    (``"log1p"``: the signed ``log(1 + |x|)`` of every feature, the usual transform of LETOR's
    heavy-tailed counts; default ``"none"``). Group ids are the query's position in its file
    (train and valid share ``rank.train``'s numbering).

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
    optional_path(directory, "directory", error=DataError)
    root = Path(directory)
    if not root.is_dir():
        raise DataError(
            f"{root}: directory not found; pass the folder holding rank.train, rank.test and "
            "their .query files"
        )
    data = load_letor(
        train=root / "rank.train",
        test=root / "rank.test",
        valid_fraction=valid_fraction,
        seed=seed,
        n_features=LAMBDARANK_FEATURES,
        zero_based=False,
        min_query_size=1,
        standardize=standardize,
        feature_transform=feature_transform,
        tasks=tasks,
        max_pairs_per_group=max_pairs_per_group,
        ndcg_k=ndcg_k,
        loss=loss,
        name="lambdarank",
    )
    data.description = f"real data: LightGBM examples/lambdarank from {root}; {data.description}"
    return data
