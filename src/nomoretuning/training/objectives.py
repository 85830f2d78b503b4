"""Task objectives: the training loss of each task and its evaluation metrics.

The trainer is written against the small ``Objective`` protocol, so binary click-through tasks
(`BinaryObjective`) and pairwise learning-to-rank tasks on one score (`PairwiseObjective`) use the
same training loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nomoretuning.checks import one_of, optional_positive_int, positive_int, task_names
from nomoretuning.core.losses import (
    make_pairs,
    pairwise_logistic_loss,
    softmax_cross_entropy_loss,
)
from nomoretuning.data.batching import Batch, PreparedDataset
from nomoretuning.data.ranking.spec import (
    GAINS,
    RANKING_LOSSES,
    Gain,
    PairwiseSpec,
    RankingLoss,
)
from nomoretuning.errors import ConfigError, DataError
from nomoretuning.training import metrics

__all__ = [
    "BinaryObjective",
    "Objective",
    "PairMask",
    "PairwiseObjective",
    "objective_for",
    "objective_from_spec",
]

EVALUATION_PAIRS = 1 << 22
"""At most this many pairs are built at once when a whole split's pairwise loss is evaluated
(about 100 MB); a group with more pairs is evaluated on its own."""

PairMask = Literal["positive"] | Callable[[Tensor], Tensor]
"""Which rows of a task may form pairs: ``"positive"`` (label > 0) or a function label -> bool."""


class Objective(Protocol):
    """Per-task losses for training and metrics for evaluation."""

    tasks: tuple[str, ...]
    selection_metric: str
    """The validation metric (higher is better) used for early stopping and selection."""

    def losses(self, logits: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        """One scalar training loss per task, averaged over the batch."""
        ...

    def evaluate(
        self,
        logits: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None,
    ) -> dict[str, dict[str, float]]:
        """Metrics per task on a split: ``{task: {metric: value}}``, with ``loss`` among them."""
        ...

    def difference(
        self,
        task: str,
        labels: np.ndarray,
        scores_a: np.ndarray,
        scores_b: np.ndarray,
        groups: np.ndarray | None,
    ) -> tuple[float, float]:
        """``task``'s selection metric with ``scores_a`` minus with ``scores_b`` on the same
        rows, and the standard error of that paired difference."""
        ...

    def constant_score(self, task: str, labels: Tensor) -> float:
        """The score (logit) of the best constant prediction of ``task`` on these labels: its loss
        is the baseline that NMT's reducible tolerance measures what was learned against."""
        ...


