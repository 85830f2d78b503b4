"""Robustness of NMT's defaults: does the top task stay as good as training it alone, everywhere?

A matrix of cells. Each cell trains, on the same seeds, single-task training of the top task,
joint training (equal weights) and NMT with the library's defaults (no option set), and passes when

- NMT's top task >= max(single-task, joint) - delta, paired by seed (test AUC; NDCG@10 for the
  ranking row), with delta = max(0.0005, the standard error of the paired difference), and
- every lower task >= joint - 0.3 % (relative, mean over seeds).

The synthetic rows' single-task training is trained once, on the first of them, and recorded for
the others (``"copied_from"``): their data differ only in the lower tasks' labels (`shared_single`).

Joint training is not trained twice: NMT's first stage, its joint start, is joint training with
equal weights, step for step (``tests/training/test_trainer.py`` checks that they are identical),
so each NMT run also records the joint training of its seed, read off that stage with
``trainer.stage_test`` (``"from_nmt_joint_start": true``); ``--train-joint``, or any ``--nmt``
option, trains it on its own.

Rows (data and priorities): Census-Income (real, ``../shared/data``) income > marital, marital >
income, income > education, income > marital > education; synthetic click logs at conflict 0.25,
0.5, 0.75 (200,000 rows, so that the 20,000-row validation and test splits resolve delta;
``--synthetic-rows 60000`` gives the earlier design, whose 6,000-row splits do not); the 3-task
search-log ranking simulator (pay > amount > relevance, pairwise losses; at its centre one score
ranks every query for every task; 1,600 training, 200 validation and 5,000 test queries, so that
the test split's own error stays near delta; ``--search-queries 1600,200,200`` gives the earlier
design, whose test split does not). Columns: a one-factor-at-a-time design around the centre cell
(the default cadence, four evaluations an epoch; batch 1024, Adam lr 1e-3, MMoE at the README's
small sizes): evaluation every 20 steps (on Census-Income, 78 steps an epoch, the default evaluates
every 19 steps: the same runs as the centre) and at epoch ends only; batch 256 / 4096; lr 3e-4 /
3e-3; shared_bottom, mmoe, ple at the library's default sizes and at the small ones (on the ranking
row the small ones, ``mmoe small`` among them: a tower, and so a score, for each task); and three
random combinations of two or more factors (`COMBINATIONS`, drawn once with a fixed seed;
`RANKING_COMBINATIONS` on the ranking row), to catch what one factor at a time misses.

Results go to a JSON-lines file as they finish (``--resume`` continues it); an NMT run whose top
stage's best was tested against its start keeps the test's measurement (``start_comparison``:
difference, standard error, threshold, verdict). The report prints the pass count, every failing
cell with its margin, and draws a heatmap of the margins.

    python benchmarks/bench_robustness.py --quick           # the centre cell of every row (~6 min)
    python benchmarks/bench_robustness.py                   # the design, DESIGN (~93 min, 2 cores)
    python benchmarks/bench_robustness.py --rows census --cells centre,epoch_eval --seeds 5
    python benchmarks/bench_robustness.py --report runs/robustness/results.jsonl
    python benchmarks/bench_robustness.py --report \
        benchmarks/results/robustness_one_run_amd.jsonl \
        benchmarks/results/robustness_combinations_amd.jsonl \
        benchmarks/results/robustness_search_amd.jsonl     # the defaults' 98 cells
    python benchmarks/bench_robustness.py --quick --nmt dual=scaled --output runs/alt
    python benchmarks/bench_robustness.py --rows synthetic --synthetic-rows 60000
    python benchmarks/bench_robustness.py --rows "census income>marital" --census-split 0.7,0.2,0.1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from robustness_design import CELLS, DESIGN, ROWS, SMALL
from robustness_report import DATA_SIZES, METHODS, data_size, read_records, record_key, report

SYNTHETIC_ROWS = 200_000
"""Rows of the synthetic click logs (train 80 %, validation and test 10 % each);
``--synthetic-rows`` changes it (every run of one results file must use the same)."""

SEARCH_QUERIES: tuple[int, int, int] = (1_600, 200, 5_000)
"""Queries of the search-log row's train / validation / test splits: the simulator's default train
and validation (80 and 10 % of 2,000 queries) and a test split 25 times the validation split,
which simulated data gives for free. Every seed is scored on the same test split, whose sampling
error the top rule's delta (the s.e. over seeds) cannot see: with 200 test queries it was 0.0025
on a cell's mean margin (`bench_margin_noise.py`), as large as the margins judged.
``--search-queries`` changes it (every run of one results file must use the same)."""

CENSUS_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)
"""Census-Income's train / validation / test shares; ``--census-split`` changes it, to measure how
the validation split's size moves the cells (every run of one results file must use the same)."""


