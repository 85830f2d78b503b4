"""The margin-noise diagnostic: paired differences and their bootstrap over the split."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_margin_noise as noise

from nomoretuning.training.objectives import BinaryObjective, PairwiseObjective

RNG = np.random.default_rng(0)


def _pair(labels: np.ndarray, groups: np.ndarray | None) -> tuple[object, object]:
    a, b = RNG.normal(size=labels.size) + labels, RNG.normal(size=labels.size) + 0.5 * labels
    return ({"t": a}, {"t": labels}, groups), ({"t": b}, {"t": labels}, groups)


@pytest.mark.parametrize("ranking", [False, True])
def test_a_resample_of_every_unit_once_gives_the_whole_split_difference(ranking: bool) -> None:
    labels = RNG.integers(0, 3 if ranking else 2, 120).astype(float)
    groups = np.repeat(RNG.permutation(20), 6) if ranking else None  # queries not in order
    objective = PairwiseObjective(["t"]) if ranking else BinaryObjective(["t"])
    d, se, of_resample, units = noise._differences(objective, "t", _pair(labels, groups))
    assert units == (20 if ranking else 120)
    assert se > 0
    assert of_resample(np.arange(units)) == pytest.approx(d, abs=1e-12)
    assert of_resample(np.arange(units)[::-1]) == pytest.approx(d, abs=1e-12)


def test_the_bootstrap_of_a_difference_that_never_changes_is_zero() -> None:
    assert noise._bootstrap([lambda rows: 0.25, lambda rows: -0.1], 50, 20, seed=0) == 0.0


def test_the_bootstrap_resamples_the_split_once_for_every_seed() -> None:
    values = RNG.normal(size=400)
    seeds = [lambda rows: float(values[rows].mean())] * 3  # three seeds, one split
    alone = noise._bootstrap(seeds[:1], values.size, 300, seed=1)
    assert noise._bootstrap(seeds, values.size, 300, seed=1) == pytest.approx(alone)
    assert alone == pytest.approx(values.std() / values.size**0.5, rel=0.15)


def test_the_reference_is_a_method_or_non_negative_weights() -> None:
    assert noise._weights("1/6:2/3:1/6") == [1 / 6, 2 / 3, 1 / 6]
    assert noise._weights("equal") is None
    assert noise._reference("0.9:0.1") == "0.9:0.1"
    for bad in ("joint", "1:x", "1/0:1", "-1:2", "0:0"):
        with pytest.raises(argparse.ArgumentTypeError, match="give single, equal, or"):
            noise._reference(bad)


@pytest.mark.parametrize("ranking", [False, True])
def test_the_bootstrap_of_one_pair_matches_its_analytic_standard_error(ranking: bool) -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3 if ranking else 2, 2000).astype(float)
    groups = np.repeat(np.arange(200), 10) if ranking else None
    objective = PairwiseObjective(["t"]) if ranking else BinaryObjective(["t"])
    pair = (
        ({"t": rng.normal(size=2000) + labels}, {"t": labels}, groups),
        ({"t": rng.normal(size=2000) + 0.7 * labels}, {"t": labels}, groups),
    )
    _, se, of_resample, units = noise._differences(objective, "t", pair)
    boot = noise._bootstrap([of_resample], units, 400, seed=0)
    assert boot == pytest.approx(se, rel=0.15)  # DeLong's; over the queries
