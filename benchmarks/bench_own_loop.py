"""The promise in a user's own training loop: the README's three lines on real data.

A row of the robustness benchmark (``--row``; default Census-Income, real, ``../shared/data``,
income > marital; the synthetic click logs are 200,000 rows), the README's small MMoE, Adam lr
1e-3, batch 1024, one optimizer for the whole run (as the README's loop). Each method trains with
the same early stopping a user writes: validation AUC of the stage's tasks once per epoch, patience
``--patience`` epochs (at most ``--max-epochs`` an epoch budget per stage), the best epoch
restored. Methods, paired by seed:

- ``single``: the top task alone; ``joint``: equal weights (both stop on their tasks' mean AUC);
- ``nmt``: ``nt.NMT`` with its defaults, each stage stopped on its own tasks' AUC (the user's
  early stopping knows nothing of the higher tasks);
- ``nmt+selection``: the same loop with ``nt.StageSelection`` as its early stopping (each stage's
  start is a candidate; a held task's validation AUC must stay within one noise s.d. of its value
  when its stage ended; a stage leaves its start only for a gain above one noise s.d.).

``--fixed-epochs N`` replaces early stopping by N epochs a stage (the README's "fixed number of
steps", for ``single``, ``joint`` and ``nmt``). Prints each method's mean test AUC, NMT's stage
by stage, and the top task's paired difference against the better of single-task and joint
training with its standard error over seeds.

    python benchmarks/bench_own_loop.py                    # 5 seeds, 2 workers, ~5 minutes
    python benchmarks/bench_own_loop.py --fixed-epochs 8   # stages of 8 epochs, no validation
    python benchmarks/bench_own_loop.py --row "census income>marital>education"
    python benchmarks/bench_own_loop.py --row "synthetic c0.5"
    python benchmarks/bench_own_loop.py --lr 3e-3              # or --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robustness as robustness
import common
from robustness_design import ROWS, SMALL

METHODS = ("single", "joint", "nmt", "nmt+selection")
OWN_LOOP_ROWS = tuple(row for row, spec in ROWS.items() if spec["data"] != "search")
"""The robustness benchmark's rows of binary tasks (its ranking row needs pairwise losses);
their data are built as that benchmark builds them (``bench_robustness._dataset``)."""


class Job(NamedTuple):
    """One run: a method on a row and a seed, with the loop's settings."""

    row: str
    method: str
    seed: int
    patience: int = 2
    max_epochs: int = 15
    fixed: int | None = None
    lr: float = 1e-3
    batch_size: int = 1024