@dataclass(frozen=True)
class Run:
    row: str
    cell: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        return record_key(asdict(self))


_DATA: dict[str, Any] = {}


def _dataset(row: str) -> Any:
    if row not in _DATA:
        spec = ROWS[row]
        if spec["data"] == "census":
            _DATA[row] = common.census(tasks=spec["tasks"], split=CENSUS_SPLIT)
        elif spec["data"] == "synthetic":
            from nomoretuning.data import make_synthetic

            _DATA[row] = make_synthetic(SYNTHETIC_ROWS, conflict=spec["conflict"], seed=0)
        else:
            from nomoretuning.data.ranking import make_search_logs

            total = sum(SEARCH_QUERIES)
            split = [queries / total for queries in SEARCH_QUERIES]
            _DATA[row] = make_search_logs(total, split=split, tasks=spec["tasks"])
    return _DATA[row]


def data_fields(row: str) -> dict[str, Any]:
    """The `DATA_SIZES` fields of ``row``'s records: its data's size where it can change."""
    data = ROWS[row]["data"]
    if data == "synthetic":
        return {"synthetic_rows": SYNTHETIC_ROWS}
    if data == "search":
        return {"search_queries": list(SEARCH_QUERIES)}
    return {"census_split": list(CENSUS_SPLIT)} if CENSUS_SPLIT != (0.8, 0.1, 0.1) else {}


OVERRIDES: dict[str, Any] = {}
"""Trainer options set on every run (``--set``), to measure an alternative to a default."""
NMT_OVERRIDES: dict[str, Any] = {}
"""NMT options set on every NMT run (``--nmt``), likewise."""


JOINT_FROM_NMT = True
"""Read each seed's joint training off the NMT run's joint start, its first stage (the same
computation: ``tests/training/test_trainer.py`` checks that the two are identical), instead of
training it again; ``--train-joint``, or any ``--nmt`` option, trains it on its own."""


def train(run: Run, weights: Sequence[float] | None = None) -> dict[str, Any]:
    """One run of the matrix with the library's defaults, apart from the cell's one factor;
    with ``weights`` (one per task, in priority order), a fixed weighting of the row's tasks
    instead of the run's method (``bench_weight_front.py``)."""
    return fit(run, weights)[0]


SHARED_SINGLE: dict[str, tuple[str, ...]] = {}
"""Rows whose single-task record another row's job also writes (`shared_single`; set by main)."""


def shared_single(rows: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Single-task training of the synthetic rows, trained once: their click logs differ only in
    the lower tasks' labels (the conflict turns the lower tasks' weights; the top task's labels,
    the features and the splits are the same bitwise, which a test checks), so the first of
    ``rows``' synthetic rows trains it and its record is copied to the others.

    Example:
        >>> shared_single(["census income>marital", "synthetic c0.25", "synthetic c0.75"])
        {'synthetic c0.25': ('synthetic c0.75',)}
    """
    synthetic = [row for row in rows if ROWS[row]["data"] == "synthetic"]
    return {synthetic[0]: tuple(synthetic[1:])} if len(synthetic) > 1 else {}


def train_job(run: Run) -> list[dict[str, Any]]:
    """The records of one job: an NMT run's and, with `JOINT_FROM_NMT`, the joint training of
    the same seed read off its joint start; a single-task run's and its `SHARED_SINGLE` copies
    (``"copied_from"`` its row, no ``wall_s``); any other run's own."""
    record, result, _ = fit(run, None, stage_test=run.method == "nmt" and JOINT_FROM_NMT)
    if run.method == "single":
        copied = {"wall_s": None, "copied_from": run.row}
        return [
            record,
            *({**record, "row": row, **copied} for row in SHARED_SINGLE.get(run.row, ())),
        ]
    if run.method != "nmt" or not JOINT_FROM_NMT:
        return [record]
    start = result.stages[0]
    if start.test is None or start.constrained or start.tasks != list(record["test"]):
        # not SystemExit: a pool worker passes only an Exception back to the parent
        raise RuntimeError(f"{run.key}: NMT has no joint start to read joint training from")
    metric = record["metric"]
    joint = {
        **asdict(Run(run.row, run.cell, "equal", run.seed)),
        "metric": metric,
        "test": {t: start.test[t][metric] for t in start.tasks},
        "valid": {t: start.valid[t][metric] for t in start.tasks},
        "epochs": round(result.epochs * start.steps / result.steps, 4),
        "wall_s": None,  # one run: NMT's wall_s covers both
        "from_nmt_joint_start": True,
    }
    extra = {k: v for k, v in record.items() if k in DATA_SIZES}
    return [record, {**joint, **extra}]


