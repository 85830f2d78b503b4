"""Evaluation metrics: numpy arrays in, one float out (numpy only, vectorized, exact ties).

- `auc`: ROC AUC from average ranks (ties count 1/2); equals ``sklearn.metrics.roc_auc_score``.
- `auc_difference`: AUC(a) − AUC(b) of two scorings of the same rows and DeLong's standard
  error of that difference (paired over the rows).
- `gauc`: per-group AUC weighted by group size (rows), single-class groups skipped, as in
  FuxiCTR / STEM; one lexsort for all groups.
- `logloss`: binary cross-entropy from logits, numerically stable.
- `ndcg_at_k`: mean NDCG@k over groups; tied scores are averaged over their orderings as
  ``sklearn.metrics.ndcg_score`` does.
- `ndcg_difference`: NDCG@k(a) − NDCG@k(b) of two scorings of the same rows and the standard
  error of that difference (paired over the groups).
- `pairwise_accuracy`: fraction of correctly ordered within-group pairs of different labels
  (tied scores count 1/2), averaged over groups; for 0/1 labels it is the unweighted mean of
  the per-group AUCs. O(n log^2 n) whatever the number of label levels or the group sizes.

Every function raises ``ValueError`` naming the problem on empty input, length mismatches,
NaN or infinite scores, and labels outside their domain. ``groups`` may hold any sortable ids
(ints or strings); ``None`` means one group.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 1, 1, 0]); s = np.array([0.1, 0.8, 0.4, 0.4])
    >>> auc(y, s)
    0.875
    >>> gauc(y, s, np.array([0, 0, 1, 1]))
    0.75
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "auc",
    "auc_difference",
    "gauc",
    "logloss",
    "ndcg_at_k",
    "ndcg_difference",
    "pairwise_accuracy",
]

Gain = Literal["exponential", "linear"]
NoRelevant = Literal["skip", "zero", "one"]


# --------------------------------------------------------------------------- validation


def _vector(name: str, where: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{where}: {name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{where}: {name} is empty")
    return array


def _numeric(name: str, where: str, values: ArrayLike) -> np.ndarray:
    array = _vector(name, where, values)
    if array.dtype == np.bool_:
        array = array.astype(np.float64)
    if not (np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"{where}: {name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array)
    if bad.any():
        kind = "NaN" if np.isnan(array).any() else "infinite"
        raise ValueError(
            f"{where}: {name} contains {kind} values ({int(bad.sum())} of {array.size}); "
            "all values must be finite"
        )
    return array


def _same_length(where: str, **arrays: np.ndarray) -> None:
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"{where}: length mismatch ({listed})")


def _binary(where: str, labels: np.ndarray) -> np.ndarray:
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        raise ValueError(
            f"{where}: labels must be 0 or 1, got {np.unique(labels[bad])[:5].tolist()}"
        )
    return labels


def _group_codes(where: str, groups: ArrayLike | None, n: int) -> np.ndarray:
    """Dense int64 codes 0..G-1 (sorted by group id) of the group of each row."""
    if groups is None:
        return np.zeros(n, dtype=np.int64)
    array = _vector("groups", where, groups)
    if array.size != n:
        raise ValueError(f"{where}: length mismatch (groups={array.size}, labels={n})")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ValueError(f"{where}: groups contains NaN or infinite ids")
    _, codes = np.unique(array, return_inverse=True)
    return codes.reshape(-1).astype(np.int64, copy=False)


def _inputs(
    where: str, labels: ArrayLike, scores: ArrayLike, groups: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _numeric("labels", where, labels)
    s = _numeric("scores", where, scores)
    _same_length(where, labels=y, scores=s)
    return y, s, _group_codes(where, groups, y.size)


# --------------------------------------------------------------------------- helpers


def _run_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask: True where any key differs from the previous element (and at 0)."""
    first = np.zeros(keys[0].size, dtype=bool)
    first[:1] = True
    for key in keys:
        first[1:] |= key[1:] != key[:-1]
    return first


def _segment_first(starts: np.ndarray) -> np.ndarray:
    """For each element, the position of the first element of its run."""
    idx = np.arange(starts.size)
    return np.maximum.accumulate(np.where(starts, idx, 0))


