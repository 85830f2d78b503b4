"""Robustness of NMT's defaults: does the top task stay as good as training it alone, everywhere?

A matrix of cells. Each cell trains, on the same seeds, single-task training of the top task,
joint training (equal weights) and NMT with the library's defaults (no option set), and passes when

- NMT's top task >= max(single-task, joint) - delta, paired by seed (test AUC; NDCG@10 for the
  ranking row), with delta = max(0.0005, the standard error of the paired difference), and
- every lower task >= joint - 0.3 % (relative, mean over seeds).

Rows (data and priorities): Census-Income (real, ``../shared/data``) income > marital,
marital > income, income > education, income > marital > education; synthetic click logs at
conflict 0.25, 0.5, 0.75 (200,000 rows, so that the 20,000-row validation and test splits resolve
delta; ``--synthetic-rows 60000`` gives the earlier design, whose 6,000-row splits do not); the
3-task search-log ranking simulator (pay > amount > relevance,
single-score model, pairwise losses). Columns: a one-factor-at-a-time design around the centre
cell (evaluation once per epoch, batch 1024, Adam lr 1e-3, MMoE at the README's small sizes):
evaluation every 20 steps; batch 256 / 4096; lr 3e-4 / 3e-3; shared_bottom, mmoe, ple at the
library's default sizes and at the small ones (the architecture does not apply to the ranking row,
whose model is a single score).

Results go to a JSON-lines file as they finish (``--resume`` continues it); an NMT run whose top
stage's best was tested against its start keeps the test's measurement (``start_comparison``:
difference, standard error, threshold, verdict). The report prints the pass count, every failing
cell with its margin, and draws a heatmap of the margins.

    python benchmarks/bench_robustness.py --quick           # the centre cell of every row
    python benchmarks/bench_robustness.py                   # every cell (hours on 2 cores)
    python benchmarks/bench_robustness.py --rows census --cells centre,e20 --seeds 5
    python benchmarks/bench_robustness.py --report runs/robustness/results.jsonl
    cd benchmarks/results && python ../bench_robustness.py --report \
        robustness_later_heads_guard.jsonl robustness_mmoe_default.jsonl \
        robustness_spread_slack.jsonl                                      # the defaults' 64 cells
    python benchmarks/bench_robustness.py --quick --nmt dual=scaled --output runs/alt
    python benchmarks/bench_robustness.py --rows synthetic --synthetic-rows 60000
    python benchmarks/bench_robustness.py --rows "census income>marital" --census-split 0.7,0.2,0.1
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

SMALL: dict[str, Any] = {
    "num_experts": 4,
    "expert_dims": (64, 64),
    "bottom_dims": (64, 64),
    "gate_dims": (),
    "tower_dims": (32,),
}
"""The README's small sizes (each model takes the options it has)."""

ROWS: dict[str, dict[str, Any]] = {
    "census income>marital": {"data": "census", "tasks": ("income", "marital")},
    "census marital>income": {"data": "census", "tasks": ("marital", "income")},
    "census income>education": {"data": "census", "tasks": ("income", "education")},
    "census income>marital>education": {
        "data": "census",
        "tasks": ("income", "marital", "education"),
    },
    "synthetic c0.25": {"data": "synthetic", "conflict": 0.25},
    "synthetic c0.5": {"data": "synthetic", "conflict": 0.5},
    "synthetic c0.75": {"data": "synthetic", "conflict": 0.75},
    "search pay>amount>relevance": {"data": "search", "tasks": ("pay", "amount", "relevance")},
}

CELLS: dict[str, dict[str, Any]] = {
    "centre": {},
    "e20": {"eval_every": 20},
    "batch256": {"batch_size": 256},
    "batch4096": {"batch_size": 4096},
    "lr3e-4": {"lr": 3e-4},
    "lr3e-3": {"lr": 3e-3},
    "shared_bottom small": {"model": "shared_bottom"},
    "shared_bottom default": {"model": "shared_bottom", "sizes": "default"},
    "mmoe default": {"sizes": "default"},
    "ple small": {"model": "ple"},
    "ple default": {"model": "ple", "sizes": "default"},
}
"""One factor at a time around the centre cell (see the module docstring)."""