def fit(
    run: Run, weights: Sequence[float] | None = None, *, stage_test: bool = False
) -> tuple[dict[str, Any], Any, Any]:
    """`train`'s run: its record, the trainer's ``FitResult`` and the trained model."""
    import torch

    import nomoretuning as nt
    from nomoretuning.models import build_model, model_arguments
    from nomoretuning.training import Trainer, TrainerConfig

    torch.set_num_threads(1)
    data = _dataset(run.row)
    tasks = list(data.tasks)
    run_tasks = tasks[:1] if run.method == "single" else tasks
    cell = CELLS[run.cell]
    ranking = ROWS[run.row]["data"] == "search"
    name = cell.get("model", "single_score" if ranking else "mmoe")
    options: dict[str, Any] = {}
    if cell.get("sizes", "small") == "small":  # none of them is a single score's
        allowed = model_arguments(name)
        options = {k: v for k, v in SMALL.items() if k in allowed}
    torch.manual_seed(run.seed)
    model = build_model(name, data.features, run_tasks, **options)
    combiner: nt.LossCombiner
    if weights is not None:
        combiner = nt.FixedWeights(dict(zip(tasks, weights, strict=True)))
    elif run.method == "nmt":
        combiner = nt.NMT(tasks, **NMT_OVERRIDES)
    else:
        combiner = nt.EqualWeights(run_tasks)
    trainer_options = {k: v for k, v in cell.items() if k not in ("model", "sizes")}
    trainer_options.update(OVERRIDES)
    if stage_test:
        trainer_options["stage_test"] = True
    config = TrainerConfig(seed=run.seed, progress=False, device="cpu", **trainer_options)
    start = time.perf_counter()
    result = Trainer(model, combiner, data, config).fit()
    metric = "ndcg" if ranking else "auc"
    compared = [  # the top task's stage
        asdict(s.start_comparison)
        for s in result.stages
        if s.start_comparison and not s.constrained
    ]
    lower = [  # with start_test_stages: every, the constrained stages' tests
        {"stage": s.stage, **asdict(s.start_comparison)}
        for s in result.stages
        if s.start_comparison and s.constrained
    ]
    record = {
        **asdict(run),
        **({"weights": list(weights)} if weights is not None else {}),
        "metric": metric,
        "test": {t: result.test[t][metric] for t in run_tasks},
        "valid": {t: result.valid[t][metric] for t in run_tasks},
        "epochs": result.epochs,
        "wall_s": round(time.perf_counter() - start, 1),
        **({"start_comparison": compared[0]} if compared else {}),
        **({"lower_start_comparisons": lower} if lower else {}),
        **data_fields(run.row),
    }
    return record, result, model


def _runs(rows: Sequence[str], cells: Sequence[str] | None, seeds: Sequence[int]) -> Iterator[Run]:
    """The jobs of the matrix (``cells`` on every row; None: each row's `DESIGN`): with
    `JOINT_FROM_NMT` an NMT job also gives joint training, and a row's single-task job that a
    `SHARED_SINGLE` row's job copies is not run on its own."""
    methods = [m for m in METHODS if m != "equal" or not JOINT_FROM_NMT]
    source = {copy: row for row, copies in SHARED_SINGLE.items() for copy in copies}
    for row in rows:
        for cell in DESIGN[row] if cells is None else cells:
            copied = row in source and (cells is not None or cell in DESIGN[source[row]])
            for seed in seeds:
                for method in methods:
                    if not (method == "single" and copied):
                        yield Run(row, cell, method, seed)


def _job_keys(run: Run) -> list[str]:
    """The records a job writes (`train_job`)."""
    if run.method == "nmt" and JOINT_FROM_NMT:
        return [run.key, Run(run.row, run.cell, "equal", run.seed).key]
    copies = SHARED_SINGLE.get(run.row, ()) if run.method == "single" else ()
    return [run.key, *(Run(row, run.cell, "single", run.seed).key for row in copies)]


