"""Running configs: one training run, the comparison protocol, and the weight grid.

Under torchrun every rank runs these functions in step (the trainer synchronizes them); only rank 0
touches the output directory and writes results.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from nomoretuning.cli.builders import (
    build_combiner,
    build_dataset,
    build_model,
    build_objective,
    trainer_config,
)
from nomoretuning.cli.config import MethodSection, RunConfig, dump_config
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.training import distributed as parallel
from nomoretuning.training.checkpoint import atomic_write_text
from nomoretuning.training.trainer import Trainer

__all__ = ["prepare_output", "run_comparison", "run_grid", "run_training", "selected_tasks"]

Progress = Callable[[str], None]


def _say(message: str) -> None:
    print(message, flush=True)


def selected_tasks(config: RunConfig, dataset: PreparedDataset) -> tuple[str, ...]:
    tasks = tuple(config.data.tasks) if config.data.tasks else tuple(dataset.tasks)
    unknown = [t for t in tasks if t not in dataset.tasks]
    if unknown:
        raise ConfigError(
            f"data.tasks: unknown task {unknown[0]!r} for dataset {config.data.dataset!r}; "
            f"available: {list(dataset.tasks)}"
        )
    return tasks


def prepare_output(path: Path, overwrite: bool, resume: bool = False) -> None:
    """Refuses to touch an existing, non-empty directory unless asked (rank 0 decides)."""
    parallel.run_on_main(lambda: _prepare_output(path, overwrite, resume), ConfigError)


def _prepare_output(path: Path, overwrite: bool, resume: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output {path} exists and is not a directory")
    if path.exists() and any(path.iterdir()) and not (overwrite or resume):
        raise ConfigError(
            f"output {path} already exists and is not empty; pick another output, "
            f"pass --overwrite, or --resume to finish it"
        )
    if path.exists() and overwrite and not resume:
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def run_training(
    config: RunConfig,
    run_dir: Path,
    dataset: PreparedDataset | None = None,
    *,
    progress: bool | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """One run of a config (one model, one method, one seed); returns its record.

    ``single_task`` trains each task alone in ``run_dir/<task>`` and merges the results.
    """
    if dataset is None:
        dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    label = config.method.label
    if config.method.name == "single_task" and len(tasks) > 1:
        record: dict[str, Any] = {
            "test": {},
            "valid": {},
            "wall_time_s": 0.0,
            "epochs": 0.0,
            "steps": 0,
        }
        for task in tasks:
            sub = config.model_copy(deep=True)
            sub.data.tasks = [task]
            one = run_training(sub, run_dir / task, dataset, progress=progress, resume=resume)
            for key in ("test", "valid"):
                record[key][task] = one[key][task]
            for key in ("wall_time_s", "epochs", "steps"):
                record[key] += one[key]
        record.update(model=config.model.name, method=label, seed=config.seed, run_dir=str(run_dir))
        return record

    metrics_file = run_dir / "metrics.json"

    def finished() -> dict[str, Any] | None:
        if resume and metrics_file.exists():
            return cast(dict[str, Any], json.loads(metrics_file.read_text(encoding="utf-8")))
        return None

    # Under torchrun rank 0 reads the output directory and tells the other ranks.
    done = parallel.run_on_main(finished, ConfigError)
    if done is not None:
        result = done
    else:
        can_resume = parallel.broadcast_object(resume and (run_dir / "last.pt").exists())
        torch.manual_seed(config.seed)
        model = build_model(config.model, dataset, tasks)
        combiner = build_combiner(config.method, tasks, model)
        trainer = Trainer(
            model,
            combiner,
            dataset,
            trainer_config(config, progress=progress),
            run_dir=run_dir,
            objective=build_objective(dataset, tasks),
            overwrite=config.overwrite or (resume and not can_resume),
        )
        if parallel.is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
        result = trainer.fit(resume=can_resume).to_dict()
        if parallel.is_main_process():
            atomic_write_text(run_dir / "config.yaml", dump_config(config))
    return {
        "model": config.model.name,
        "method": label,
        "seed": config.seed,
        "test": result["test"],
        "valid": result["valid"],
        "wall_time_s": result["wall_time_s"],
        "epochs": result["epochs"],
        "steps": result["steps"],
        "stages": result.get("stages", []),
        "run_dir": str(run_dir),
    }


def run_comparison(
    config: RunConfig, output: Path, *, resume: bool = False, report: Progress = _say
) -> list[dict[str, Any]]:
    """The paper's Table 1 protocol: every model x method x seed on one dataset split."""
    for model in config.compare.models:
        options_for(model, {})
    check_shared_options(config.compare.models, config.model.options)
    dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    plan: list[tuple[str, str, int]] = []
    for method in config.compare.methods:
        models = ["single_task"] if method == "single_task" else config.compare.models
        for model, seed in itertools.product(models, config.compare.seeds):
            plan.append((model, method, seed))
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    for index, (model, method, seed) in enumerate(plan, 1):
        run = config.model_copy(deep=True)
        run.seed = seed
        run.model.name = model
        run.model.options = options_for(model, config.model.options)
        run.method = config.method.variant(method, tasks)
        run.data.tasks = list(tasks)
        run_dir = output / model / method.replace("+", "_") / f"seed{seed}"
        record = run_training(run, run_dir, dataset, progress=False, resume=resume)
        records.append(record)
        if parallel.is_main_process():
            atomic_write_text(output / "results.json", json.dumps(records, indent=2))
        aucs = ", ".join(f"{t} {record['test'][t]['auc']:.4f}" for t in tasks)
        elapsed = time.perf_counter() - start
        report(
            f"[{index}/{len(plan)}] {model:13s} {method:10s} seed {seed}: {aucs} "
            f"({record['wall_time_s']:.0f}s, {elapsed:.0f}s total)"
        )
    return records