SYNTHETIC_ROWS = 200_000
"""Rows of the synthetic click logs (train 80 %, validation and test 10 % each);
``--synthetic-rows`` changes it (every run of one results file must use the same)."""

CENSUS_SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)
"""Census-Income's train / validation / test shares; ``--census-split`` changes it, to measure how
the validation split's size moves the cells (every run of one results file must use the same)."""

METHODS = ("single", "equal", "nmt")
DELTA = 0.0005
LOWER_TOLERANCE = 0.3  # percent


@dataclass(frozen=True)
class Run:
    row: str
    cell: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.row}|{self.cell}|{self.method}|{self.seed}"


@dataclass
class Verdict:
    row: str
    cell: str
    seeds: int
    top: str
    nmt: float
    single: float
    joint: float
    margin: float
    stderr: float
    lower: dict[str, float] = field(default_factory=dict)  # percent vs joint
    epochs: float = 0.0

    @property
    def delta(self) -> float:
        return max(DELTA, self.stderr)

    @property
    def top_ok(self) -> bool:
        return self.margin >= -self.delta

    @property
    def lower_ok(self) -> bool:
        return all(v >= -LOWER_TOLERANCE for v in self.lower.values())

    @property
    def passed(self) -> bool:
        return self.top_ok and self.lower_ok

    @property
    def failure(self) -> str:
        """Which rule a failing cell breaks: ``top``, ``lower`` or ``both``."""
        return "both" if not (self.top_ok or self.lower_ok) else "top" if self.lower_ok else "lower"


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

            _DATA[row] = make_search_logs(tasks=spec["tasks"])
    return _DATA[row]


OVERRIDES: dict[str, Any] = {}
"""Trainer options set on every run (``--set``), to measure an alternative to a default."""
NMT_OVERRIDES: dict[str, Any] = {}
"""NMT options set on every NMT run (``--nmt``), likewise."""


def train(run: Run, weights: Sequence[float] | None = None) -> dict[str, Any]:
    """One run of the matrix with the library's defaults, apart from the cell's one factor;
    with ``weights`` (one per task, in priority order), a fixed weighting of the row's tasks
    instead of the run's method (``bench_weight_front.py``)."""
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
    name = "single_score" if ranking else cell.get("model", "mmoe")
    options: dict[str, Any] = {}
    if not ranking and cell.get("sizes", "small") == "small":
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
    return {
        **asdict(run),
        **({"weights": list(weights)} if weights is not None else {}),
        "metric": metric,
        "test": {t: result.test[t][metric] for t in run_tasks},
        "valid": {t: result.valid[t][metric] for t in run_tasks},
        "epochs": result.epochs,
        "wall_s": round(time.perf_counter() - start, 1),
        **({"start_comparison": compared[0]} if compared else {}),
        **({"lower_start_comparisons": lower} if lower else {}),
        **({"synthetic_rows": SYNTHETIC_ROWS} if ROWS[run.row]["data"] == "synthetic" else {}),
        **(
            {"census_split": list(CENSUS_SPLIT)}
            if ROWS[run.row]["data"] == "census" and CENSUS_SPLIT != (0.8, 0.1, 0.1)
            else {}
        ),
    }


def _runs(rows: Sequence[str], cells: Sequence[str], seeds: Sequence[int]) -> Iterator[Run]:
    for row in rows:
        for cell in cells:
            if ROWS[row]["data"] == "search" and ("model" in CELLS[cell] or "sizes" in CELLS[cell]):
                continue  # the ranking row's model is a single score
            for seed in seeds:
                for method in METHODS:
                    yield Run(row, cell, method, seed)