def _select(names: str | None, known: Sequence[str], what: str) -> list[str]:
    if names is None:
        return list(known)
    parts = [part.strip() for part in names.split(",")]
    chosen = [n for n in known if n in parts]  # exact names, or else substrings of names
    chosen = chosen or [n for n in known if any(part in n for part in parts)]
    if not chosen:
        raise SystemExit(f"--{what} {names!r} matches none of {list(known)}")
    return chosen


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that change the rows' data sizes (`set_data_sizes` applies them)."""
    parser.add_argument(
        "--synthetic-rows",
        type=int,
        default=SYNTHETIC_ROWS,
        help=f"rows of the synthetic click logs (default {SYNTHETIC_ROWS:,})",
    )
    for flag, default, what in (
        ("--census-split", CENSUS_SPLIT, "Census-Income's split shares"),
        ("--search-queries", SEARCH_QUERIES, "queries of the search-log row's splits"),
    ):
        text = ",".join(str(x) for x in default)
        parser.add_argument(flag, default=text, metavar="TRAIN,VALID,TEST", help=f"{what} ({text})")


def set_data_sizes(args: argparse.Namespace) -> None:
    """Sets `SYNTHETIC_ROWS`, `CENSUS_SPLIT` and `SEARCH_QUERIES` from `add_data_flags`' flags."""
    global SYNTHETIC_ROWS, CENSUS_SPLIT, SEARCH_QUERIES
    three = common.three_numbers
    CENSUS_SPLIT = three(args.census_split, float, "--census-split", "0.7,0.2,0.1")
    SEARCH_QUERIES = three(args.search_queries, int, "--search-queries", "1600,200,200")
    SYNTHETIC_ROWS = args.synthetic_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the centre cell of every row")
    parser.add_argument("--rows", help="comma-separated substrings of row names")
    parser.add_argument("--cells", help="comma-separated substrings of cell names")
    parser.add_argument("--seeds", type=common.positive_int, default=3)
    parser.add_argument(
        "--workers", type=common.positive_int, default=2, help="processes (one thread each)"
    )
    parser.add_argument("--output", type=Path, default=Path("runs/robustness"))
    parser.add_argument("--resume", action="store_true", help="continue the results file")
    parser.add_argument(
        "--train-joint",
        action="store_true",
        help="train joint training on its own (by default read off NMT's joint start)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="only report results files (a run in a later file replaces it in an earlier one)",
    )
    common.add_set_flag(parser)
    parser.add_argument(
        "--nmt", action="append", default=[], metavar="OPTION=VALUE", help="an NMT option, likewise"
    )
    add_data_flags(parser)
    args = parser.parse_args()
    set_data_sizes(args)
    OVERRIDES.update(common.trainer_options(args.set))
    NMT_OVERRIDES.update(common.nmt_options(args.nmt))
    global JOINT_FROM_NMT
    JOINT_FROM_NMT = not args.train_joint and not NMT_OVERRIDES
    if args.report is not None:
        records = list(read_records(args.report).values())
        report(records, args.report[0].parent / "heatmap.png", list(ROWS), list(CELLS))
        return
    rows = _select(args.rows, list(ROWS), "rows")
    SHARED_SINGLE.update(shared_single(rows))
    cells = (
        ["centre"]
        if args.quick
        else None
        if args.cells is None
        else _select(args.cells, list(CELLS), "cells")
    )
    results = args.output / "results.jsonl"
    if results.exists() and not args.resume:
        raise SystemExit(f"{results} exists: pass --resume to continue it, or another --output")
    args.output.mkdir(parents=True, exist_ok=True)
    done = read_records([results]) if results.exists() else {}
    for record in done.values():  # one data size per row and file (`read_records`)
        row = record["row"]
        if row in rows and data_size(record) != data_size(data_fields(row)):
            raise SystemExit(f"{results} holds {row} on other data: pass another --output")
    todo = [
        r for r in _runs(rows, cells, range(args.seeds)) if any(k not in done for k in _job_keys(r))
    ]
    joint = "read off NMT's joint start" if JOINT_FROM_NMT else "trained on its own"
    print(
        f"{len(todo)} runs to go ({len(done)} records done; joint training {joint}) with "
        f"{args.workers} workers; {common.machine(1)}",
        flush=True,
    )
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool, results.open("a") as handle:
        for n, records in enumerate(pool.imap_unordered(train_job, todo), 1):
            for record in records:
                handle.write(json.dumps(record) + "\n")
                done[record_key(record)] = record
            handle.flush()
            head = records[0]
            scores = "; ".join(
                f"{r['method']} " + " ".join(f"{t} {x:.4f}" for t, x in r["test"].items())
                for r in records
                if "copied_from" not in r
            )
            print(
                f"[{n}/{len(todo)}] {head['row']} / {head['cell']} seed {head['seed']}: {scores} "
                f"({head['wall_s']} s, {time.perf_counter() - start:.0f} s total)",
                flush=True,
            )
    report(list(done.values()), args.output / "heatmap.png", list(ROWS), list(CELLS))


if __name__ == "__main__":
    common.run(main)
