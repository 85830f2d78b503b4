"""Tuning cost: NMT's one run against the weighted-sum grid search it replaces (2 and 3 tasks).

On the real Census-Income data (80/10/10 split, seed 0), tasks by priority: income, then marital
status, then (3 tasks) education. The grid is the command line's (``nomoretuning grid``):
``grid_weights`` gives 9 weightings 0.9:0.1 ... 0.1:0.9 for two tasks and a simplex lattice of 10
for three; each weighting is one ``Trainer`` run of ``FixedWeights``. NMT is one ``Trainer`` run
with default settings. Every run uses the same MMoE and the trainer's defaults (batch, learning
rate, epochs budget, early stopping), unless an option below sets one (``--set`` sets any trainer
option on every run, to measure an alternative default).

Reported: the epochs and wall time of the whole grid and of NMT, and the primary task's test AUC
that each reaches: for the grid, the point a practitioner would pick (best primary validation AUC)
and the best test AUC of any point (an oracle); for NMT, its one run.

Usage:
    python benchmarks/bench_tuning_cost.py               # 2 and 3 tasks, a few minutes
    python benchmarks/bench_tuning_cost.py --tasks 2 --max-epochs 6 --batch-size 2048
    python benchmarks/bench_tuning_cost.py --set fit_later_heads=true --set metric_guard=1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

import nomoretuning as nt
from nomoretuning.cli.protocols.grid import grid_weights
from nomoretuning.data import PreparedDataset
from nomoretuning.training.trainer import Trainer, TrainerConfig

TASKS = {2: ("income", "marital"), 3: ("income", "marital", "education")}
# A smaller MMoE than the throughput benchmarks (the grid trains it 9 or 10 times).
MODEL = {"num_experts": 4, "expert_dims": (64,), "tower_dims": (16,), "embedding_dim": 8}


def run(
    data: PreparedDataset, combiner: nt.LossCombiner, args: argparse.Namespace
) -> dict[str, Any]:
    # The trainer's defaults (batch, learning rate, epochs, patience, evaluation cadence) unless
    # an option is given: the promise is judged at the defaults.
    chosen = {"batch_size": args.batch_size, "lr": args.lr, "max_epochs": args.max_epochs}
    given: dict[str, Any] = {k: v for k, v in chosen.items() if v is not None} | args.options
    config = TrainerConfig(**given, progress=False, device="cpu")
    model = common.mmoe(data, seed=0, **MODEL)
    start = time.perf_counter()
    result = Trainer(model, combiner, data, config).fit()
    return {
        "wall_s": time.perf_counter() - start,
        "epochs": result.epochs,
        "valid": {t: result.valid[t]["auc"] for t in data.tasks},
        "test": {t: result.test[t]["auc"] for t in data.tasks},
        "stages": [s.to_dict() for s in result.stages],
    }


def compare(n_tasks: int, args: argparse.Namespace) -> dict[str, Any]:
    tasks = TASKS[n_tasks]
    data = common.census(args.census, tasks=tasks)
    primary = tasks[0]
    grid: list[dict[str, Any]] = []
    for weights in grid_weights(tasks, 9, 4):
        record = run(data, nt.FixedWeights(weights), args)
        record["weights"] = weights
        grid.append(record)
        shown = ":".join(f"{weights[t]:.2f}" for t in tasks)
        print(
            f"  grid {shown:<16} {record['epochs']:>5.1f} epochs {record['wall_s']:>6.1f} s  "
            + "  ".join(f"{t} {record['test'][t]:.4f}" for t in tasks),
            flush=True,
        )
    nmt = run(data, nt.NMT(list(tasks)), args)
    print(
        f"  NMT {'':<17} {nmt['epochs']:>5.1f} epochs {nmt['wall_s']:>6.1f} s  "
        + "  ".join(f"{t} {nmt['test'][t]:.4f}" for t in tasks),
        flush=True,
    )
    picked = max(grid, key=lambda r: r["valid"][primary])
    oracle = max(grid, key=lambda r: r["test"][primary])
    grid_epochs = sum(r["epochs"] for r in grid)
    grid_wall = sum(r["wall_s"] for r in grid)
    print(f"{n_tasks} tasks ({', '.join(tasks)}; primary {primary}):")
    print(f"  {'':<36} {'runs':>5} {'epochs':>8} {'wall s':>8}  {primary} test AUC")
    print(
        f"  {'weighted-sum grid, picked by valid':<36} {len(grid):>5} {grid_epochs:>8.1f} "
        f"{grid_wall:>8.1f}  {picked['test'][primary]:.4f} (weights "
        + ":".join(f"{picked['weights'][t]:.2f}" for t in tasks)
        + ")"
    )
    print(
        f"  {'weighted-sum grid, best test (oracle)':<36} {'':>5} {'':>8} {'':>8}  "
        f"{oracle['test'][primary]:.4f}"
    )
    print(
        f"  {'NMT, one run':<36} {1:>5} {nmt['epochs']:>8.1f} {nmt['wall_s']:>8.1f}  "
        f"{nmt['test'][primary]:.4f}"
    )
    print(
        f"  grid / NMT: {grid_epochs / nmt['epochs']:.1f}x the epochs, "
        f"{grid_wall / nmt['wall_s']:.1f}x the wall time; primary AUC NMT - picked grid point: "
        f"{nmt['test'][primary] - picked['test'][primary]:+.4f}"
    )
    first = nmt["stages"][0]["valid"][primary]["auc"]
    print(
        f"  NMT's {primary} validation AUC: {first:.4f} when its first stage ended, "
        f"{nmt['valid'][primary]:.4f} at the end"
    )
    others = [t for t in tasks if t != primary]
    print(
        "  other tasks' test AUC, NMT vs picked grid point: "
        + ", ".join(f"{t} {nmt['test'][t]:.4f} vs {picked['test'][t]:.4f}" for t in others)
    )
    return {"grid": grid, "nmt": nmt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--census", type=Path, default=None, help="raw Census-Income file")
    parser.add_argument("--tasks", type=int, choices=(2, 3), nargs="+", default=[2, 3])
    defaults = TrainerConfig()
    parser.add_argument(
        "--batch-size", type=common.positive_int, help=f"default: {defaults.batch_size}"
    )
    parser.add_argument("--lr", type=float, help=f"default: {defaults.lr}")
    parser.add_argument(
        "--max-epochs",
        type=common.positive_int,
        help=f"per run (per stage for NMT); {defaults.max_epochs}",
    )
    parser.add_argument("--threads", type=common.positive_int, default=1)
    common.add_set_flag(parser)
    args = parser.parse_args()
    args.options = common.trainer_options(args.set)

    torch.set_num_threads(args.threads)
    print(common.machine(args.threads))
    print(
        f"data: Census-Income ({common.census_path(args.census)}); MMoE {MODEL}; batch "
        f"{args.batch_size or defaults.batch_size}, Adam lr {args.lr or defaults.lr}, at most "
        f"{args.max_epochs or defaults.max_epochs} epochs per run (per stage for NMT), early "
        f"stopping with the trainer's default patience ({defaults.patience:g} "
        f"{defaults.patience_unit})"
        + "".join(f"; {name}={value}" for name, value in args.options.items())
    )
    for n in args.tasks:
        compare(n, args)


if __name__ == "__main__":
    common.run(main)
