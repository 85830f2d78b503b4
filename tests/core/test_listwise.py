"""The listwise softmax cross-entropy (ListNet top-one) loss against a per-query computation by
hand: values, gradients, queries without a relevant item (skipped), stability, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from nomoretuning.core.losses import softmax_cross_entropy_loss


def _brute(
    scores: list[float], labels: list[float], groups: list[int], gain: str = "exponential"
) -> list[float]:
    """One loss per query with a relevant item, in ascending query order, in plain Python."""
    losses = []
    for q in sorted(set(groups)):
        rows = [i for i, g in enumerate(groups) if g == q]
        gains = [(2.0 ** labels[i] - 1.0) if gain == "exponential" else labels[i] for i in rows]
        if sum(gains) == 0:
            continue
        norm = math.log(sum(math.exp(scores[i]) for i in rows))
        target = [x / sum(gains) for x in gains]
        losses.append(-sum(t * (scores[i] - norm) for t, i in zip(target, rows, strict=True)))
    return losses


def _random_case(seed: int, n: int = 40, n_groups: int = 7) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, dtype=torch.float64, generator=gen) * 2
    labels = torch.randint(0, 5, (n,), generator=gen).to(torch.float64)
    groups = torch.randint(0, n_groups, (n,), generator=gen) * 3 + 11  # sparse, unsorted ids
    labels[groups == groups[0]] = 0.0  # one query without a relevant item
    return scores, labels, groups


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gain", ["exponential", "linear"])
def test_matches_a_per_query_computation(seed: int, gain: str) -> None:
    scores, labels, groups = _random_case(seed)
    expected = _brute(scores.tolist(), labels.tolist(), groups.tolist(), gain)
    none = softmax_cross_entropy_loss(scores, labels, groups, gain=gain, reduction="none")  # type: ignore[arg-type]
    assert none.tolist() == pytest.approx(expected, rel=1e-12)
    total = softmax_cross_entropy_loss(scores, labels, groups, gain=gain, reduction="sum")  # type: ignore[arg-type]
    mean = softmax_cross_entropy_loss(scores, labels, groups, gain=gain)  # type: ignore[arg-type]
    assert float(total) == pytest.approx(sum(expected), rel=1e-12)
    assert float(mean) == pytest.approx(sum(expected) / len(expected), rel=1e-12)


def test_hand_computed_example() -> None:
    # query 4: labels 2, 1, 0 -> gains 3, 1, 0 -> target 3/4, 1/4, 0; query 8: one relevant item
    scores = torch.tensor([1.0, 0.0, 0.0, 3.0, -1.0])
    labels = torch.tensor([2.0, 1.0, 0.0, 0.0, 1.0])
    groups = torch.tensor([4, 4, 4, 8, 8])
    norm_4 = math.log(math.e + 2.0)
    query_4 = -(0.75 * (1.0 - norm_4) + 0.25 * (0.0 - norm_4))
    query_8 = -(-1.0 - math.log(math.exp(3.0) + math.exp(-1.0)))
    got = softmax_cross_entropy_loss(scores, labels, groups, reduction="none")
    assert got.tolist() == pytest.approx([query_4, query_8], rel=1e-6)


def test_gradient_is_softmax_minus_target_over_the_scored_queries() -> None:
    scores, labels, groups = _random_case(3)
    scores.requires_grad_(True)
    softmax_cross_entropy_loss(scores, labels, groups).backward()
    assert scores.grad is not None
    expected = torch.zeros_like(scores)
    scored = 0
    for q in groups.unique():
        rows = groups == q
        gains = 2.0 ** labels[rows] - 1
        if gains.sum() == 0:
            continue
        scored += 1
        expected[rows] = torch.softmax(scores.detach()[rows], 0) - gains / gains.sum()
    assert torch.allclose(scores.grad, expected / scored, atol=1e-12)
    skipped = groups == groups[0]
    assert torch.equal(scores.grad[skipped], torch.zeros(int(skipped.sum()), dtype=torch.float64))


def test_gradcheck_float64() -> None:
    scores, labels, groups = _random_case(4, n=12, n_groups=3)
    scores.requires_grad_(True)
    for reduction in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda s, r=reduction: softmax_cross_entropy_loss(s, labels, groups, reduction=r),
            (scores,),
        )


def test_queries_without_a_relevant_item_are_skipped() -> None:
    scores = torch.tensor([0.3, -0.2, 5.0, 1.0], requires_grad=True)
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 1, 1])
    both = softmax_cross_entropy_loss(scores, labels, groups)
    alone = softmax_cross_entropy_loss(scores[:2], labels[:2], groups[:2])
    assert both.item() == pytest.approx(alone.item())  # the mean counts scored queries only
    # No relevant item anywhere: 0, in the graph, with zero gradients; "none" is empty.
    empty = softmax_cross_entropy_loss(scores, torch.zeros(4), groups)
    assert empty.item() == 0.0
    empty.backward()
    assert scores.grad is not None and torch.equal(scores.grad, torch.zeros(4))
    none = softmax_cross_entropy_loss(scores, torch.zeros(4), groups, reduction="none")
    assert none.shape == (0,)
    assert softmax_cross_entropy_loss(torch.zeros(0), torch.zeros(0)).item() == 0.0


def test_one_group_without_ids_and_shift_invariance() -> None:
    scores = torch.tensor([0.5, 2.0, -1.0, 0.0])
    labels = torch.tensor([1.0, 3.0, 0.0, 2.0])
    whole = softmax_cross_entropy_loss(scores, labels)
    assert float(whole) == pytest.approx(_brute(scores.tolist(), labels.tolist(), [0] * 4)[0])
    groups = torch.tensor([0, 0, 1, 1])
    shifted = scores + torch.tensor([100.0, 100.0, -7.0, -7.0])  # a constant per query
    assert float(softmax_cross_entropy_loss(shifted, labels, groups)) == pytest.approx(
        float(softmax_cross_entropy_loss(scores, labels, groups)), rel=1e-5
    )


def test_stable_for_huge_scores() -> None:
    scores = torch.tensor([1e4, -1e4, 0.0], requires_grad=True)
    loss = softmax_cross_entropy_loss(scores, torch.tensor([0.0, 1.0, 0.0]))
    assert loss.item() == pytest.approx(2e4)
    loss.backward()
    assert torch.isfinite(scores.grad).all()  # type: ignore[arg-type]
    right = softmax_cross_entropy_loss(torch.tensor([1e4, -1e4]), torch.tensor([1.0, 0.0]))
    assert float(right) == 0.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="scores must be 1-D"):
        softmax_cross_entropy_loss(torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="labels must have the shape"):
        softmax_cross_entropy_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="groups must have the shape"):
        softmax_cross_entropy_loss(torch.zeros(3), torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="groups must hold integer ids"):
        softmax_cross_entropy_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy_loss(torch.zeros(3), torch.zeros(3), reduction="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gain"):
        softmax_cross_entropy_loss(torch.zeros(3), torch.zeros(3), gain="log")  # type: ignore[arg-type]
