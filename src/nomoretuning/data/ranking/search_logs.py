"""`make_search_logs`: synthetic search sessions with tasks ``pay``, ``amount``, ``relevance`` (the
NMT paper's Taobao setting), whose conflicts are set by documented knobs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from nomoretuning.checks import fraction, is_integer, positive_int, positive_number, task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.ranking.grouped import GroupedSplit, split_groups
from nomoretuning.data.ranking.spec import PairwiseSpec
from nomoretuning.data.splits import check_fractions
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig

__all__ = ["SEARCH_LOG_TASKS", "make_search_logs"]

SEARCH_LOG_TASKS = ("pay", "amount", "relevance")
"""Tasks of `make_search_logs`, in the NMT paper's priority order."""

_SPLITS = ("train", "valid", "test")


def make_search_logs(
    n_queries: int = 2000,
    items_per_query: int | tuple[int, int] = 20,
    *,
    seed: int = 0,
    conflict: float = 0.5,
    price_effect: float = 1.0,
    n_features: int = 8,
    signal: float = 2.0,
    pay_rate: float = 0.05,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    tasks: Sequence[str] | None = None,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
) -> PreparedDataset:
    """Synthetic search logs (the NMT paper's Taobao setting) with documented trade-offs.

    SYNTHETIC data. For query q and each of its items (a row):

    - features ``x ~ N(0, I_d)`` (columns ``x0 .. x{d-1}``) and ``log_price ~ N(0, 1)``;
    - purchase utility ``u_pay = signal * w_pay . x - price_effect * log_price`` and
      ``pay ~ Bernoulli(sigmoid(u_pay + b_q + logit(pay_rate)))`` with a query intent
      ``b_q ~ N(0, 0.5^2)``;
    - ``amount`` = payment amount ``exp(3 + 0.8 * log_price + 0.3 * noise)`` if purchased,
      else exactly 0: it rises with the price that lowers the purchase probability;
    - relevance latent ``z = signal * w_rel . x + N(0, 1)`` cut at its 40 / 70 / 90 % quantiles
      into graded ``relevance`` 0..3, with ``w_rel = cos(pi c) w_pay + sin(pi c) u`` (unit
      vectors, ``u`` orthogonal to ``w_pay``, ``c = conflict``).

    Trade-offs, exactly: ``corr(u_pay, z) = signal^2 cos(pi c) / sqrt((signal^2 +
    price_effect^2)(signal^2 + 1))``: relevance agrees with purchase at ``conflict=0``, is
    unrelated at 0.5 and opposed at 1 (``metadata["utility_correlation"]``). ``price_effect`` sets
    the pay-amount conflict: ``corr(u_pay, log amount) = -0.8 price_effect / sqrt((signal^2 +
    price_effect^2) * 0.73)`` (before selecting the purchases).

    Amount encoding: the ``amount`` label is the amount for purchased rows and 0 otherwise, so
    the purchased rows are exactly ``amount > 0``. As in the paper (pairs of high- vs low-value
    transactions), amount pairs are formed among purchased rows only:
    ``make_pairs(amount, groups, mask=amount > 0)`` (``metadata["pair_masks"]["amount"]`` is
    ``"positive"``: rows with a label > 0).

    Objective: ``metadata["objective"]`` is a `PairwiseSpec` (pairwise logistic loss per task,
    amount pairs among purchases, all pairs or ``max_pairs_per_group`` sampled ones per query and
    batch; NDCG@``ndcg_k`` with exponential gain for pay and relevance, linear gain for amount).

    Splits: whole queries, ``numpy.random.default_rng(seed)`` permutation cut by ``split``.
    Every split is a `GroupedSplit` with ``sparse`` ``[N, 0]``; groups are query ids.
    ``metadata["true_utility"][split]`` holds ``pay`` (``u_pay``) and ``relevance`` (``z``
    without its noise) per row.

    Raises:
        DataError: an argument outside its documented range, or unknown tasks.

    Args:
        n_queries: number of queries (search sessions).
        items_per_query: items shown per query, or an inclusive ``(low, high)`` range drawn
            uniformly per query.
        seed: seed of everything.
        conflict: in [0, 1], the angle between ``w_pay`` and ``w_rel`` is ``conflict * 180``
            degrees.
        price_effect: >= 0, how much a higher price lowers the purchase utility.
        n_features: dimension d of ``x``.
        signal: scale of the feature utilities.
        pay_rate: base purchase rate (its logit is the bias; the realised rate is higher).
        split: (train, valid, test) fractions of queries.
        tasks: subset of ``("pay", "amount", "relevance")`` in priority order (default all).
        max_pairs_per_group: optional cap of sampled training pairs per query, batch and task.
        ndcg_k: the cut-off of the NDCG@k metric.

    Example:
        >>> ds = make_search_logs(100, 10, seed=0)
        >>> ds.tasks, len(ds.train), ds.features.num_dense
        (('pay', 'amount', 'relevance'), 800, 9)
        >>> y = ds.train.labels
        >>> bool(((y["amount"] > 0) == (y["pay"] == 1)).all())
        True
    """
    chosen = SEARCH_LOG_TASKS if tasks is None else (tasks,) if isinstance(tasks, str) else tasks
    names = task_names(chosen, "tasks", available=SEARCH_LOG_TASKS, error=DataError)
    simulator = _Simulator(
        n_queries=positive_int(n_queries, "n_queries", error=DataError),
        items_per_query=_items_range(items_per_query),
        conflict=fraction(conflict, "conflict", allow_one=True, error=DataError),
        price_effect=positive_number(
            price_effect, "price_effect", allow_zero=True, error=DataError
        ),
        n_features=_feature_count(n_features),
        signal=positive_number(signal, "signal", error=DataError),
        pay_rate=fraction(pay_rate, "pay_rate", allow_zero=False, error=DataError),
    )
    fractions = check_fractions(split)
    masks: dict[str, Literal["positive"]] = {"amount": "positive"} if "amount" in names else {}
    objective = PairwiseSpec(
        pair_masks=masks,
        gains={"amount": "linear"},
        max_pairs_per_group=max_pairs_per_group,
        k=ndcg_k,
    )
    logs = simulator.simulate(seed)
    parts = dict(zip(_SPLITS, split_groups(logs.groups, fractions, seed), strict=True))
    splits = {part: logs.split(rows, names) for part, rows in parts.items()}
    return PreparedDataset(
        name="search_logs",
        tasks=names,
        features=FeatureConfig(dense=(*(f"x{j}" for j in range(n_features)), "log_price")),
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=(
            f"synthetic search logs: {n_queries} queries, {logs.groups.size} items, "
            f"conflict={simulator.conflict:g}, price_effect={simulator.price_effect:g}, "
            f"seed={seed}"
        ),
        metadata={
            "conflict": simulator.conflict,
            "price_effect": simulator.price_effect,
            "utility_correlation": simulator.utility_correlation(),
            "pair_masks": masks,
            "objective": objective,
            "true_utility": {part: logs.true_utility(rows) for part, rows in parts.items()},
            "weights": {"pay": logs.w_pay, "relevance": logs.w_rel},
            "input_format": InputFormat("encoded", {"group": "query"}),
        },
    )


