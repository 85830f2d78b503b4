"""Pairwise logistic (RankNet) loss and the binary cross-entropy helper."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from nomoretuning.core.losses import binary_cross_entropy_losses, pairwise_logistic_loss


def _brute(scores: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor | None) -> list[float]:
    values = []
    n = scores.shape[0]
    for i, j in itertools.permutations(range(n), 2):
        same = groups is None or groups[i] == groups[j]
        if same and labels[i] > labels[j]:
            values.append(math.log1p(math.exp(-(float(scores[i]) - float(scores[j])))))
    return values


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