def _within_group_midranks(codes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """1-based average rank of each score within its group (ties share the mean rank)."""
    order = np.lexsort((scores, codes))
    c, s = codes[order], scores[order]
    group_first = _segment_first(_run_starts(c))
    tie_starts = _run_starts(c, s)
    tie_id = np.cumsum(tie_starts) - 1
    tie_first = np.flatnonzero(tie_starts)
    tie_last = np.append(tie_first[1:], c.size) - 1
    # position within the group of the block's first and last rows, 1-based
    mid = (tie_first + tie_last) / 2.0 + 1.0 - group_first[tie_first]
    ranks = np.empty(c.size, dtype=np.float64)
    ranks[order] = mid[tie_id]
    return ranks


def _group_auc(
    codes: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(auc per group, rows per group, valid mask: both classes present)."""
    n_groups = int(codes.max()) + 1
    ranks = _within_group_midranks(codes, scores)
    size = np.bincount(codes, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(codes, weights=labels, minlength=n_groups)
    n_neg = size - n_pos
    rank_sum = np.bincount(codes, weights=ranks * labels, minlength=n_groups)
    valid = (n_pos > 0) & (n_neg > 0)
    denom = np.where(valid, n_pos * n_neg, 1.0)
    values = (rank_sum - n_pos * (n_pos + 1) / 2.0) / denom
    return values, size, valid


# --------------------------------------------------------------------------- metrics


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC: P(score of a positive > score of a negative), ties counting 1/2.

    Computed from average ranks (Mann-Whitney U); equals ``sklearn.metrics.roc_auc_score``.

    Raises:
        ValueError: labels not 0/1, a single class, NaN/infinite scores, empty or mismatched
            inputs.

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    where = "auc"
    y, s, codes = _inputs(where, labels, scores, None)
    _binary(where, y)
    values, _, valid = _group_auc(codes, y, s)
    if not valid[0]:
        raise ValueError(
            f"{where}: labels hold only one class ({int(y[0])}); AUC needs positives and negatives"
        )
    return float(values[0])


def auc_difference(
    labels: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike
) -> tuple[float, float]:
    """AUC(``scores_a``) − AUC(``scores_b``) on the same rows, and the standard error of that
    difference by DeLong, DeLong & Clarke-Pearson (1988), paired over the rows.

    Each AUC is the mean of its structural components (one per positive, one per negative);
    the variance of the difference is that of the paired components over positives and over
    negatives. Ties count 1/2, as in `auc`.

    Raises:
        ValueError: as `auc`, or fewer than two positives or two negatives.

    Example:
        >>> d, se = auc_difference([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9],
        ...                        [0.5, 0.2, 0.35, 0.8, 0.4, 0.9])
        >>> round(d, 4), round(se, 4)
        (0.1111, 0.2485)
    """
    where = "auc_difference"
    y, a, _ = _inputs(where, labels, scores_a, None)
    b = _numeric("scores_b", where, scores_b)
    _same_length(where, labels=y, scores_b=b)
    _binary(where, y)
    positive = y == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError(f"{where}: needs two positives and two negatives, got {m} and {n}")
    one = np.zeros(y.size, dtype=np.int64)
    components = []
    for scores in (a, b):
        overall = _within_group_midranks(one, scores)
        within = _within_group_midranks(positive.astype(np.int64), scores)
        # per positive: the share of negatives it outranks; per negative: the share of
        # positives that outrank it
        v_pos = (overall[positive] - within[positive]) / n
        v_neg = 1.0 - (overall[~positive] - within[~positive]) / m
        components.append((v_pos, v_neg))
    d_pos = components[0][0] - components[1][0]
    d_neg = components[0][1] - components[1][1]
    variance = np.var(d_pos, ddof=1) / m + np.var(d_neg, ddof=1) / n
    return float(d_pos.mean()), float(math.sqrt(max(float(variance), 0.0)))


def gauc(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike | None) -> float:
    """Group AUC: per-group AUC averaged with weights = group sizes (rows).

    Groups with a single class are skipped (as FuxiCTR and STEM do); the result is NaN when
    no group has both classes. One lexsort by (group, score) ranks every group at once.

    Example:
        >>> gauc([0, 1, 1, 0, 1, 1], [0.2, 0.9, 0.1, 0.3, 0.5, 0.6], [7, 7, 7, 8, 8, 8])
        0.75
    """
    where = "gauc"
    y, s, codes = _inputs(where, labels, scores, groups)
    _binary(where, y)
    values, size, valid = _group_auc(codes, y, s)
    if not valid.any():
        return math.nan
    return float(np.sum(values[valid] * size[valid]) / np.sum(size[valid]))


def logloss(labels: ArrayLike, logits: ArrayLike) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)``, computed stably from the logits.

    ``max(x, 0) - x*y + log1p(exp(-|x|))`` per row; labels may be soft targets in [0, 1].
    Equals ``sklearn.metrics.log_loss(labels, sigmoid(logits))`` except at saturated logits,
    where sklearn clips probabilities and this stays exact.

    Example:
        >>> round(logloss([0, 1], [0.0, 0.0]), 4)
        0.6931
    """
    where = "logloss"
    y = _numeric("labels", where, labels)
    x = _numeric("logits", where, logits)
    _same_length(where, labels=y, logits=x)
    if ((y < 0) | (y > 1)).any():
        raise ValueError(f"{where}: labels must lie in [0, 1]")
    losses = np.maximum(x, 0.0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return float(losses.mean())


def ndcg_at_k(
    relevance: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike | None,
    k: int | None = 10,
    gain: Gain = "exponential",
    no_relevant: NoRelevant = "skip",
) -> float:
    """Mean NDCG@k over groups (queries).

    ``DCG@k = sum over the top k positions of gain(rel) / log2(position + 1)`` (positions from 1),
    normalised by the DCG@k of the ideal order. ``gain``: ``"exponential"`` (``2**rel - 1``)
    or ``"linear"`` (``rel``, sklearn's convention). Tied scores are handled as
    ``sklearn.metrics.ndcg_score`` does: each tie block contributes its mean gain times the sum
    of the discounts of the positions it spans, i.e. the expectation over the orderings of the
    tie. ``k=None`` uses whole lists.

    A group with no relevant item (ideal DCG 0) has no ordering to score. ``no_relevant``:
    ``"skip"`` (default) leaves it out of the mean, ``"zero"`` scores it 0 (sklearn), ``"one"``
    scores it 1 (LightGBM). The result is NaN when every group is skipped.

    Example:
        >>> rel = [3, 2, 0, 0, 1, 0]; s = [0.9, 0.1, 0.5, 0.2, 0.3, 0.8]; g = [0, 0, 0, 1, 1, 1]
        >>> round(ndcg_at_k(rel, s, g, k=3, gain="linear", no_relevant="zero"), 4)
        0.7847
    """
    values = _ndcg_per_group("ndcg_at_k", relevance, scores, groups, k, gain, no_relevant)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def ndcg_difference(
    relevance: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    groups: ArrayLike | None,
    k: int | None = 10,
    gain: Gain = "exponential",
    no_relevant: NoRelevant = "skip",
) -> tuple[float, float]:
    """NDCG@k(``scores_a``) − NDCG@k(``scores_b``) on the same rows (as `ndcg_at_k`), and the
    standard error of that difference paired over the groups: the standard deviation of the
    per-group differences over the square root of their number (0 with one group; NaN, NaN
    when every group is skipped).

    Example:
        >>> rel = [2, 0, 1, 0, 1, 0, 0, 1]; g = [0, 0, 1, 1, 2, 2, 3, 3]
        >>> a = [1, 0, 1, 0, 1, 0, 1, 0]; b = [0, 1, 1, 0, 1, 0, 1, 0]
        >>> d, se = ndcg_difference(rel, a, b, g, k=2, gain="linear")
        >>> round(d, 4), round(se, 4)
        (0.0923, 0.0923)
    """
    where = "ndcg_difference"
    b = _numeric("scores_b", where, scores_b)
    _same_length(where, relevance=np.asarray(relevance), scores_b=b)
    first = _ndcg_per_group(where, relevance, scores_a, groups, k, gain, no_relevant)
    second = _ndcg_per_group(where, relevance, b, groups, k, gain, no_relevant)
    differences = (first - second)[~np.isnan(first)]
    if not differences.size:
        return math.nan, math.nan
    spread = float(np.std(differences, ddof=1)) if differences.size > 1 else 0.0
    return float(differences.mean()), spread / math.sqrt(differences.size)


_MAX_EXPONENTIAL_RELEVANCE = 512
"""The largest relevance the exponential gain takes: 2**512 leaves a group of up to 2**511
items' DCG finite in float64."""


def _ndcg_per_group(
    where: str,
    relevance: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike | None,
    k: int | None,
    gain: Gain,
    no_relevant: NoRelevant,
) -> np.ndarray:
    """NDCG@k of every group, in group-code order (see `ndcg_at_k`); NaN for the groups that
    ``no_relevant="skip"`` leaves out."""
    y, s, codes = _inputs(where, relevance, scores, groups)
    if (y < 0).any():
        raise ValueError(f"{where}: relevance must be >= 0, got {float(y.min())}")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1):
        raise ValueError(f"{where}: k must be a positive integer or None, got {k!r}")
    if gain == "exponential":
        if y.max() > _MAX_EXPONENTIAL_RELEVANCE:
            raise ValueError(
                f"{where}: relevance {float(y.max()):g} overflows the exponential gain 2**rel - 1 "
                f"(at most {_MAX_EXPONENTIAL_RELEVANCE}); use gain='linear' for labels this large"
            )
        g = np.exp2(y) - 1.0
    elif gain == "linear":
        g = y
    else:
        raise ValueError(f"{where}: gain must be 'exponential' or 'linear', got {gain!r}")
    if no_relevant not in ("skip", "zero", "one"):
        raise ValueError(
            f"{where}: no_relevant must be 'skip', 'zero' or 'one', got {no_relevant!r}"
        )
    n_groups = int(codes.max()) + 1
    cutoff = math.inf if k is None else int(k)

    def discounts(sorted_codes: np.ndarray) -> np.ndarray:
        position = np.arange(sorted_codes.size) - _segment_first(_run_starts(sorted_codes))
        return np.where(position < cutoff, 1.0 / np.log2(position + 2.0), 0.0)

    # DCG of the predicted order, tie blocks averaged
    order = np.lexsort((-s, codes))
    c, s_sorted, g_sorted = codes[order], s[order], g[order]
    tie_id = np.cumsum(_run_starts(c, s_sorted)) - 1
    tie_count = np.bincount(tie_id).astype(np.float64)
    tie_gain = np.bincount(tie_id, weights=g_sorted) / tie_count
    tie_discount = np.bincount(tie_id, weights=discounts(c))
    tie_group = c[np.flatnonzero(_run_starts(c, s_sorted))]
    dcg = np.bincount(tie_group, weights=tie_gain * tie_discount, minlength=n_groups)
    # ideal DCG
    ideal = np.lexsort((-g, codes))
    idcg = np.bincount(codes[ideal], weights=g[ideal] * discounts(codes[ideal]), minlength=n_groups)

    has_relevant = idcg > 0
    values = np.divide(dcg, idcg, out=np.zeros(n_groups), where=has_relevant)
    values[~has_relevant] = {"skip": math.nan, "zero": 0.0, "one": 1.0}[no_relevant]
    return values


def _prefix_less(values: np.ndarray, positions: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``#{j < positions[q] : values[j] < thresholds[q]}`` for every query q.

    ``values`` are ints in [0, V), thresholds in [0, V]. The prefix [0, p) is split into the
    aligned power-of-two blocks of p's binary expansion; each block level is one sort of
    ``(row >> b, value)`` keys and one ``searchsorted`` for all queries: O(n log^2 n).
    """
    n = values.size
    base = int(max(int(values.max()), int(thresholds.max()))) + 1
    rows = np.arange(n, dtype=np.int64)
    counts = np.zeros(positions.size, dtype=np.int64)
    level = 0
    while (1 << level) <= n:
        hit = np.flatnonzero((positions >> level) & 1)
        if hit.size:
            block = (positions[hit] >> level) - 1
            keys = np.sort((rows >> level) * base + values)
            below = np.searchsorted(keys, block * base + thresholds[hit], side="left")
            counts[hit] += below - block * (1 << level)
        level += 1
    return counts


def pairwise_accuracy(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike | None) -> float:
    """Fraction of correctly ordered pairs within groups, averaged over groups.

    Pairs are (i, j) in the same group with ``labels[i] > labels[j]`` (equal labels form no
    pair); a pair is correct when ``scores[i] > scores[j]`` and counts 1/2 when the scores tie.
    Each group with at least one pair gets its own fraction and the groups are averaged with
    equal weight (for 0/1 labels this is the unweighted mean of the per-group AUCs). NaN when no
    group has a pair. Labels may be graded or continuous (e.g. amounts).

    Example:
        >>> pairwise_accuracy([2, 1, 0, 1, 0], [0.9, 0.1, 0.5, 0.3, 0.3], [0, 0, 0, 1, 1])
        0.5833333333333333
    """
    where = "pairwise_accuracy"
    y, s, codes = _inputs(where, labels, scores, groups)
    n = y.size
    order = np.lexsort((y, codes))
    c, y_sorted = codes[order], y[order]
    # dense integer ranks of the scores, so that (row block, score) keys are exact integers
    _, score_rank = np.unique(s, return_inverse=True)
    r = score_rank.reshape(-1).astype(np.int64)[order]
    group_first = _segment_first(_run_starts(c))
    label_first = _segment_first(_run_starts(c, y_sorted))
    # rows of lower label in the same group are exactly positions [group_first, label_first)
    positions = np.concatenate([label_first, group_first, label_first, group_first])
    thresholds = np.concatenate([r, r, r + 1, r + 1])
    counts = _prefix_less(r, positions, thresholds).reshape(4, n)
    less = counts[0] - counts[1]
    less_or_equal = counts[2] - counts[3]
    correct = less + 0.5 * (less_or_equal - less)
    pairs = (label_first - group_first).astype(np.float64)
    n_groups = int(codes.max()) + 1
    correct_g = np.bincount(c, weights=correct, minlength=n_groups)
    pairs_g = np.bincount(c, weights=pairs, minlength=n_groups)
    has_pair = pairs_g > 0
    if not has_pair.any():
        return math.nan
    return float(np.mean(correct_g[has_pair] / pairs_g[has_pair]))