def _items_range(items_per_query: int | tuple[int, int]) -> tuple[int, int]:
    """``(low, high)``, the inclusive range of items per query."""
    bounds = (
        (items_per_query, items_per_query)
        if isinstance(items_per_query, int)
        else tuple(items_per_query)
    )
    if (
        len(bounds) != 2
        or not all(is_integer(b) for b in bounds)
        or not 1 <= bounds[0] <= bounds[1]
    ):
        raise DataError(
            f"items_per_query must be a positive integer or a (low, high) range, "
            f"got {items_per_query!r}"
        )
    return bounds[0], bounds[1]


def _feature_count(n_features: int) -> int:
    if not is_integer(n_features) or n_features < 2:
        raise DataError(f"n_features must be an integer >= 2, got {n_features!r}")
    return n_features


class _SearchLogs(NamedTuple):
    """Every row of the simulated logs (all tasks), with the true utilities and weights."""

    groups: np.ndarray
    """int64 ``[N]`` query ids."""
    dense: np.ndarray
    """float32 ``[N, d + 1]``: the features ``x`` then ``log_price``."""
    labels: dict[str, np.ndarray]
    """float32 ``[N]`` per task."""
    u_pay: np.ndarray
    u_rel: np.ndarray
    w_pay: np.ndarray
    w_rel: np.ndarray

    def split(self, rows: np.ndarray, tasks: Sequence[str]) -> GroupedSplit:
        """The rows ``rows`` with the labels of ``tasks``."""
        return GroupedSplit.from_numpy(
            np.zeros((rows.size, 0), dtype=np.int64),
            self.dense[rows],
            {t: self.labels[t][rows] for t in tasks},
            self.groups[rows],
        )

    def true_utility(self, rows: np.ndarray) -> dict[str, Tensor]:
        """``u_pay`` and ``u_rel`` (relevance without its noise) of the rows ``rows``."""
        return {
            "pay": torch.from_numpy(self.u_pay[rows].astype(np.float32)),
            "relevance": torch.from_numpy(self.u_rel[rows].astype(np.float32)),
        }