def options_for(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """The model options an architecture accepts (compare shares one option set among them)."""
    from nomoretuning.models import MODEL_NAMES, model_arguments

    if model not in MODEL_NAMES:
        raise ConfigError(f"compare.models: unknown model {model!r}; allowed: {list(MODEL_NAMES)}")
    accepted = model_arguments(model)
    return {k: v for k, v in options.items() if k in accepted}


def check_shared_options(models: Sequence[str], options: dict[str, Any]) -> None:
    from nomoretuning.models import model_arguments

    known = {k for m in [*models, "single_task"] for k in model_arguments(m)}
    for key in options:
        if key not in known:
            raise ConfigError(f"model.options.{key}: no compared architecture takes this option")


def grid_weights(
    tasks: Sequence[str], points: int, three_task_points: int
) -> list[dict[str, float]]:
    """Loss-weight grid: 0.1:0.9 ... 0.9:0.1 for two tasks; a simplex lattice for three."""
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
    config: RunConfig, output: Path, *, resume: bool = False, report: Progress = _say
) -> dict[str, Any]:
    """The weighted-sum grid NMT replaces, with NMT beside it, and what each costs."""
    dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    points: list[dict[str, Any]] = []
    weights_list = grid_weights(tasks, config.grid.points, config.grid.three_task_points)
    for index, weights in enumerate(weights_list, 1):
        run = config.model_copy(deep=True)
        run.method = MethodSection(name="fixed", weights=weights)
        run.data.tasks = list(tasks)
        name = "_".join(f"{weights[t]:.3f}" for t in tasks)
        record = run_training(run, output / "grid" / name, dataset, progress=False, resume=resume)
        record["weights"] = weights
        points.append(record)
        report(
            f"[{index}/{len(weights_list)}] weights {name}: "
            + ", ".join(f"{t} {record['test'][t]['auc']:.4f}" for t in tasks)
        )
    run = config.model_copy(deep=True)
    run.method = config.method.variant("nmt", tasks)
    run.data.tasks = list(tasks)
    nmt = run_training(run, output / "nmt", dataset, progress=False, resume=resume)
    report("nmt: " + ", ".join(f"{t} {nmt['test'][t]['auc']:.4f}" for t in tasks))
    cost = {
        "grid_runs": len(points),
        "grid_epochs": round(sum(p["epochs"] for p in points), 2),
        "grid_wall_time_s": round(sum(p["wall_time_s"] for p in points), 1),
        "nmt_epochs": nmt["epochs"],
        "nmt_wall_time_s": nmt["wall_time_s"],
    }
    cost["wall_time_ratio"] = round(
        cost["grid_wall_time_s"] / max(cost["nmt_wall_time_s"], 1e-9), 2
    )
    best = max(points, key=lambda p: p["valid"][tasks[0]]["auc"])
    summary = {
        "tasks": list(tasks),
        "grid": points,
        "nmt": nmt,
        "cost": cost,
        "best_grid_by_valid_primary": best["weights"],
    }
    if parallel.is_main_process():
        atomic_write_text(output / "grid.json", json.dumps(summary, indent=2))
    return summary


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return math.nan, math.nan
    mean = sum(clean) / len(clean)
    if len(clean) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in clean) / (len(clean) - 1)
    return mean, math.sqrt(var)
