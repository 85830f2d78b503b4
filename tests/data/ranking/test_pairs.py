"""data.ranking.make_pairs: core's make_pairs for numpy arrays and sequences as well as tensors."""

from __future__ import annotations

import numpy as np
import torch

from nomoretuning.core import losses
from nomoretuning.data.ranking import make_pairs


def test_array_likes_give_the_pairs_of_their_tensors() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300).astype(np.float64)
    groups = rng.integers(0, 20, 300)
    mask = rng.random(300) > 0.2
    expected = losses.make_pairs(
        torch.from_numpy(labels), torch.from_numpy(groups), mask=torch.from_numpy(mask)
    )
    for got in (
        make_pairs(labels, groups, mask=mask),
        make_pairs(labels.tolist(), groups.tolist(), mask=mask.tolist()),
        make_pairs(torch.from_numpy(labels), groups, mask=torch.from_numpy(mask)),
    ):
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_sampling_is_passed_through() -> None:
    labels, groups = np.tile(np.arange(4), 50), np.repeat(np.arange(50), 4)
    first, second = make_pairs(
        labels, groups, max_pairs_per_group=2, generator=torch.Generator().manual_seed(3)
    )
    expected = losses.make_pairs(
        torch.from_numpy(labels),
        torch.from_numpy(groups),
        max_pairs_per_group=2,
        generator=torch.Generator().manual_seed(3),
    )
    assert torch.equal(first, expected[0]) and torch.equal(second, expected[1])
    assert len(first) == 100
