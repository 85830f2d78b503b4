"""Metrics against scikit-learn and brute force, ties included, and their input checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from nomoretuning.training.metrics import (
    auc,
    auc_difference,
    gauc,
    logloss,
    ndcg_at_k,
    ndcg_difference,
    pairwise_accuracy,
)

FAST = settings(max_examples=40, deadline=None)


def _random_case(seed: int, n: int = 400, n_groups: int = 30, levels: int = 2):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, levels, n).astype(float)
    scores = np.round(rng.normal(size=n), 1)  # rounding creates many ties
    groups = rng.integers(0, n_groups, n)
    return labels, scores, groups


def _brute_pairwise(labels, scores, groups) -> float:
    values = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        correct = pairs = 0.0
        for i, j in itertools.permutations(idx, 2):
            if labels[i] > labels[j]:
                pairs += 1
                correct += 1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0
        if pairs:
            values.append(correct / pairs)
    return float(np.mean(values)) if values else math.nan


# --------------------------------------------------------------------------- auc / gauc


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    labels, scores, _ = _random_case(seed)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(-3, 3)),
        min_size=2,
        max_size=60,
    ).filter(lambda rows: len({y for y, _ in rows}) == 2)
)
def test_auc_property_matches_sklearn(rows: list[tuple[int, int]]) -> None:
    labels = np.array([y for y, _ in rows])
    scores = np.array([s for _, s in rows], dtype=float)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_accepts_bool_labels_and_constant_scores() -> None:
    assert auc(np.array([True, False, True]), np.zeros(3)) == 0.5


def test_auc_single_class_raises() -> None:
    with pytest.raises(ValueError, match="only one class"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_auc_non_binary_labels_raise() -> None:
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auc([0, 1, 2], [0.1, 0.2, 0.3])


@pytest.mark.parametrize("seed", range(5))
def test_gauc_matches_weighted_sklearn(seed: int) -> None:
    labels, scores, groups = _random_case(seed, n_groups=40)
    total = weight = 0.0
    for g in np.unique(groups):
        m = groups == g
        if len(np.unique(labels[m])) == 2:
            total += m.sum() * roc_auc_score(labels[m], scores[m])
            weight += m.sum()
    assert gauc(labels, scores, groups) == pytest.approx(total / weight, abs=1e-12)


def test_gauc_skips_single_class_groups_and_accepts_string_ids() -> None:
    labels = np.array([0, 1, 1, 1, 1, 0, 1])
    scores = np.array([0.1, 0.9, 0.5, 0.4, 0.2, 0.3, 0.3])
    groups = np.array(["a", "a", "b", "b", "c", "c", "c"])
    # group a: auc 1 (2 rows); group b: single class, skipped; group c: 0.25 (3 rows)
    assert gauc(labels, scores, groups) == pytest.approx((2 * 1.0 + 3 * 0.25) / 5)


def test_gauc_nan_when_no_group_has_both_classes() -> None:
    assert math.isnan(gauc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]))


def test_gauc_one_group_equals_auc() -> None:
    labels, scores, _ = _random_case(7)
    assert gauc(labels, scores, None) == pytest.approx(auc(labels, scores), abs=1e-12)


# --------------------------------------------------------------------------- logloss


@pytest.mark.parametrize("seed", range(3))
def test_logloss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 500)
    logits = rng.normal(scale=4.0, size=500)
    expected = log_loss(labels, 1.0 / (1.0 + np.exp(-logits)), labels=[0, 1])
    assert logloss(labels, logits) == pytest.approx(expected, rel=1e-10)


def test_logloss_is_stable_for_extreme_logits() -> None:
    assert logloss([1, 0], [-1000.0, 1000.0]) == pytest.approx(1000.0)
    assert logloss([1, 0], [1000.0, -1000.0]) == 0.0


def test_logloss_accepts_soft_labels_and_rejects_out_of_range() -> None:
    assert logloss([0.5], [0.0]) == pytest.approx(math.log(2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        logloss([1.5], [0.0])


# --------------------------------------------------------------------------- ndcg


def _sklearn_ndcg(rel, scores, groups, k, gain) -> float:
    gains = np.exp2(rel) - 1.0 if gain == "exponential" else rel
    values = [
        ndcg_score(gains[groups == g][None, :], scores[groups == g][None, :], k=k)
        for g in np.unique(groups)
    ]
    return float(np.mean(values))


@pytest.mark.parametrize("gain", ["linear", "exponential"])
@pytest.mark.parametrize("k", [1, 3, 10, None])
def test_ndcg_matches_sklearn_with_ties(gain: str, k: int | None) -> None:
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(25), rng.integers(2, 15, 25))
    rel = rng.integers(0, 5, groups.size).astype(float)
    scores = np.round(rng.normal(size=groups.size), 1)
    expected = _sklearn_ndcg(rel, scores, groups, k, gain)
    got = ndcg_at_k(rel, scores, groups, k=k, gain=gain, no_relevant="zero")  # type: ignore[arg-type]
    assert got == pytest.approx(expected, abs=1e-12)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=40
    ),
    st.integers(1, 6),
)
def test_ndcg_property_matches_sklearn(rows: list[tuple[int, int, int]], k: int) -> None:
    rel = np.array([r for r, _, _ in rows], dtype=float)
    scores = np.array([s for _, s, _ in rows], dtype=float)
    groups = np.array([g for _, _, g in rows])
    counts = np.bincount(groups)
    keep = counts[groups] >= 2  # sklearn needs two documents per query
    if not keep.any():
        return
    rel, scores, groups = rel[keep], scores[keep], groups[keep]
    expected = _sklearn_ndcg(rel, scores, groups, k, "exponential")
    assert ndcg_at_k(rel, scores, groups, k=k, no_relevant="zero") == pytest.approx(expected)


def test_ndcg_groups_without_relevant_items() -> None:
    rel = np.array([1, 0, 0, 0])
    scores = np.array([0.1, 0.9, 0.3, 0.2])
    groups = np.array([0, 0, 1, 1])
    first = ndcg_score([[1, 0]], [[0.1, 0.9]])
    assert ndcg_at_k(rel, scores, groups, k=None) == pytest.approx(first)  # skipped
    assert ndcg_at_k(rel, scores, groups, k=None, no_relevant="zero") == pytest.approx(first / 2)
    assert ndcg_at_k(rel, scores, groups, k=None, no_relevant="one") == pytest.approx(
        (first + 1) / 2
    )
    assert math.isnan(ndcg_at_k([0, 0], [0.1, 0.2], None))


def test_ndcg_perfect_order_is_one() -> None:
    assert ndcg_at_k([3, 2, 1, 0], [4, 3, 2, 1], [0, 0, 0, 0], k=2) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_ndcg_bad_k(bad: object) -> None:
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([1, 0], [0.1, 0.2], None, k=bad)  # type: ignore[arg-type]


def test_ndcg_bad_gain_and_negative_relevance() -> None:
    with pytest.raises(ValueError, match="gain"):
        ndcg_at_k([1, 0], [0.1, 0.2], None, gain="log")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="relevance must be >= 0"):
        ndcg_at_k([-1, 0], [0.1, 0.2], None)
    with pytest.raises(ValueError, match="no_relevant"):
        ndcg_at_k([1, 0], [0.1, 0.2], None, no_relevant="nan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="relevance 2000 overflows the exponential gain"):
        ndcg_at_k([2000, 0], [0.1, 0.2], None)
    assert ndcg_at_k([2000, 0], [0.1, 0.2], None, gain="linear") == pytest.approx(1 / math.log2(3))
    assert math.isfinite(ndcg_at_k([512, 511, 0], [0.1, 0.2, 0.3], None))  # the largest taken


# --------------------------------------------------------------------------- pairwise accuracy


@pytest.mark.parametrize("seed", range(4))
def test_pairwise_accuracy_matches_brute_force_graded(seed: int) -> None:
    labels, scores, groups = _random_case(seed, n=150, n_groups=8, levels=5)
    expected = _brute_pairwise(labels, scores, groups)
    assert pairwise_accuracy(labels, scores, groups) == pytest.approx(expected, abs=1e-12)


def test_pairwise_accuracy_continuous_labels() -> None:
    rng = np.random.default_rng(11)
    groups = rng.integers(0, 5, 120)
    labels = np.where(rng.random(120) < 0.3, 0.0, np.round(rng.exponential(size=120), 2))
    scores = np.round(rng.normal(size=120), 1)
    expected = _brute_pairwise(labels, scores, groups)
    assert pairwise_accuracy(labels, scores, groups) == pytest.approx(expected, abs=1e-12)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(-2, 2), st.integers(0, 4)), min_size=1, max_size=40
    )
)
def test_pairwise_accuracy_property_brute_force(rows: list[tuple[int, int, int]]) -> None:
    labels = np.array([y for y, _, _ in rows], dtype=float)
    scores = np.array([s for _, s, _ in rows], dtype=float)
    groups = np.array([g for _, _, g in rows])
    expected = _brute_pairwise(labels, scores, groups)
    got = pairwise_accuracy(labels, scores, groups)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_pairwise_accuracy_is_mean_group_auc_for_binary_labels(seed: int) -> None:
    labels, scores, groups = _random_case(seed, n_groups=20)
    aucs = [
        roc_auc_score(labels[groups == g], scores[groups == g])
        for g in np.unique(groups)
        if len(np.unique(labels[groups == g])) == 2
    ]
    assert pairwise_accuracy(labels, scores, groups) == pytest.approx(np.mean(aucs), abs=1e-12)


def test_pairwise_accuracy_nan_without_pairs() -> None:
    assert math.isnan(pairwise_accuracy([1, 1, 0], [0.1, 0.2, 0.3], [0, 0, 1]))


# --------------------------------------------------------------------------- bad inputs

METRICS = {
    "auc": lambda y, s, g: auc(y, s),
    "gauc": gauc,
    "logloss": lambda y, s, g: logloss(y, s),
    "ndcg_at_k": lambda y, s, g: ndcg_at_k(y, s, g, k=2),
    "pairwise_accuracy": pairwise_accuracy,
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_length_mismatch(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}: length mismatch"):
        METRICS[name](np.array([0, 1, 1]), np.array([0.1, 0.2]), np.array([0, 0, 0]))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_empty(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}: labels is empty"):
        METRICS[name](np.array([]), np.array([]), np.array([]))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_nan_scores(name: str) -> None:
    with pytest.raises(ValueError, match=r"(scores|logits) contains NaN"):
        METRICS[name](np.array([0, 1]), np.array([0.1, np.nan]), np.array([0, 0]))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_infinite_scores(name: str) -> None:
    with pytest.raises(ValueError, match="infinite"):
        METRICS[name](np.array([0, 1]), np.array([0.1, np.inf]), np.array([0, 0]))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_two_dimensional_input(name: str) -> None:
    with pytest.raises(ValueError, match="must be 1-D"):
        METRICS[name](np.zeros((2, 2)), np.zeros((2, 2)), np.zeros(2))


@pytest.mark.parametrize("name", ["gauc", "ndcg_at_k", "pairwise_accuracy"])
def test_group_length_mismatch_and_nan_groups(name: str) -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        METRICS[name](np.array([0, 1]), np.array([0.1, 0.2]), np.array([0]))
    with pytest.raises(ValueError, match="groups contains NaN"):
        METRICS[name](np.array([0, 1]), np.array([0.1, 0.2]), np.array([0.0, np.nan]))


def test_non_numeric_labels() -> None:
    with pytest.raises(ValueError, match="labels must be numeric"):
        auc(np.array(["a", "b"]), np.array([0.1, 0.2]))


# --------------------------------------------------------------------------- auc_difference


def _brute_delong(labels, a, b) -> tuple[float, float]:
    """DeLong et al. (1988) from the pairwise kernel, O(positives x negatives)."""
    positive, negative = labels == 1, labels == 0
    components = []
    for scores in (a, b):
        x, y = scores[positive][:, None], scores[negative][None, :]
        kernel = (x > y) + 0.5 * (x == y)
        components.append((kernel.mean(axis=1), kernel.mean(axis=0)))
    d_pos = components[0][0] - components[1][0]
    d_neg = components[0][1] - components[1][1]
    variance = d_pos.var(ddof=1) / d_pos.size + d_neg.var(ddof=1) / d_neg.size
    return float(d_pos.mean()), math.sqrt(variance)


@pytest.mark.parametrize("seed", range(4))
def test_auc_difference_matches_sklearn_and_the_delong_kernel_with_ties(seed: int) -> None:
    labels, a, _ = _random_case(seed)
    b = np.round(a + np.random.default_rng(seed + 10).normal(scale=0.7, size=a.size), 1)
    difference, error = auc_difference(labels, a, b)
    assert difference == pytest.approx(roc_auc_score(labels, a) - roc_auc_score(labels, b))
    expected_difference, expected_error = _brute_delong(labels, a, b)
    assert difference == pytest.approx(expected_difference)
    assert error == pytest.approx(expected_error)


def test_auc_difference_of_a_scoring_with_itself_is_exactly_zero() -> None:
    labels, a, _ = _random_case(0)
    assert auc_difference(labels, a, a) == (0.0, 0.0)


def test_auc_difference_standard_error_matches_resampled_rows() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    labels = (rng.random(n) < 0.2).astype(float)
    a = labels + rng.normal(size=n)
    b = a + rng.normal(scale=0.8, size=n)
    _, error = auc_difference(labels, a, b)
    resampled = []
    for _ in range(200):
        rows = rng.integers(0, n, n)
        resampled.append(
            roc_auc_score(labels[rows], a[rows]) - roc_auc_score(labels[rows], b[rows])
        )
    assert error == pytest.approx(np.std(resampled), rel=0.15)


def test_auc_difference_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="auc_difference: length mismatch"):
        auc_difference([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2])
    with pytest.raises(ValueError, match="two positives and two negatives"):
        auc_difference([0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        auc_difference([0, 2, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])


# --------------------------------------------------------------------------- ndcg_difference


@pytest.mark.parametrize("no_relevant", ["skip", "zero", "one"])
@pytest.mark.parametrize("seed", range(3))
def test_ndcg_difference_is_the_mean_of_the_per_query_differences(
    seed: int, no_relevant: str
) -> None:
    labels, a, groups = _random_case(seed, levels=3)
    b = np.round(a + np.random.default_rng(seed + 10).normal(scale=0.7, size=a.size), 1)
    difference, error = ndcg_difference(labels, a, b, groups, k=5, no_relevant=no_relevant)  # type: ignore[arg-type]
    per_query = []
    for g in np.unique(groups):
        rows = groups == g
        if no_relevant == "skip" and not labels[rows].any():
            continue
        values = [
            ndcg_at_k(labels[rows], s[rows], None, k=5, no_relevant=no_relevant)  # type: ignore[arg-type]
            for s in (a, b)
        ]
        per_query.append(values[0] - values[1])
    expected = ndcg_at_k(labels, a, groups, k=5, no_relevant=no_relevant) - ndcg_at_k(  # type: ignore[arg-type]
        labels,
        b,
        groups,
        k=5,
        no_relevant=no_relevant,  # type: ignore[arg-type]
    )
    assert difference == pytest.approx(expected)
    assert difference == pytest.approx(np.mean(per_query))
    assert error == pytest.approx(np.std(per_query, ddof=1) / math.sqrt(len(per_query)))


def test_ndcg_difference_of_a_scoring_with_itself_is_zero_and_edge_cases() -> None:
    labels, a, groups = _random_case(0, levels=3)
    assert ndcg_difference(labels, a, a, groups) == (0.0, 0.0)
    assert ndcg_difference([1, 0], [0.2, 0.1], [0.1, 0.2], None, k=None)[1] == 0.0  # one query
    assert all(math.isnan(v) for v in ndcg_difference([0, 0], [0.1, 0.2], [0.2, 0.1], None))
    with pytest.raises(ValueError, match="ndcg_difference: length mismatch"):
        ndcg_difference([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2], None)
    with pytest.raises(ValueError, match="ndcg_difference: relevance must be >= 0"):
        ndcg_difference([0, -1], [0.1, 0.2], [0.1, 0.2], None)
