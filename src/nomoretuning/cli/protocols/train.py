"""One run of a config (``nomoretuning train``), the building block of every other protocol.

A run trains one model with one method and one seed in its run directory (``history.csv``,
``evaluations.csv``, ``metrics.json``, ``last.pt``, ``best.pt``, the resolved ``config.yaml``, and
for scoring ``model.json`` and ``preprocessing.json``).
``single_task`` on several tasks trains each task alone in ``RUN/<task>`` and merges the results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import (
    build_combiner,
    build_dataset,
    build_model,
    build_objective,
    shared_model_options,
    trainer_config,
)
from nomoretuning.cli.config import RunConfig, dump_config
from nomoretuning.cli.plots import plot_run
from nomoretuning.cli.record import RunRecord
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.serving.run_files import scoring_files
from nomoretuning.training import distributed as parallel
from nomoretuning.training.records import StageRecord, describe_stages
from nomoretuning.training.trainer import Resume, Trainer

__all__ = ["run_training", "selected_tasks", "train_command"]


def selected_tasks(config: RunConfig, dataset: PreparedDataset) -> tuple[str, ...]:
    """The tasks a config trains: ``data.tasks``, or every task of the dataset.

    Raises:
        ConfigError: ``data.tasks`` names a task the dataset lacks.
    """
    tasks = tuple(config.data.tasks) if config.data.tasks else tuple(dataset.tasks)
    unknown = [t for t in tasks if t not in dataset.tasks]
    if unknown:
        raise ConfigError(
            f"data.tasks: unknown task {unknown[0]!r} for dataset {config.data.dataset!r}; "
            f"available: {list(dataset.tasks)}"
        )
    return tasks


def run_training(
    config: RunConfig,
    run_dir: Path,
    dataset: PreparedDataset | None = None,
    *,
    progress: bool | None = None,
    resume: Resume = False,
) -> RunRecord:
    """One run of a config (one model, one method, one seed); returns its record.

    ``dataset`` defaults to the config's (protocols load it once for all their runs);
    ``progress`` overrides ``trainer.progress``. With ``resume``, a finished run (its
    ``metrics.json`` exists) is read back, an interrupted one continues from ``last.pt``.
    """
    if dataset is None:
        dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    if config.method.name == "single_task" and len(tasks) > 1:
        return _single_task_runs(config, run_dir, dataset, tasks, progress, resume)

    metrics_file = run_dir / "metrics.json"

    def finished() -> dict[str, Any] | None:
        if resume and metrics_file.exists():
            return cast(dict[str, Any], json.loads(metrics_file.read_text(encoding="utf-8")))
        return None

    # Under torchrun rank 0 reads the output directory and tells the other ranks.
    result = parallel.run_on_main(finished, ConfigError)
    if result is None:
        # A run with a checkpoint continues from it; one that never wrote one starts afresh.
        has_checkpoint = any((run_dir / name).exists() for name in ("last.pt", "previous.pt"))
        can_resume = parallel.broadcast_object(bool(resume) and has_checkpoint)
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
            # What scoring needs besides the weights: the model's spec and the preprocessing.
            run_files=scoring_files(dataset, tasks, config.model.name, config.model.options),
        )
        if outputs.is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
        result = trainer.fit(resume=resume if can_resume else False).to_dict()
        outputs.write_text_on_main(run_dir / "config.yaml", dump_config(config))
    return RunRecord(
        model=config.model.name,
        method=config.method.label,
        seed=config.seed,
        test=result["test"],
        valid=result["valid"],
        wall_time_s=result["wall_time_s"],
        epochs=result["epochs"],
        steps=result["steps"],
        stages=result.get("stages", []),
        run_dir=str(run_dir),
    )


def _single_task_runs(
    config: RunConfig,
    run_dir: Path,
    dataset: PreparedDataset,
    tasks: tuple[str, ...],
    progress: bool | None,
    resume: Resume,
) -> RunRecord:
    """Each task trained alone in ``run_dir/<task>``; one record with every task's metrics."""
    records: dict[str, RunRecord] = {}
    for task in tasks:
        alone = config.model_copy(deep=True)
        alone.data.tasks = [task]
        records[task] = run_training(
            alone, run_dir / task, dataset, progress=progress, resume=resume
        )
    return RunRecord(
        model=config.model.name,
        method=config.method.label,
        seed=config.seed,
        test={task: record.test[task] for task, record in records.items()},
        valid={task: record.valid[task] for task, record in records.items()},
        wall_time_s=sum(record.wall_time_s for record in records.values()),
        epochs=sum(record.epochs for record in records.values()),
        steps=sum(record.steps for record in records.values()),
        run_dir=str(run_dir),
    )


def _stage_lines(run_dir: Path, record: RunRecord) -> list[str]:
    """What each stage of a staged run did (`describe_stages`), or nothing for a run of one
    stage or one whose ``metrics.json`` predates ``selection_metric``."""
    if not record.stages or len(record.stages) < 2:
        return []
    written = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    metric = written.get("selection_metric")
    if metric is None:
        return []
    stages = [StageRecord.from_dict(stage) for stage in record.stages]
    return ["stages:", *(f"  {line}" for line in describe_stages(stages, metric))]


def train_command(config: RunConfig, output: Path, *, resume: Resume) -> None:
    """``nomoretuning train``: one run in ``output``, its test metrics printed, its plots drawn."""
    config.model.options = shared_model_options(config)
    outputs.prepare_output(output, config.overwrite, resume)
    record = run_training(config, output, resume=resume)
    if not outputs.is_main_process():
        return
    for task, values in record.test.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "loss")
        print(f"test {task}: {shown}")
    for line in _stage_lines(output, record):
        print(line)
    if config.method.name != "single_task":
        for path in plot_run(output):
            print(f"plot: {path}")
    print(f"run directory: {output}")
