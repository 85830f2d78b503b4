"""Pairs (`make_pairs`), the pairwise logistic (RankNet) loss on them, and the binary cross-entropy
helper."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nomoretuning.core.losses import (
    binary_cross_entropy_losses,
    make_pairs,
    pairwise_logistic_loss,
)


def _brute(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor | None) -> list[float]:
    values = []
    n = scores.shape[0]
    for i, j in itertools.permutations(range(n), 2):
        same = groups is None or groups[i] == groups[j]
        if same and labels[i] > labels[j]:
            values.append(math.log1p(math.exp(-(float(scores[i]) - float(scores[j])))))
    return values


def _pair_set(first: torch.Tensor, second: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(first.tolist(), second.tolist(), strict=True))


def _brute_pairs(labels: list[float], groups: list[int]) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, j in itertools.permutations(range(len(labels)), 2)
        if groups[i] == groups[j] and labels[i] > labels[j]
    }


# --------------------------------------------------------------------------- make_pairs


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 3)), min_size=0, max_size=30))
def test_make_pairs_equals_brute_force(rows: list[tuple[int, int]]) -> None:
    labels = torch.tensor([y for y, _ in rows], dtype=torch.float32)
    groups = torch.tensor([g for _, g in rows], dtype=torch.int64)
    first, second = make_pairs(labels, groups)
    assert first.dtype == second.dtype == torch.int64
    assert len(first) == len(_pair_set(first, second))  # no duplicates
    assert _pair_set(first, second) == _brute_pairs(labels.tolist(), groups.tolist())


def test_make_pairs_count_ties_and_groups() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    groups = rng.permutation(np.repeat(np.arange(25), 20))  # interleaved, not contiguous
    first, second = make_pairs(torch.from_numpy(labels), torch.from_numpy(groups))
    expected = 0
    for g in range(25):
        counts = np.bincount(labels[groups == g], minlength=4)
        expected += (counts.sum() ** 2 - (counts**2).sum()) // 2  # pairs of different labels
    assert len(first) == expected
    f, s = first.numpy(), second.numpy()
    assert (groups[f] == groups[s]).all()
    assert (labels[f] > labels[s]).all()


def test_make_pairs_without_groups_and_all_ties() -> None:
    first, second = make_pairs(torch.tensor([1.0, 0.0, 1.0]))
    assert _pair_set(first, second) == {(0, 1), (2, 1)}
    first, second = make_pairs(torch.ones(5), torch.zeros(5, dtype=torch.long))
    assert len(first) == 0


def test_make_pairs_bool_labels_count_as_zero_one() -> None:
    labels = torch.tensor([True, False, True, False])
    groups = torch.tensor([0, 0, 1, 1])
    assert _pair_set(*make_pairs(labels, groups)) == {(0, 1), (2, 3)}


def test_make_pairs_mask_restricts_rows() -> None:
    labels = torch.tensor([0.0, 5.0, 3.0, 0.0, 9.0, 1.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    first, second = make_pairs(labels, groups, mask=labels > 0)
    assert _pair_set(first, second) == {(1, 2), (4, 5)}


def test_make_pairs_sampling_cap_and_seed() -> None:
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(rng.integers(0, 3, 300))
    groups = torch.from_numpy(np.repeat(np.arange(30), 10))
    all_pairs = _pair_set(*make_pairs(labels, groups))

    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return make_pairs(labels, groups, max_pairs_per_group=4, generator=gen)

    first, second = draw(0)
    per_group = torch.bincount(groups[first], minlength=30)
    full = torch.bincount(groups[make_pairs(labels, groups)[0]], minlength=30)
    assert torch.equal(per_group, torch.clamp(full, max=4))
    assert _pair_set(first, second) <= all_pairs
    assert len(_pair_set(first, second)) == len(first)  # without replacement
    again = draw(0)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, draw(1)[0]) or not torch.equal(second, draw(1)[1])


def test_make_pairs_sampling_is_uniform() -> None:
    # 1200 identical groups of labels [0, 1, 2, 3] (6 pairs each), 2 pairs kept per group:
    # each of the 6 within-group pairs should be kept in about 1200 * 2 / 6 = 400 groups.
    n_groups = 1200
    labels = torch.arange(4).repeat(n_groups)
    groups = torch.arange(n_groups).repeat_interleave(4)
    gen = torch.Generator().manual_seed(0)
    first, second = make_pairs(labels, groups, max_pairs_per_group=2, generator=gen)
    assert len(first) == 2 * n_groups
    kind = (first % 4) * 4 + second % 4  # which of the 6 pairs, same in every group
    counts = torch.bincount(kind, minlength=16)
    counts = counts[counts > 0]
    assert len(counts) == 6
    assert bool(((counts >= 330) & (counts <= 470)).all())  # expected 400, sd about 18


def test_make_pairs_bad_inputs() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        make_pairs(torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        make_pairs(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="integer ids"):
        make_pairs(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="1-D"):
        make_pairs(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="max_pairs_per_group must be a positive integer"):
        make_pairs(torch.zeros(2), max_pairs_per_group=0)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        make_pairs(torch.zeros(2), mask=torch.ones(2))


# --------------------------------------------------------------------------- pairwise loss


def test_default_pairs_are_make_pairs() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (200,), generator=gen).float()
    groups = torch.randint(0, 12, (200,), generator=gen)
    scores = torch.randn(200, generator=gen)
    default = pairwise_logistic_loss(scores, labels, groups, reduction="none")
    explicit = pairwise_logistic_loss(
        scores, labels, pairs=make_pairs(labels, groups), reduction="none"
    )
    assert torch.equal(default, explicit)  # the same pairs in the same order


def test_hand_computed_tiny_example() -> None:
    scores = torch.tensor([2.0, 0.0, 1.0])
    labels = torch.tensor([2.0, 0.0, 1.0])
    # pairs (0,1): gap 2, (0,2): gap 1, (2,1): gap 1
    expected = (math.log1p(math.exp(-2)) + 2 * math.log1p(math.exp(-1))) / 3
    assert float(pairwise_logistic_loss(scores, labels)) == pytest.approx(expected, rel=1e-6)
    assert float(pairwise_logistic_loss(scores, labels, reduction="sum")) == pytest.approx(
        3 * expected, rel=1e-6
    )


def test_groups_prevent_cross_group_pairs() -> None:
    scores = torch.tensor([0.5, 0.2, 0.9, 0.1])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1])
    per_pair = pairwise_logistic_loss(scores, labels, groups, reduction="none")
    expected = torch.tensor([math.log1p(math.exp(-0.3)), math.log1p(math.exp(0.8))])
    torch.testing.assert_close(per_pair, expected)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-5, 5, allow_nan=False), st.integers(0, 3), st.integers(0, 2)),
        min_size=1,
        max_size=25,
    ),
    st.booleans(),
)
def test_matches_brute_force(rows: list[tuple[float, int, int]], use_groups: bool) -> None:
    scores = torch.tensor([s for s, _, _ in rows], dtype=torch.float64)
    labels = torch.tensor([y for _, y, _ in rows], dtype=torch.float64)
    groups = torch.tensor([g for _, _, g in rows]) if use_groups else None
    expected = sorted(_brute(scores, labels, groups))
    got = pairwise_logistic_loss(scores, labels, groups, reduction="none")
    assert sorted(got.tolist()) == pytest.approx(expected, rel=1e-9)
    mean = pairwise_logistic_loss(scores, labels, groups)
    assert float(mean) == pytest.approx(sum(expected) / max(len(expected), 1), rel=1e-9, abs=1e-12)


def test_explicit_pairs() -> None:
    scores = torch.tensor([1.0, 3.0, 0.0])
    pairs = (torch.tensor([0, 2]), torch.tensor([1, 1]))
    got = pairwise_logistic_loss(scores, torch.zeros(3), pairs=pairs)
    expected = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(3.0))) / 2
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_no_pairs_gives_zero_with_gradient() -> None:
    scores = torch.randn(4, requires_grad=True)
    loss = pairwise_logistic_loss(scores, torch.ones(4))
    assert loss.item() == 0.0
    loss.backward()
    assert scores.grad is not None
    assert torch.equal(scores.grad, torch.zeros(4))
    assert pairwise_logistic_loss(scores, torch.ones(4), reduction="none").numel() == 0


def test_stable_for_huge_score_gaps() -> None:
    scores = torch.tensor([-1e4, 1e4], requires_grad=True)
    loss = pairwise_logistic_loss(scores, torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(2e4)
    loss.backward()
    assert torch.isfinite(scores.grad).all()  # type: ignore[arg-type]
    good = pairwise_logistic_loss(torch.tensor([1e4, -1e4]), torch.tensor([1.0, 0.0]))
    assert float(good) == 0.0


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(9, dtype=torch.float64, generator=gen, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0, 1, 1, 3, 0, 2], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert torch.autograd.gradcheck(lambda s: pairwise_logistic_loss(s, labels, groups), (scores,))
    assert torch.autograd.gradcheck(
        lambda s: pairwise_logistic_loss(s, labels, reduction="none"), (scores,)
    )


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="scores must be 1-D"):
        pairwise_logistic_loss(torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="labels must have the shape"):
        pairwise_logistic_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="groups must have the shape"):
        pairwise_logistic_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="reduction"):
        pairwise_logistic_loss(torch.zeros(3), torch.zeros(3), reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="equal length"):
        pairwise_logistic_loss(
            torch.zeros(3), torch.zeros(3), pairs=(torch.tensor([0]), torch.tensor([1, 2]))
        )


def test_binary_cross_entropy_losses() -> None:
    logits = {"click": torch.tensor([0.3, -1.0]), "like": torch.tensor([2.0, 0.0])}
    labels = {"click": torch.tensor([1.0, 0.0]), "like": torch.tensor([0.0, 1.0])}
    out = binary_cross_entropy_losses(logits, labels)
    assert set(out) == {"click", "like"}
    for task in out:
        torch.testing.assert_close(
            out[task], F.binary_cross_entropy_with_logits(logits[task], labels[task])
        )
    assert set(binary_cross_entropy_losses(logits, labels, tasks=["like"])) == {"like"}
    with pytest.raises(ValueError, match="no labels for task 'click'"):
        binary_cross_entropy_losses(logits, {"like": labels["like"]})
    with pytest.raises(ValueError, match="no logits"):
        binary_cross_entropy_losses(logits, labels, tasks=["buy"])
    with pytest.raises(ValueError, match="logits"):
        binary_cross_entropy_losses({"click": torch.zeros(3)}, {"click": torch.zeros(2)})
