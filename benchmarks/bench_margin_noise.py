"""How much of a robustness cell's top-task margin is the evaluation split's own sampling error?

The robustness rule (`bench_robustness.py`) compares NMT's top task with single-task training
paired by seed, with ``delta`` the standard error of that difference *over seeds*. Every seed is
scored on the same test split, so that standard error leaves out the split's own sampling error:
two models of equal quality still differ on a finite split, and on the same split for every seed.
For one cell this script trains NMT and the reference method on each seed (the benchmark's own
runs, `bench_robustness.fit`), scores both on the validation and the test split and prints:

- per seed, NMT − reference with its paired standard error over the split (DeLong's for AUC,
  over the queries for NDCG: `Objective.difference`);
- the mean over seeds with two standard errors: over seeds (the rule's) and over the split
  (a bootstrap of the split's rows, or of its groups where it has them: queries of a ranking
  split, users of the click logs; rescoring every seed's pair on each resample, so that the
  shared split counts once).

    python benchmarks/bench_margin_noise.py --row search --cell epoch_eval --seeds 5
    python benchmarks/bench_margin_noise.py --row "census income>marital>education" --cell lr3e-3
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robustness
import common

Difference = Callable[[np.ndarray], float]
"""A paired difference of two models' metric on the rows (or queries) a resample picks."""


def _differences(
    objective: Any, task: str, pair: tuple[Any, Any]
) -> tuple[float, float, Difference, int]:
    """NMT − reference on a whole split with its paired standard error, the same difference as
    a function of a resample, and the number of units resampled: rows, or the split's groups
    where it has them (queries of a ranking split, users of the click logs), resampled whole."""
    (nmt, labels, groups), (reference, _, _) = pair
    y, a, b = labels[task], nmt[task], reference[task]
    d, se = objective.difference(task, y, a, b, groups)
    if groups is None:
        return (
            d,
            se,
            lambda rows: objective.difference(task, y[rows], a[rows], b[rows], None)[0],
            y.size,
        )
    order = np.argsort(groups, kind="stable")
    _, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)

    def of_queries(queries: np.ndarray) -> float:
        rows = np.concatenate([order[starts[q] : starts[q] + sizes[q]] for q in queries])
        relabeled = np.repeat(np.arange(queries.size), sizes[queries])
        return objective.difference(task, y[rows], a[rows], b[rows], relabeled)[0]

    return d, se, of_queries, sizes.size


def _bootstrap(differences: list[Difference], units: int, draws: int, seed: int) -> float:
    """The standard error of the mean of ``differences`` over resamples of ``units`` rows or
    groups, the same resample for every seed's pair."""
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(draws):
        picked = rng.integers(0, units, units)
        means.append(statistics.fmean(f(picked) for f in differences))
    return statistics.stdev(means)


def _weights(reference: str) -> list[float] | None:
    """The fixed weights a reference names (``a:b:c``), or None for a method.

    >>> _weights("1/6:2/3:1/6") == [1 / 6, 2 / 3, 1 / 6], _weights("single")
    (True, None)
    """
    if ":" not in reference:
        return None
    return [float(Fraction(part)) for part in reference.split(":")]


def _reference(text: str) -> str:
    """``--against``: a method the benchmark trains, or fixed weights (checked)."""
    if text in ("single", "equal"):
        return text
    try:
        weights = _weights(text)
    except (ValueError, ZeroDivisionError):
        weights = None
    if not weights or min(weights) < 0 or sum(weights) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give single, equal, or non-negative weights such as 1/6:2/3:1/6"
        )
    return text


def main() -> None:
    import torch

    from nomoretuning.training.objectives import objective_for
    from nomoretuning.training.prediction import predict

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", required=True, help="a substring of a bench_robustness row")
    parser.add_argument("--cell", default="centre", help="a bench_robustness cell")
    parser.add_argument("--seeds", type=common.at_least(2), default=5)
    parser.add_argument(
        "--against",
        type=_reference,
        default="single",
        help="single, equal, or fixed weights in priority order, e.g. 1/6:2/3:1/6",
    )
    parser.add_argument(
        "--draws", type=common.positive_int, default=500, help="bootstrap resamples"
    )
    robustness.add_data_flags(parser)
    args = parser.parse_args()
    robustness.set_data_sizes(args)
    row = robustness._select(args.row, list(robustness.ROWS), "row")[0]
    cell = robustness._select(args.cell, list(robustness.CELLS), "cell")[0]
    data = robustness._dataset(row)
    top = data.tasks[0]
    objective = objective_for(data, tuple(data.tasks))
    print(f"{row} / {cell}: {top}, NMT − {args.against}, {args.seeds} seeds")
    found: dict[str, list[tuple[float, float, Difference, int]]] = {"valid": [], "test": []}
    for seed in range(args.seeds):
        scores, tested = {}, []
        for method in ("nmt", args.against):
            weights = _weights(method)
            run = robustness.Run(row, cell, "weights" if weights else method, seed)
            record, _, model = robustness.fit(run, weights)
            tested.append(f"{record['test'][top]:.4f}")
            for name in found:
                split = getattr(data, name)
                scores[method, name] = predict(model, split, 4096, torch.device("cpu"), [top])
        for name, seen in found.items():
            pair = (scores["nmt", name], scores[args.against, name])
            seen.append(_differences(objective, top, pair))
        print(
            f"  seed {seed} (test {' against '.join(tested)}): "
            + "; ".join(f"{n} {s[-1][0]:+.4f} (s.e. {s[-1][1]:.4f})" for n, s in found.items()),
            flush=True,
        )
    for name, seen in found.items():
        units = seen[0][3]
        grouped = scores["nmt", name][2] is not None  # the split's group ids, if any
        ranking = objective.selection_metric == "ndcg"
        unit_name = ("queries" if ranking else "groups (users)") if grouped else "rows"
        mean = statistics.fmean(d for d, _, _, _ in seen)
        over_seeds = statistics.stdev(d for d, _, _, _ in seen) / len(seen) ** 0.5
        over_split = _bootstrap([f for _, _, f, _ in seen], units, args.draws, seed=0)
        print(
            f"  {name}: mean {mean:+.4f}; s.e. over seeds {over_seeds:.4f}, over the split "
            f"{over_split:.4f} ({args.draws} resamples of {units:,} {unit_name})"
        )


if __name__ == "__main__":
    common.run(main)