@dataclass(frozen=True)
class _Simulator:
    """The generative model of `make_search_logs`, with checked knobs (see its docstring)."""

    n_queries: int
    items_per_query: tuple[int, int]
    conflict: float
    price_effect: float
    n_features: int
    signal: float
    pay_rate: float

    @property
    def angle(self) -> float:
        """The angle between ``w_pay`` and ``w_rel``, in radians."""
        return math.pi * self.conflict

    @property
    def relevance_scale(self) -> float:
        """The standard deviation of the relevance latent ``z``."""
        return math.sqrt(self.signal**2 + 1.0)

    def simulate(self, seed: int) -> _SearchLogs:
        """All rows, drawn from ``numpy.random.default_rng(seed)`` in a fixed order."""
        rng = np.random.default_rng(seed)
        w_pay, w_rel = self._weights(rng)
        low, high = self.items_per_query
        sizes = rng.integers(low, high + 1, size=self.n_queries)
        groups = np.repeat(np.arange(self.n_queries, dtype=np.int64), sizes)
        n = int(groups.size)
        x = rng.standard_normal((n, self.n_features))
        log_price = rng.standard_normal(n)
        u_pay = self.signal * (x @ w_pay) - self.price_effect * log_price
        pay = self._purchases(rng, u_pay, groups)
        amount = np.exp(3.0 + 0.8 * log_price + 0.3 * rng.standard_normal(n)) * pay
        u_rel = self.signal * (x @ w_rel)
        relevance = self._graded_relevance(rng, u_rel)
        dense = np.concatenate([x, log_price[:, None]], axis=1).astype(np.float32)
        labels = {"pay": pay, "amount": amount.astype(np.float32), "relevance": relevance}
        return _SearchLogs(groups, dense, labels, u_pay, u_rel, w_pay, w_rel)

    def _weights(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors ``w_pay`` and ``w_rel`` at ``angle`` from each other."""
        basis, _ = np.linalg.qr(rng.standard_normal((self.n_features, 2)))
        w_rel = math.cos(self.angle) * basis[:, 0] + math.sin(self.angle) * basis[:, 1]
        return basis[:, 0], w_rel

    def _purchases(
        self, rng: np.random.Generator, u_pay: np.ndarray, groups: np.ndarray
    ) -> np.ndarray:
        """float32 0/1 ``pay ~ Bernoulli(sigmoid(u_pay + b_q + logit(pay_rate)))``."""
        intent = rng.normal(0.0, 0.5, size=self.n_queries)[groups]
        bias = math.log(self.pay_rate / (1.0 - self.pay_rate))
        probability = 1.0 / (1.0 + np.exp(-(u_pay + intent + bias)))
        return (rng.random(u_pay.size) < probability).astype(np.float32)

    def _graded_relevance(self, rng: np.random.Generator, u_rel: np.ndarray) -> np.ndarray:
        """float32 grades 0..3: ``z = u_rel + N(0, 1)`` cut at its 40 / 70 / 90 % quantiles."""
        latent = u_rel + rng.standard_normal(u_rel.size)
        quantile = statistics.NormalDist().inv_cdf
        cuts = [self.relevance_scale * quantile(q) for q in (0.4, 0.7, 0.9)]
        return np.searchsorted(np.asarray(cuts), latent).astype(np.float32)

    def utility_correlation(self) -> dict[str, float]:
        """The documented ``corr(u_pay, z)`` and ``corr(u_pay, log amount)``."""
        signal, price_effect = self.signal, self.price_effect
        return {
            "pay_relevance": signal**2
            * math.cos(self.angle)
            / math.sqrt((signal**2 + price_effect**2) * self.relevance_scale**2),
            "pay_amount": -0.8 * price_effect / math.sqrt((signal**2 + price_effect**2) * 0.73),
        }