def run(job: Job) -> dict[str, Any]:
    """One method on one seed: its test AUC at the end and after each stage."""
    import torch

    import nomoretuning as nt
    from nomoretuning.models import build_model, model_arguments
    from nomoretuning.training import metrics
    from nomoretuning.training.prediction import predict

    row, method, seed, patience, max_epochs, fixed, lr, batch_size = job
    torch.set_num_threads(1)
    data = robustness._dataset(row)
    tasks_all = tuple(data.tasks)
    top = tasks_all[0]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    options = {k: v for k, v in SMALL.items() if k in model_arguments("mmoe")}
    torch.manual_seed(seed)
    model = build_model("mmoe", data.features, list(tasks_all), **options)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)

    def auc(split: Any) -> dict[str, float]:
        logits, labels, _ = predict(model, split, 4096, torch.device("cpu"), tasks_all)
        return {t: metrics.auc(labels[t], logits[t]) for t in tasks_all}

    def epoch(combine: Callable[[dict[str, Any]], Any], after: Callable[..., Any] | None) -> None:
        for batch in data.train.batches(batch_size, shuffle=True, generator=order):
            out = model(batch.sparse, batch.dense)
            losses = {t: bce(out[t], batch.labels[t].float()) for t in tasks_all}
            loss = combine(losses)  # 2. the stage's objective
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if after is not None:
                after(losses)  # 3. nmt.step(losses)

    def early_stopping(combine: Any, tasks: tuple[str, ...], after: Any = None) -> int:
        """The user's own: best epoch by the tasks' mean validation AUC, restored."""
        if fixed is not None:
            for _ in range(fixed):
                epoch(combine, after)
            return fixed
        best, state, stale, epochs = -np.inf, None, 0, 0
        while epochs < max_epochs and stale < patience:
            epoch(combine, after)
            epochs += 1
            valid = auc(data.valid)
            score = float(np.mean([valid[t] for t in tasks]))
            if score > best:
                best, stale = score, 0
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        model.load_state_dict(state)
        return epochs

    def with_selection(nmt: nt.NMT, selection: nt.StageSelection) -> int:
        after = nmt.step
        selection.offer(model, auc(data.valid))  # the stage's start
        epochs = 0
        while not selection.done and epochs < max_epochs:
            epoch(nmt, after)
            epochs += 1
            selection.offer(model, auc(data.valid))
        selection.restore(model)
        return epochs

    start = time.perf_counter()
    stages: list[dict[str, Any]] = []
    if method == "single":
        early_stopping(lambda losses: losses[top], (top,))
    elif method == "joint":
        early_stopping(lambda losses: sum(losses.values()) / len(losses), tasks_all)
    else:
        nmt = nt.NMT(list(tasks_all))  # 1. the priorities
        selection = nt.StageSelection(nmt)
        while not nmt.finished:
            tasks = nmt.stage_tasks
            if method == "nmt":
                epochs = early_stopping(nmt, tasks, nmt.step)
            else:
                epochs = with_selection(nmt, selection)
            stages.append({"tasks": list(tasks), "epochs": epochs, "test": auc(data.test)})
            nmt.next_stage()
    return {
        "row": row,
        **({"lr": lr} if lr != 1e-3 else {}),
        **({"batch_size": batch_size} if batch_size != 1024 else {}),
        "method": method,
        "seed": seed,
        "test": stages[-1]["test"] if stages else auc(data.test),  # NMT: its last stage's
        "stages": stages,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def summarize(records: list[dict[str, Any]], methods: tuple[str, ...]) -> str:
    """Each method's mean test AUC, the top task's paired difference against the better of
    single-task and joint training (s.e. over seeds), NMT's stage by stage, the lower tasks
    against joint training."""
    by: dict[str, dict[int, Mapping[str, Any]]] = {m: {} for m in methods}
    for r in records:
        by[r["method"]][r["seed"]] = r
    seeds = sorted(by[methods[0]])
    tasks = list(by["joint"][seeds[0]]["test"])
    top = tasks[0]
    header = " | ".join(f"{t} AUC" for t in tasks)
    lines = [f"| method | {header} | {top} − max(single, joint) | s.e. |"]
    lines.append("|---|" + "---|" * (len(tasks) + 2))
    for m in methods:
        means = " | ".join(f"{np.mean([by[m][s]['test'][t] for s in seeds]):.4f}" for t in tasks)
        diff = [
            by[m][s]["test"][top] - max(by["single"][s]["test"][top], by["joint"][s]["test"][top])
            for s in seeds
        ]
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        lines.append(f"| {m} | {means} | {np.mean(diff):+.4f} | {se:.4f} |")
    for m in methods:
        if not m.startswith("nmt"):
            continue
        lines.append(f"\n{m}, {top}'s test AUC after each stage (seeds {seeds}):")
        for index, stage in enumerate(by[m][seeds[0]]["stages"]):
            values = [by[m][s]["stages"][index]["test"][top] for s in seeds]
            epochs = [by[m][s]["stages"][index]["epochs"] for s in seeds]
            lines.append(
                f"  stage {index + 1} ({'+'.join(stage['tasks'])}): "
                f"{' / '.join(f'{v:.4f}' for v in values)}, epochs {epochs}"
            )
        against = []
        for t in tasks[1:]:
            joint = np.mean([by["joint"][s]["test"][t] for s in seeds])
            mine = np.mean([by[m][s]["test"][t] for s in seeds])
            against.append(f"{t} {mine / joint - 1:+.3%}")
        lines.append(f"{m} against joint training: {', '.join(against)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", choices=OWN_LOOP_ROWS, default=OWN_LOOP_ROWS[0])
    parser.add_argument("--seeds", type=common.positive_int, default=5)
    parser.add_argument(
        "--patience", type=common.positive_int, default=2, help="epochs (user's early stopping)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    parser.add_argument("--batch-size", type=common.positive_int, default=1024)
    parser.add_argument(
        "--max-epochs", type=common.positive_int, default=15, help="epochs a stage at most"
    )
    parser.add_argument("--fixed-epochs", type=common.positive_int, default=None)
    parser.add_argument("--workers", type=common.positive_int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="JSON-lines records")
    args = parser.parse_args(argv)
    methods = METHODS if args.fixed_epochs is None else METHODS[:3]
    jobs = [
        Job(
            args.row,
            m,
            seed,
            args.patience,
            args.max_epochs,
            args.fixed_epochs,
            args.lr,
            args.batch_size,
        )
        for seed in range(args.seeds)
        for m in methods
    ]
    print(common.machine(1), flush=True)
    start = time.perf_counter()
    records = []
    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        for record in pool.imap_unordered(run, jobs):
            records.append(record)
            print(
                f"{record['method']} seed {record['seed']}: {record['test']} "
                f"({record['wall_s']} s)",
                flush=True,
            )
            if args.output is not None:
                with args.output.open("a") as f:
                    f.write(json.dumps(record) + "\n")
    print(summarize(records, methods))
    print(f"{len(jobs)} runs in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    common.run(main)
