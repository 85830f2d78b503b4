"""Can any weighted sum meet the search-log row's lower-task rule while keeping pay?

The robustness benchmark's search-log row (pay > amount > relevance, one score ranks every
query, pairwise losses) fails its lower-task rule in every cell: NMT keeps pay, and relevance ends
40-45 % below joint training's. This benchmark asks whether that rule can be met at all by the
same model at the same settings: it trains single-task pay, joint training (equal weights) and
a range of fixed weightings, and prints, per weighting and mean over seeds, pay's NDCG@10 against
max(single-task, joint) (paired by seed) and each lower task against joint training, marking the
weightings that meet both rules of the robustness benchmark (pay within delta, every lower task
>= joint - 0.3 %). If none does, the cell's lower-task rule is out of reach of this model's
weighted sums, not only of NMT.

    python benchmarks/bench_search_front.py                 # 14 weightings x 3 seeds, ~3 minutes
    python benchmarks/bench_search_front.py --seeds 5 --pay 0.9,0.95,0.99
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robustness
import common

ROW = "search pay>amount>relevance"
PAY_WEIGHTS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)

Weights = tuple[float, float, float]


def weightings(pay: Sequence[float]) -> list[Weights]:
    """Per pay weight p: the rest split evenly over the lower tasks, and all of it on relevance."""
    found: list[Weights] = []
    for p in pay:
        found.append((p, (1 - p) / 2, (1 - p) / 2))
        found.append((p, 0.0, 1 - p))
    return found


def train(job: tuple[str, Weights | None, int]) -> dict[str, Any]:
    """One run: ``single`` (pay alone), ``equal`` or ``weights`` (the given weighting)."""
    import torch

    import nomoretuning as nt
    from nomoretuning.models import build_model
    from nomoretuning.training import Trainer, TrainerConfig

    method, weights, seed = job
    torch.set_num_threads(1)
    data = robustness._dataset(ROW)
    tasks = list(data.tasks)
    run_tasks = tasks[:1] if method == "single" else tasks
    torch.manual_seed(seed)
    model = build_model("single_score", data.features, run_tasks)
    combiner: nt.LossCombiner = (
        nt.FixedWeights(dict(zip(tasks, weights, strict=True)))
        if weights is not None
        else nt.EqualWeights(run_tasks)
    )
    start = time.perf_counter()
    result = Trainer(model, combiner, data, TrainerConfig(seed=seed, progress=False)).fit()
    return {
        "method": method,
        "weights": weights,
        "seed": seed,
        "test": {t: result.test[t]["ndcg"] for t in run_tasks},
        "epochs": result.epochs,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def report(records: Sequence[dict[str, Any]]) -> int:
    """Print one line per weighting, judged by the robustness benchmark's rules against
    single-task and joint training on the same seeds; return how many meet both."""
    by_method: dict[str, dict[int, dict[str, Any]]] = {"single": {}, "equal": {}}
    by_weights: dict[Weights, dict[int, dict[str, Any]]] = {}
    for r in records:
        if r["method"] == "weights":
            by_weights.setdefault(tuple(r["weights"]), {})[r["seed"]] = r
        else:
            by_method[r["method"]][r["seed"]] = r
    meeting, total = 0, 0
    for weights, runs in by_weights.items():
        name = ":".join(f"{w:g}" for w in weights)
        found = robustness.verdict(ROW, name, by_method["single"], by_method["equal"], runs)
        if found is None:
            continue
        if total == 0:
            lower = "  ".join(found.lower)
            print(f"{'weights':<28} {found.top} margin (s.e.)  {lower}")
        total += 1
        meeting += found.passed
        lows = "  ".join(f"{t} {x:+6.1f} %" for t, x in found.lower.items())
        mark = "   MEETS BOTH" if found.passed else ""
        print(f"{name:<28} {found.margin:+.4f} ({found.stderr:.4f})   {lows}{mark}")
    print(f"{meeting} of {total} weightings meet both rules (seeds {sorted(by_method['single'])})")
    return meeting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes (one thread each)")
    parser.add_argument(
        "--pay",
        default=",".join(str(p) for p in PAY_WEIGHTS),
        help="comma-separated weights of pay, each in (0, 1)",
    )
    args = parser.parse_args()
    try:
        pay = [float(p) for p in args.pay.split(",")]
    except ValueError:
        raise SystemExit(f"--pay {args.pay!r}: give numbers, e.g. 0.9,0.95") from None
    if not pay or any(not 0 < p < 1 for p in pay):
        raise SystemExit(f"--pay {args.pay!r}: every weight must be in (0, 1)")
    if args.seeds < 2:
        raise SystemExit("--seeds must be at least 2 (the margin's standard error needs two)")
    seeds = range(args.seeds)
    jobs: list[tuple[str, Weights | None, int]] = [
        (m, None, s) for m in ("single", "equal") for s in seeds
    ]
    jobs += [("weights", w, s) for w in weightings(pay) for s in seeds]
    print(f"{len(jobs)} runs with {args.workers} workers; {common.machine(1)}", flush=True)
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        records = pool.map(train, jobs)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    report(records)


if __name__ == "__main__":
    main()
