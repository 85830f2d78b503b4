"""Can any weighted sum meet a robustness cell's rules, where NMT does not?

A cell of the robustness benchmark (``bench_robustness.py``) passes when NMT's top task is within
delta of max(single-task, joint training), paired by seed, and every lower task is at most 0.3 %
below joint training. Where NMT fails one of the two, this benchmark asks whether the rules can
be met at all by the same model at the same settings: it trains the cell's single-task and joint
runs and a range of fixed weightings of its tasks, and prints, per weighting and mean over seeds,
the top task's margin against max(single-task, joint) (paired by seed) and each lower task
against joint training, marking the weightings that meet both rules. If none does, the cell's
goal is out of reach of this model's weighted sums, not only of NMT.

The default row is the search-log simulator (pay > amount > relevance, one score ranks every
query, pairwise losses), whose lower-task rule NMT fails in every cell.

    python benchmarks/bench_weight_front.py                 # search row, 14 weightings x 3 seeds
    python benchmarks/bench_weight_front.py --seeds 5 --top 0.9,0.95,0.99
    python benchmarks/bench_weight_front.py --row "synthetic c0.75" --cell "shared_bottom default"
    python benchmarks/bench_weight_front.py --output front.jsonl    # also keep every run's record
    python benchmarks/bench_weight_front.py --report front.jsonl    # only report kept records
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robustness
import common
from robustness_report import verdict

ROW = "search pay>amount>relevance"
TOP_WEIGHTS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)

Weights = tuple[float, ...]
Job = tuple[robustness.Run, Weights | None]


def weightings(top: Sequence[float], tasks: int) -> list[Weights]:
    """Per top-task weight p: the rest split evenly over the lower tasks and, with more than one
    lower task, all of it on the last."""
    found: list[Weights] = []
    for p in top:
        rest = tasks - 1
        found.append((p, *([(1 - p) / rest] * rest)))
        if rest > 1:
            found.append((p, *([0.0] * (rest - 1)), 1 - p))
    return found


def train(job: Job) -> dict[str, Any]:
    """One run: the robustness benchmark's ``single`` or ``equal``, or a fixed weighting."""
    run, weights = job
    return robustness.train(run, weights)


def report(records: Sequence[dict[str, Any]], row: str = ROW) -> int:
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
        name = ":".join(f"{w:.3g}" for w in weights)
        found = verdict(row, name, by_method["single"], by_method["equal"], runs)
        if found is None:
            continue
        if total == 0:
            lower = "  ".join(found.lower)
            print(f"{'weights':<28} {found.top} margin (s.e.)  {lower}")
        total += 1
        meeting += found.passed
        lows = "  ".join(f"{t} {x:+6.2f} %" for t, x in found.lower.items())
        mark = "   MEETS BOTH" if found.passed else ""
        print(f"{name:<28} {found.margin:+.4f} ({found.stderr:.4f})   {lows}{mark}")
    print(f"{meeting} of {total} weightings meet both rules (seeds {sorted(by_method['single'])})")
    return meeting


def _one(name: str, known: Sequence[str], what: str) -> str:
    if name not in known:
        raise SystemExit(f"--{what} {name!r}: give one of {list(known)}")
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", default=ROW, help=f"a robustness row (default {ROW!r})")
    parser.add_argument("--cell", default="centre", help="a robustness cell (default centre)")
    parser.add_argument("--seeds", type=common.positive_int, default=3)
    parser.add_argument(
        "--workers", type=common.positive_int, default=2, help="processes (one thread each)"
    )
    parser.add_argument(
        "--top",
        default=",".join(str(p) for p in TOP_WEIGHTS),
        help="comma-separated weights of the top task, each in (0, 1)",
    )
    parser.add_argument("--output", type=Path, help="a JSON-lines file for every run's record")
    parser.add_argument("--report", type=Path, help="only report a file written by --output")
    robustness.add_data_flags(parser)
    args = parser.parse_args()
    robustness.set_data_sizes(args)
    if args.report is not None:
        if not args.report.is_file():
            raise SystemExit(f"--report {args.report}: no such file (write one with --output)")
        lines = args.report.read_text().splitlines()
        kept = [json.loads(line) for line in lines if line]
        report(kept, kept[0]["row"] if kept else ROW)
        return
    if args.output is not None and args.output.exists():
        raise SystemExit(f"--output {args.output} exists: give another file")
    row = _one(args.row, list(robustness.ROWS), "row")
    cell = _one(args.cell, list(robustness.CELLS), "cell")
    try:
        top = [float(p) for p in args.top.split(",")]
    except ValueError:
        raise SystemExit(f"--top {args.top!r}: give numbers, e.g. 0.9,0.95") from None
    if not top or any(not 0 < p < 1 for p in top):
        raise SystemExit(f"--top {args.top!r}: every weight must be in (0, 1)")
    if args.seeds < 2:
        raise SystemExit("--seeds must be at least 2 (the margin's standard error needs two)")
    tasks = len(robustness._dataset(row).tasks)  # loaded once, before the workers fork
    seeds = range(args.seeds)
    jobs: list[Job] = [
        (robustness.Run(row, cell, m, s), None) for m in ("single", "equal") for s in seeds
    ]
    jobs += [
        (robustness.Run(row, cell, "weights", s), w) for w in weightings(top, tasks) for s in seeds
    ]
    print(f"{row} / {cell}: {len(jobs)} runs with {args.workers} workers; {common.machine(1)}")
    start = time.perf_counter()
    records: list[dict[str, Any]] = []
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        multiprocessing.get_context("fork").Pool(args.workers) as pool,
        args.output.open("x") if args.output is not None else nullcontext() as handle,
    ):
        for record in pool.imap(train, jobs):  # each record kept as it finishes
            records.append(record)
            if handle is not None:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
    print(f"trained in {time.perf_counter() - start:.0f} s", flush=True)
    if args.output is not None:
        print(f"records: {args.output}")
    report(records, row)


if __name__ == "__main__":
    common.run(main)
