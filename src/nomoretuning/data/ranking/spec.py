"""`PairwiseSpec`: how a ranking dataset's tasks are trained and scored, as plain data.

The ranking builders store one in ``metadata["objective"]``; the training layer
(`nomoretuning.training.objectives.objective_for`) builds the pairwise objective from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from nomoretuning.checks import one_of, optional_positive_int, positive_int
from nomoretuning.errors import DataError

__all__ = ["GAINS", "RANKING_LOSSES", "Gain", "PairMaskRule", "PairwiseSpec", "RankingLoss"]

PairMaskRule = Literal["positive"]
"""Which rows of a task form pairs: ``"positive"``, the rows with a label > 0."""

Gain = Literal["exponential", "linear"]
"""NDCG gain of a task: ``2**label - 1`` or ``label``."""
GAINS: tuple[Gain, ...] = ("exponential", "linear")
"""Every `Gain`."""

RankingLoss = Literal["pairwise", "softmax"]
"""The training loss of a ranking task: ``"pairwise"`` logistic (RankNet) on its pairs, or the
listwise ``"softmax"`` cross-entropy over the items of each query (ListNet)."""
RANKING_LOSSES: tuple[RankingLoss, ...] = ("pairwise", "softmax")
"""Every `RankingLoss`."""


@dataclass(frozen=True)
class PairwiseSpec:
    """The ranking objective of a dataset: pair masks, NDCG gains, pair cap, NDCG cut-off, loss.

    Args:
        pair_masks: task -> ``"positive"`` (only rows with label > 0 form pairs); other tasks
            pair all their rows.
        gains: task -> NDCG gain (``"exponential"`` for tasks not named, ``"linear"`` for amounts).
        max_pairs_per_group: optional cap of sampled pairs per group and task in each batch.
        k: the cut-off of NDCG@k.
        loss: the training loss of every task, ``"pairwise"`` (default) or ``"softmax"`` (see
            `RankingLoss`; the pair cap applies to the pairwise loss only).

    Raises:
        DataError: a cap or ``k`` that is not a positive integer, an unknown loss, a cap with
            the softmax loss.

    Example:
        >>> spec = PairwiseSpec({"amount": "positive"}, {"amount": "linear"}, max_pairs_per_group=8)
        >>> spec.pair_masks["amount"], spec.gains["amount"], spec.max_pairs_per_group, spec.k
        ('positive', 'linear', 8, 10)
        >>> PairwiseSpec().loss, PairwiseSpec(loss="softmax").loss
        ('pairwise', 'softmax')
    """

    pair_masks: Mapping[str, PairMaskRule] = field(default_factory=dict)
    gains: Mapping[str, Gain] = field(default_factory=dict)
    max_pairs_per_group: int | None = None
    k: int = 10
    loss: RankingLoss = "pairwise"

    def __post_init__(self) -> None:
        optional_positive_int(self.max_pairs_per_group, "max_pairs_per_group", error=DataError)
        positive_int(self.k, "ndcg_k", error=DataError)
        one_of(self.loss, "loss", RANKING_LOSSES, error=DataError)
        if self.loss != "pairwise" and self.max_pairs_per_group is not None:
            raise DataError(
                f"max_pairs_per_group caps the pairs of the pairwise loss; the {self.loss!r} "
                "loss has no pairs to cap"
            )