def verdict(
    row: str,
    cell: str,
    single: dict[int, dict[str, Any]],
    joint: dict[int, dict[str, Any]],
    nmt: dict[int, dict[str, Any]],
) -> Verdict | None:
    """One cell's verdict from each method's records by seed (``nmt``: the method judged), over
    their common seeds; None with fewer than two."""
    seeds = sorted(set(single) & set(joint) & set(nmt))
    if len(seeds) < 2:
        return None
    tasks = list(nmt[seeds[0]]["test"])
    top = tasks[0]
    diffs = [
        nmt[s]["test"][top] - max(single[s]["test"][top], joint[s]["test"][top]) for s in seeds
    ]
    lower = {
        t: statistics.mean(
            100 * (nmt[s]["test"][t] - joint[s]["test"][t]) / joint[s]["test"][t] for s in seeds
        )
        for t in tasks[1:]
    }
    return Verdict(
        row,
        cell,
        len(seeds),
        top,
        statistics.mean(nmt[s]["test"][top] for s in seeds),
        statistics.mean(single[s]["test"][top] for s in seeds),
        statistics.mean(joint[s]["test"][top] for s in seeds),
        statistics.mean(diffs),
        statistics.stdev(diffs) / math.sqrt(len(diffs)),
        lower,
        statistics.mean(nmt[s]["epochs"] for s in seeds),
    )


def verdicts(records: Sequence[dict[str, Any]]) -> list[Verdict]:
    """One verdict per (row, cell) with all three methods on at least two common seeds."""
    table: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in records:
        table.setdefault((r["row"], r["cell"]), {}).setdefault(r["method"], {})[r["seed"]] = r
    out = []
    for (row, cell), methods in table.items():
        if set(methods) != set(METHODS):
            continue
        found = verdict(row, cell, *(methods[m] for m in METHODS))
        if found is not None:
            out.append(found)
    order = {name: i for i, name in enumerate(ROWS)}
    cells = {name: i for i, name in enumerate(CELLS)}
    return sorted(out, key=lambda v: (order[v.row], cells[v.cell]))


def record_key(record: dict[str, Any]) -> str:
    """The `Run.key` of a run's record."""
    return Run(record["row"], record["cell"], record["method"], record["seed"]).key


