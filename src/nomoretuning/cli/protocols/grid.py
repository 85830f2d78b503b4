"""The loss-weight grid that NMT replaces (``nomoretuning grid``), with NMT beside it.

One fixed-weight run per weight vector of the grid (``OUTPUT/grid/<w1>_<w2>``), one NMT run
(``OUTPUT/nmt``), each scored by one test metric: the dataset objective's selection metric by
default (AUC for binary tasks, NDCG@k for ranking datasets). ``grid.json`` holds ``tasks``,
``metric``, ``grid`` (the runs' records with their ``weights``), ``nmt``, ``cost`` (the epochs and
wall time of the grid against NMT) and ``best_grid_by_valid_primary`` (the weights whose run has
the best validation metric on the first task; null when no run's is defined).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import build_dataset, build_objective
from nomoretuning.cli.config import MethodSection, RunConfig
from nomoretuning.cli.outputs import Progress
from nomoretuning.cli.plots import plot_grid, plot_run
from nomoretuning.cli.protocols.train import run_training, selected_tasks
from nomoretuning.cli.record import RunRecord
from nomoretuning.cli.registry import DATASETS
from nomoretuning.cli.report import grid_markdown
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.training.trainer import Resume

__all__ = ["grid_command", "grid_weights", "run_grid"]


def grid_weights(
    tasks: Sequence[str], points: int, three_task_points: int
) -> list[dict[str, float]]:
    """Loss-weight grid: 0.1:0.9 ... 0.9:0.1 for two tasks; a simplex lattice for three.

    Example:
        >>> grid_weights(["ctr", "cvr"], 3, 4)
        [{'ctr': 0.9, 'cvr': 0.1}, {'ctr': 0.5, 'cvr': 0.5}, {'ctr': 0.1, 'cvr': 0.9}]
    """
    if len(tasks) == 2:
        values = [round(0.1 + 0.8 * i / (points - 1), 4) for i in range(points)]
        return [{tasks[0]: v, tasks[1]: round(1 - v, 4)} for v in reversed(values)]
    if len(tasks) == 3:
        total = three_task_points + 2  # every weight at least 1/total
        return [
            {tasks[0]: i / total, tasks[1]: j / total, tasks[2]: (total - i - j) / total}
            for i in range(1, total - 1)
            for j in range(1, total - i)
        ]
    raise ConfigError(f"grid: needs 2 or 3 tasks, got {len(tasks)}")


def run_grid(
    config: RunConfig,
    output: Path,
    *,
    metric: str | None = None,
    resume: Resume = False,
    report: Progress = outputs.say,
    dataset: PreparedDataset | None = None,
) -> dict[str, Any]:
    """Runs the grid and NMT; writes ``output/grid.json`` and returns its content (``dataset``:
    the config's from `checked_data`, when the caller checked it already).

    ``metric``: the test and validation metric that scores the runs (None: the selection metric
    of the dataset's objective, ``auc`` or ``ndcg``).

    Raises:
        ConfigError: the tasks are not 2 or 3, or the runs do not report ``metric``.
    """
    dataset = dataset or checked_data(config)
    tasks = selected_tasks(config, dataset)
    weights_list = grid_weights(tasks, config.grid.points, config.grid.three_task_points)
    if metric is None:
        metric = build_objective(dataset, tasks).selection_metric
    points: list[RunRecord] = []
    for index, weights in enumerate(weights_list, 1):
        run = config.model_copy(deep=True)
        run.method = MethodSection(name="fixed", weights=weights)
        run.data.tasks = list(tasks)
        name = "_".join(f"{weights[t]:.3f}" for t in tasks)
        record = run_training(run, output / "grid" / name, dataset, progress=False, resume=resume)
        _check_metric(record, tasks, metric)
        points.append(dataclasses.replace(record, weights=weights))
        report(f"[{index}/{len(weights_list)}] weights {name}: {_shown(record, tasks, metric)}")
    run = config.model_copy(deep=True)
    run.method = config.method.variant("nmt", tasks)
    run.data.tasks = list(tasks)
    nmt = run_training(run, output / "nmt", dataset, progress=False, resume=resume)
    report(f"nmt: {_shown(nmt, tasks, metric)}")
    grid_wall_time = sum(p.wall_time_s for p in points)
    cost: dict[str, Any] = {
        "grid_runs": len(points),
        "grid_epochs": round(sum(p.epochs for p in points), 2),
        "grid_wall_time_s": round(grid_wall_time, 1),
        "nmt_epochs": nmt.epochs,
        "nmt_wall_time_s": nmt.wall_time_s,
        # four significant digits, so that its inverse (NMT slower) reads right too
        "wall_time_ratio": float(f"{grid_wall_time / max(nmt.wall_time_s, 1e-9):.4g}"),
    }
    # the best point on validation; none when the top task's validation metric is undefined
    defined = [p for p in points if math.isfinite(p.valid[tasks[0]][metric])]
    best = max(defined, key=lambda p: p.valid[tasks[0]][metric]) if defined else None
    summary = {
        "tasks": list(tasks),
        "metric": metric,
        "grid": [p.to_dict() for p in points],
        "nmt": nmt.to_dict(),
        "cost": cost,
        "best_grid_by_valid_primary": None if best is None else best.weights,
    }
    outputs.write_json_on_main(output / "grid.json", summary)
    return summary


def _check_metric(record: RunRecord, tasks: Sequence[str], metric: str) -> None:
    reported = record.test[tasks[0]]
    if metric not in reported:
        raise ConfigError(f"grid: the runs report {sorted(reported)}, not the metric {metric!r}")


def _shown(record: RunRecord, tasks: Sequence[str], metric: str) -> str:
    return ", ".join(f"{t} {record.test[t][metric]:.4f}" for t in tasks)


def checked_data(config: RunConfig) -> PreparedDataset:
    """The config's data, once its tasks make a grid (2 or 3 of them): what a grid checks before
    it writes anything."""
    dataset = build_dataset(config.data, config.seed)
    grid_weights(selected_tasks(config, dataset), config.grid.points, config.grid.three_task_points)
    return dataset


def grid_command(config: RunConfig, output: Path, *, overwrite: bool, resume: Resume) -> None:
    """``nomoretuning grid``: the grid, ``grid.md`` and the table printed, the trade-off plot
    (AUC; binary tasks only) and the NMT run's plots."""
    dataset = checked_data(config)  # before the output is touched
    outputs.prepare_output(output, overwrite, resume)
    summary = run_grid(config, output, resume=resume, dataset=dataset)
    if not outputs.is_main_process():
        return
    table = grid_markdown(summary)
    outputs.write_text_on_main(output / "grid.md", table)
    print()
    print(table)
    ranking = DATASETS[config.data.dataset].ranking
    if not ranking:  # the trade-off plot draws AUC
        print(f"plot: {plot_grid(summary, output)}")
    for path in plot_run(Path(summary["nmt"]["run_dir"])):
        print(f"plot: {path}")