class BinaryObjective:
    """Binary cross-entropy on logits (mean over the batch) for every task.

    Metrics: ``auc``, ``logloss`` (= the validation ``loss``), and ``gauc`` when the split has
    group ids (per-user AUC weighted by rows, single-class users skipped).

    Example:
        >>> import torch
        >>> from nomoretuning.data.batching import Batch
        >>> obj = BinaryObjective(["click"])
        >>> batch = Batch(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 0),
        ...               {"click": torch.tensor([0.0, 1.0])})
        >>> round(float(obj.losses({"click": torch.zeros(2)}, batch)["click"]), 4)
        0.6931
    """

    selection_metric = "auc"

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = tuple(tasks)

    def losses(self, logits: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        return {
            t: F.binary_cross_entropy_with_logits(logits[t], batch.labels[t].to(logits[t].dtype))
            for t in self.tasks
        }

    def constant_score(self, task: str, labels: Tensor) -> float:
        """``logit(mean label)``: the base rate (its loss is the label entropy).

        Example:
            >>> round(BinaryObjective(["a"]).constant_score("a", torch.tensor([1.0, 0, 0, 0])), 4)
            -1.0986
        """
        rate = float(labels.double().mean()) if labels.numel() else 0.5
        rate = min(max(rate, 1e-6), 1 - 1e-6)
        return math.log(rate / (1 - rate))

    def evaluate(
        self,
        logits: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None,
    ) -> dict[str, dict[str, float]]:
        result: dict[str, dict[str, float]] = {}
        for task in self.tasks:
            y, s = labels[task], logits[task]
            loss = metrics.logloss(y, s)
            values = {"auc": _safe_auc(y, s), "logloss": loss, "loss": loss}
            if groups is not None:
                values["gauc"] = metrics.gauc(y, s, groups)
            result[task] = values
        return result

    def difference(
        self,
        task: str,
        labels: np.ndarray,
        scores_a: np.ndarray,
        scores_b: np.ndarray,
        groups: np.ndarray | None,
    ) -> tuple[float, float]:
        """AUC(a) − AUC(b) and DeLong's standard error (`metrics.auc_difference`); NaN, NaN
        without two rows of each class."""
        positives = int(np.count_nonzero(labels == 1))
        if min(positives, labels.size - positives) < 2:
            return math.nan, math.nan
        return metrics.auc_difference(labels, scores_a, scores_b)


def _safe_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    if np.unique(labels).size < 2:
        return math.nan
    return metrics.auc(labels, scores)


class PairwiseObjective:
    """The pairwise logistic (RankNet) loss of every task on one shared score, ranking metrics.

    For the NMT paper's online setting (its equation 10): a single-score model gives the same logit
    ``s`` to every task, and task t's loss is ``mean over its pairs (i, j) of log(1 + exp(-(s_i -
    s_j)))``. Task t's pairs are the (i, j) of one group (query) with ``label_t[i] > label_t[j]``
    (equal labels form no pair), among the rows its *pair mask* keeps, built with tensor operations
    by `nomoretuning.core.losses.make_pairs`. Batches of a `GroupedSplit` never split a group, so
    the pairs of a batch are all the pairs of its groups.

    ``loss="softmax"`` trains every task with the listwise softmax cross-entropy instead
    (`nomoretuning.core.losses.softmax_cross_entropy_loss`): per group, ``-sum_i y'_i log
    softmax(s)_i`` over the rows the task's pair mask keeps, with ``y'`` the task's NDCG gain
    normalised to sum 1 in the group, averaged over the groups of the batch with a relevant item
    (groups whose gains are all 0 are skipped). It has no pairs, so no ``max_pairs_per_group``.

    Pair sampling: ``max_pairs_per_group=m`` keeps, for each task and each group of a batch,
    ``min(m, P_g)`` of its ``P_g`` pairs, drawn uniformly without replacement; fresh pairs are drawn
    for every batch (once per batch object: the recomputation on the same batch that FAMO's
    ``closure`` asks for reuses them). ``seed=None`` draws from torch's global generator (seeded by
    the trainer and saved in its checkpoints, so a resumed run draws the same pairs); an integer
    gives the objective its own CPU generator. ``None`` (default) keeps every pair.

    Metrics of `evaluate`, per task, on a whole split (groups never split):

    - ``ndcg``: mean NDCG@k over groups (``k=10``), gain ``2**label - 1`` (``"exponential"``,
      default) or ``label`` (``"linear"``, for continuous labels such as amounts; per task with a
      mapping). Every row takes part (for an amount task the unpurchased rows have gain 0). A
      group with no relevant item (all labels 0) has no ordering to score and is left out of the
      mean (``no_relevant="skip"``; ``"zero"`` scores it 0 as scikit-learn, ``"one"`` 1 as
      LightGBM). This is the ``selection_metric``.
    - ``pairwise_accuracy``: fraction of the task's pairs (same groups, same mask as the loss) in
      the right order, ties counting 1/2, averaged over groups.
    - ``loss``: the training loss's definition on the whole split: the mean pairwise logistic loss
      over its pairs; with ``max_pairs_per_group=m`` its exact expectation over the sampling, the
      mean of the per-group mean losses weighted by ``min(m, P_g)``. NaN when the split has no pair.
      With ``loss="softmax"``: the mean softmax cross-entropy over the split's groups with a
      relevant item (NaN when there is none).

    Args:
        tasks: task names (all read the same score under their own key of the logits).
        pair_masks: per task, ``"positive"`` (only rows with label > 0 form pairs, e.g. the
            purchased rows for a payment-amount task) or a function from the task's label tensor
            to a bool mask. Tasks not named use every row.
        max_pairs_per_group: optional positive cap of pairs per group and task (see above).
        seed: seed of the pair sampling (see above).
        k: the cut-off of NDCG@k.
        gain: NDCG gain, one for every task or a mapping task -> gain (default exponential).
        no_relevant: what NDCG does with groups without a relevant item (default ``"skip"``).
        loss: the training loss, ``"pairwise"`` (default) or ``"softmax"`` (see above).

    Example:
        >>> import torch
        >>> from nomoretuning.data.batching import Batch
        >>> obj = PairwiseObjective(["pay", "amount"], pair_masks={"amount": "positive"})
        >>> y = {"pay": torch.tensor([1.0, 0.0, 1.0]), "amount": torch.tensor([30.0, 0.0, 10.0])}
        >>> batch = Batch(torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, 0), y,
        ...               torch.tensor([0, 0, 0]))
        >>> s = torch.tensor([2.0, 0.0, 1.0])
        >>> {t: round(float(v), 4) for t, v in obj.losses({"pay": s, "amount": s}, batch).items()}
        {'pay': 0.2201, 'amount': 0.3133}
        >>> out = obj.evaluate({"pay": s.numpy(), "amount": s.numpy()},
        ...                    {t: v.numpy() for t, v in y.items()}, batch.groups.numpy())
        >>> out["amount"]["pairwise_accuracy"], round(out["pay"]["ndcg"], 4)
        (1.0, 1.0)
        >>> listwise = PairwiseObjective(["pay"], loss="softmax")  # -(log p_0 + log p_2) / 2
        >>> round(float(listwise.losses({"pay": s}, batch)["pay"]), 4)
        0.9076
    """

    selection_metric = "ndcg"

    def __init__(
        self,
        tasks: Sequence[str],
        *,
        pair_masks: Mapping[str, PairMask] | None = None,
        max_pairs_per_group: int | None = None,
        seed: int | None = None,
        k: int = 10,
        gain: Gain | Mapping[str, Gain] = "exponential",
        no_relevant: metrics.NoRelevant = "skip",
        loss: RankingLoss = "pairwise",
    ) -> None:
        self.tasks = task_names(tasks, "PairwiseObjective: tasks")
        self.loss: RankingLoss = one_of(loss, "PairwiseObjective: loss", RANKING_LOSSES)
        masks = dict(pair_masks or {})
        for task, rule in masks.items():
            one_of(task, "PairwiseObjective: a task of pair_masks", self.tasks)
            if rule != "positive" and not callable(rule):
                raise ConfigError(
                    f"PairwiseObjective: pair_masks[{task!r}] must be 'positive' or a function "
                    f"label -> bool mask, got {rule!r}"
                )
        self.pair_masks: dict[str, PairMask] = masks
        self.max_pairs_per_group = optional_positive_int(
            max_pairs_per_group, "PairwiseObjective: max_pairs_per_group"
        )
        if self.loss != "pairwise" and self.max_pairs_per_group is not None:
            raise ConfigError(
                "PairwiseObjective: max_pairs_per_group caps the pairs of the pairwise loss; "
                f"the {self.loss!r} loss has no pairs to cap"
            )
        self.k = positive_int(k, "PairwiseObjective: k")
        gains = dict.fromkeys(self.tasks, gain) if isinstance(gain, str) else dict(gain)
        for task, value in gains.items():
            one_of(task, "PairwiseObjective: a task of gain", self.tasks)
            one_of(value, "PairwiseObjective: gain", GAINS)
        self.gains: dict[str, Gain] = {t: gains.get(t, "exponential") for t in self.tasks}
        one_of(no_relevant, "PairwiseObjective: no_relevant", ("skip", "zero", "one"))
        self.no_relevant: metrics.NoRelevant = no_relevant
        self.seed = seed
        self._generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        self._cached_batch: Batch | None = None
        self._cached_pairs: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def generator(self) -> torch.Generator | None:
        """The pair sampler's own generator (None with ``seed=None``); checkpoints keep it."""
        return self._generator

    def __repr__(self) -> str:
        return (
            f"PairwiseObjective(tasks={list(self.tasks)}, pair_masks={sorted(self.pair_masks)}, "
            f"max_pairs_per_group={self.max_pairs_per_group}, k={self.k}, loss={self.loss!r})"
        )

    def mask(self, task: str, labels: Tensor) -> Tensor | None:
        """The rows of ``task`` that may form pairs (None: every row)."""
        rule = self.pair_masks.get(task)
        if rule is None:
            return None
        keep = labels > 0 if rule == "positive" else rule(labels)
        if not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.shape != labels.shape:
            raise ValueError(
                f"PairwiseObjective: the pair mask of task {task!r} must return a bool tensor of "
                f"shape {tuple(labels.shape)}"
            )
        return keep

    def pairs(self, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        """Each task's ``(first, second)`` rows in ``batch`` (drawn once per batch object)."""
        if batch is not self._cached_batch:
            self._cached_pairs = {
                task: make_pairs(
                    batch.labels[task],
                    batch.groups,
                    mask=self.mask(task, batch.labels[task]),
                    max_pairs_per_group=self.max_pairs_per_group,
                    generator=self._generator,
                )
                for task in self.tasks
            }
            self._cached_batch = batch
        return self._cached_pairs

    def losses(self, logits: Mapping[str, Tensor], batch: Batch) -> dict[str, Tensor]:
        """Mean pairwise logistic loss of each task over its pairs in the batch (0 with none);
        with ``loss="softmax"``, its mean softmax cross-entropy over the batch's groups."""
        if self.loss == "softmax":
            return {
                t: self._softmax_loss(logits[t], batch.labels[t], batch.groups, t)
                for t in self.tasks
            }
        pairs = self.pairs(batch)
        return {
            t: pairwise_logistic_loss(logits[t], batch.labels[t], pairs=pairs[t])
            for t in self.tasks
        }

    def _softmax_loss(
        self, scores: Tensor, labels: Tensor, groups: Tensor | None, task: str
    ) -> Tensor:
        """The softmax cross-entropy of ``task`` over the rows its pair mask keeps."""
        keep = self.mask(task, labels)
        if keep is not None:
            scores, labels = scores[keep], labels[keep]
            groups = None if groups is None else groups[keep]
        return softmax_cross_entropy_loss(scores, labels, groups, gain=self.gains[task])

    def constant_score(self, task: str, labels: Tensor) -> float:
        """0: a constant score ties every pair (loss ``log 2`` per pair); for the softmax loss
        any constant is the uniform distribution over each group, so 0 as well."""
        return 0.0

    def evaluate(
        self,
        logits: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None,
    ) -> dict[str, dict[str, float]]:
        """``{task: {"ndcg", "pairwise_accuracy", "loss"}}`` on a whole split (see the class)."""
        result: dict[str, dict[str, float]] = {}
        for task in self.tasks:
            y = np.asarray(labels[task], dtype=np.float64)
            s = np.asarray(logits[task], dtype=np.float64)
            g = np.zeros(y.size, dtype=np.int64) if groups is None else np.asarray(groups)
            if self.gains[task] == "exponential" and y.size and float(y.max()) > 60:
                raise DataError(
                    f"task {task!r}: labels up to {float(y.max()):g} overflow the exponential "
                    "NDCG gain 2**label - 1; use gain 'linear' for this task (e.g. amounts)"
                )
            keep_t = self.mask(task, torch.from_numpy(y))
            keep = None if keep_t is None else keep_t.numpy()
            ndcg = metrics.ndcg_at_k(y, s, g, self.k, self.gains[task], self.no_relevant)
            rows = slice(None) if keep is None else keep
            accuracy = (
                metrics.pairwise_accuracy(y[rows], s[rows], g[rows]) if y[rows].size else math.nan
            )
            loss = self._split_loss(y, s, g, keep_t, task)
            result[task] = {"ndcg": ndcg, "pairwise_accuracy": accuracy, "loss": loss}
        return result

    def difference(
        self,
        task: str,
        labels: np.ndarray,
        scores_a: np.ndarray,
        scores_b: np.ndarray,
        groups: np.ndarray | None,
    ) -> tuple[float, float]:
        """NDCG@k(a) − NDCG@k(b) as `evaluate` computes it, and its standard error paired over
        the groups (`metrics.ndcg_difference`)."""
        y = np.asarray(labels, dtype=np.float64)
        g = np.zeros(y.size, dtype=np.int64) if groups is None else np.asarray(groups)
        return metrics.ndcg_difference(
            y, scores_a, scores_b, g, self.k, self.gains[task], self.no_relevant
        )

    def _split_loss(
        self, y: np.ndarray, s: np.ndarray, g: np.ndarray, keep: Tensor | None, task: str
    ) -> float:
        labels = torch.from_numpy(y)
        _, codes = np.unique(g, return_inverse=True)
        group = torch.from_numpy(codes.reshape(-1).astype(np.int64))
        if self.loss == "softmax":
            scores = torch.from_numpy(s)
            if keep is not None:
                scores, labels, group = scores[keep], labels[keep], group[keep]
            per_group = softmax_cross_entropy_loss(
                scores, labels, group, gain=self.gains[task], reduction="none"
            )
            return float(per_group.mean()) if per_group.numel() else math.nan
        return self._pairwise_split_loss(y, s, codes.reshape(-1).astype(np.int64), keep)

    def _pairwise_split_loss(
        self, y: np.ndarray, s: np.ndarray, codes: np.ndarray, keep: Tensor | None
    ) -> float:
        """The pairwise split loss, its pairs built a few whole groups at a time: at most
        `EVALUATION_PAIRS` pairs at once (a bigger group on its own), so memory stays bounded
        whatever the split's size."""
        rows = np.arange(y.size) if keep is None else np.flatnonzero(keep.numpy())
        n_groups = int(codes.max()) + 1 if codes.size else 0
        if rows.size == 0:
            return math.nan
        rows = rows[np.argsort(codes[rows], kind="stable")]  # rows of one group are contiguous
        g, label = codes[rows], y[rows]
        # pairs of a group: (n^2 - sum over its label values of count^2) / 2, without making them
        _, pair_key = np.unique(np.stack([g, label]), axis=1, return_inverse=True)
        per_value = np.bincount(pair_key.reshape(-1))
        value_group = np.zeros(per_value.size, dtype=np.int64)
        value_group[pair_key.reshape(-1)] = g
        size = np.bincount(g, minlength=n_groups).astype(np.float64)
        square = np.bincount(
            value_group, weights=per_value.astype(np.float64) ** 2, minlength=n_groups
        )
        pairs = (size**2 - square) / 2
        group_end = np.cumsum(size).astype(np.int64)
        totals = torch.zeros(n_groups, dtype=torch.float64)
        counts = torch.zeros(n_groups, dtype=torch.float64)
        start, first_group = 0, 0
        budget = np.cumsum(pairs)
        while first_group < n_groups:
            limit = (budget[first_group - 1] if first_group else 0.0) + EVALUATION_PAIRS
            last = max(int(np.searchsorted(budget, limit, side="right")), first_group + 1)
            stop = int(group_end[last - 1])
            part = rows[start:stop]
            labels = torch.from_numpy(y[part])
            group = torch.from_numpy(codes[part])
            first, second = make_pairs(labels, group)
            if first.numel():
                scores = torch.from_numpy(s[part]).to(torch.float64)
                losses = F.softplus(scores[second] - scores[first])
                local = group[first] - first_group  # this piece's groups: first_group .. last-1
                width = last - first_group
                totals[first_group:last] += torch.bincount(local, weights=losses, minlength=width)
                counts[first_group:last] += torch.bincount(local, minlength=width).double()
            start, first_group = stop, last
        if float(counts.sum()) == 0:
            return math.nan
        if self.max_pairs_per_group is None:
            return float(totals.sum() / counts.sum())
        weights = counts.clamp(max=float(self.max_pairs_per_group))
        means = totals / counts.clamp(min=1.0)
        return float((weights * means).sum() / weights.sum())


def objective_for(dataset: PreparedDataset, tasks: Sequence[str]) -> Objective:
    """The objective a dataset is trained with: binary cross-entropy with AUC, or the pairwise
    objective its `PairwiseSpec` in ``metadata["objective"]`` describes (ranking datasets).

    Example:
        >>> from nomoretuning.data import make_search_logs, make_synthetic
        >>> type(objective_for(make_synthetic(500, seed=0), ["click"])).__name__
        'BinaryObjective'
        >>> objective = objective_for(make_search_logs(20, 5, seed=0), ["pay", "amount"])
        >>> objective.pair_masks, objective.gains
        ({'amount': 'positive'}, {'pay': 'exponential', 'amount': 'linear'})
    """
    spec = dataset.metadata.get("objective")
    return objective_from_spec(spec if isinstance(spec, PairwiseSpec) else None, tasks)


def objective_from_spec(spec: PairwiseSpec | None, tasks: Sequence[str]) -> Objective:
    """`BinaryObjective` without a spec; else the `PairwiseObjective` of ``spec`` on ``tasks``:
    the pair masks of the selected tasks (the others' are dropped), their NDCG gains (exponential
    unless the spec names one), the spec's pair cap and NDCG cut-off.

    Example:
        >>> type(objective_from_spec(None, ["click"])).__name__
        'BinaryObjective'
    """
    if spec is None:
        return BinaryObjective(tasks)
    names = tuple(tasks)
    return PairwiseObjective(
        names,
        pair_masks={t: m for t, m in spec.pair_masks.items() if t in names},
        max_pairs_per_group=spec.max_pairs_per_group,
        k=spec.k,
        gain={t: spec.gains.get(t, "exponential") for t in names},
        loss=spec.loss,
    )