def read_records(files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """The runs recorded in ``files`` by `record_key`, each run once: a run (row, cell, method,
    seed) recorded again in a later file replaces the earlier record."""
    runs: dict[str, dict[str, Any]] = {}
    for file in files:
        if not file.is_file():
            raise SystemExit(f"--report {file}: no such file")
        for line in file.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                runs[record_key(record)] = record
    return runs


def report(records: Sequence[dict[str, Any]], heatmap: Path | None) -> list[Verdict]:
    found = verdicts(records)
    passed = sum(v.passed for v in found)
    print(
        f"{passed}/{len(found)} cells pass (NMT's top task >= max(single, joint) - delta, "
        f"delta = max({DELTA}, paired s.e.); lower tasks >= joint - {LOWER_TOLERANCE} %)"
    )
    for v in found:
        lower = ", ".join(f"{t} {x:+.2f} %" for t, x in v.lower.items())
        verdict = "PASS" if v.passed else f"FAIL {v.failure}"
        print(
            f"  {verdict:10s}  {v.row:32s} {v.cell:22s} n={v.seeds} "
            f"{v.top}: nmt {v.nmt:.4f} single {v.single:.4f} joint {v.joint:.4f} "
            f"margin {v.margin:+.4f} (s.e. {v.stderr:.4f}) | {lower} | NMT epochs {v.epochs:.1f}"
        )
    worst = sorted(found, key=lambda v: v.margin + v.delta)[:5]
    if worst:
        print(
            "worst cells (margin + delta): "
            + "; ".join(f"{v.row} / {v.cell} {v.margin + v.delta:+.4f}" for v in worst)
        )
    if heatmap is not None and found:
        _heatmap(found, heatmap)
        print(f"heatmap: {heatmap}")
    return found


def _heatmap(found: Sequence[Verdict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in ROWS if any(v.row == r for v in found)]
    cells = [c for c in CELLS if any(v.cell == c for v in found)]
    grid = np.full((len(rows), len(cells)), np.nan)
    for v in found:
        grid[rows.index(v.row), cells.index(v.cell)] = v.margin
    # colours saturate at 0.004 so that a few large wins do not wash out the small margins
    limit = min(0.004, max(0.002, float(np.nanmax(np.abs(grid)))))
    fig, ax = plt.subplots(figsize=(1.2 * len(cells) + 4, 0.6 * len(rows) + 2))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    for v in found:
        i, j = rows.index(v.row), cells.index(v.cell)
        label = f"{v.margin:+.4f}" + ("" if v.passed else f"\nFAIL ({v.failure})")
        ax.text(j, i, label, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cells)), cells, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(
        "NMT's top task minus max(single-task, joint)\n(test metric, mean over seeds)", fontsize=9
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _select(names: str | None, known: Sequence[str], what: str) -> list[str]:
    if names is None:
        return list(known)
    parts = [part.strip() for part in names.split(",")]
    chosen = [n for n in known if n in parts]  # exact names, or else substrings of names
    chosen = chosen or [n for n in known if any(part in n for part in parts)]
    if not chosen:
        raise SystemExit(f"--{what} {names!r} matches none of {list(known)}")
    return chosen


def main() -> None:
    global SYNTHETIC_ROWS, CENSUS_SPLIT
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the centre cell of every row")
    parser.add_argument("--rows", help="comma-separated substrings of row names")
    parser.add_argument("--cells", help="comma-separated substrings of cell names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="processes (one thread each)")
    parser.add_argument("--output", type=Path, default=Path("runs/robustness"))
    parser.add_argument("--resume", action="store_true", help="continue the results file")
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
    parser.add_argument(
        "--synthetic-rows",
        type=int,
        default=SYNTHETIC_ROWS,
        help=f"rows of the synthetic click logs (default {SYNTHETIC_ROWS:,})",
    )
    parser.add_argument(
        "--census-split",
        default=",".join(str(x) for x in CENSUS_SPLIT),
        metavar="TRAIN,VALID,TEST",
        help="Census-Income's split shares (default 0.8,0.1,0.1)",
    )
    args = parser.parse_args()
    try:
        train_share, valid_share, test_share = (float(x) for x in args.census_split.split(","))
    except ValueError:
        raise SystemExit(
            f"--census-split {args.census_split!r}: give three shares, e.g. 0.7,0.2,0.1"
        ) from None
    CENSUS_SPLIT = (train_share, valid_share, test_share)

    SYNTHETIC_ROWS = args.synthetic_rows
    OVERRIDES.update(common.trainer_options(args.set))
    NMT_OVERRIDES.update(common.nmt_options(args.nmt))
    if args.report is not None:
        report(list(read_records(args.report).values()), args.report[0].parent / "heatmap.png")
        return
    rows = _select(args.rows, list(ROWS), "rows")
    cells = ["centre"] if args.quick else _select(args.cells, list(CELLS), "cells")
    results = args.output / "results.jsonl"
    if results.exists() and not args.resume:
        raise SystemExit(f"{results} exists: pass --resume to continue it, or another --output")
    args.output.mkdir(parents=True, exist_ok=True)
    done = read_records([results]) if results.exists() else {}
    todo = [r for r in _runs(rows, cells, range(args.seeds)) if r.key not in done]
    print(
        f"{len(todo)} runs to go ({len(done)} done) with {args.workers} workers; "
        f"{common.machine(1)}",
        flush=True,
    )
    start = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool, results.open("a") as handle:
        for n, record in enumerate(pool.imap_unordered(train, todo), 1):
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            done[record_key(record)] = record
            scores = " ".join(f"{t} {x:.4f}" for t, x in record["test"].items())
            print(
                f"[{n}/{len(todo)}] {record['row']} / {record['cell']} / {record['method']} "
                f"seed {record['seed']}: {scores} ({record['wall_s']} s, "
                f"{time.perf_counter() - start:.0f} s total)",
                flush=True,
            )
    report(list(done.values()), args.output / "heatmap.png")


if __name__ == "__main__":
    main()
