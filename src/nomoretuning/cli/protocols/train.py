"""One run of a config (``nomoretuning train``), the building block of every other protocol.

A run trains one model with one method and one seed in its run directory (``history.csv``,
``evaluations.csv``, ``metrics.json``, ``last.pt``, ``best.pt``, the resolved ``config.yaml``, and
for scoring ``model.json`` and ``preprocessing.json``).
``single_task`` on several tasks trains each task alone in ``RUN/<task>`` and merges the results.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import torch
import yaml

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import (
    build_combiner,
    build_dataset,
    build_model,
    build_objective,
    builder_parameters,
    pin_data_seed,
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
from nomoretuning.training.config import CHANGEABLE_ON_RESUME
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
        if resume:
            check_resumed_config(config, run_dir)
        return read_metrics(metrics_file) if resume and metrics_file.exists() else None

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
            # and the settings, from the start, so that a resume can be checked against them.
            run_files={
                **scoring_files(dataset, tasks, config.model.name, config.model.options),
                "config.yaml": dump_config(config),
            },
        )
        if outputs.is_main_process():
            run_dir.mkdir(parents=True, exist_ok=True)
        result = trainer.fit(resume=resume if can_resume else False).to_dict()
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


IGNORED_ON_RESUME = (
    "output",
    "overwrite",
    "compare",
    "grid",
    *(f"trainer.{name}" for name in CHANGEABLE_ON_RESUME),
)
"""Config keys a resumed run may change: where it writes, how it reports and checkpoints, and on
what hardware it runs, not what it computes."""


OPTION_SECTIONS = ("data.options.", "model.options.", "method.options.", "method.inner_options.")
"""Config sections of free options: one added or removed on resume changes the run."""


def check_resumed_config(config: RunConfig, run_dir: Path) -> None:
    """Refuses to resume ``run_dir`` with other settings than it started with (its
    ``config.yaml``): a run continued at another learning rate, or with another model or data,
    is neither run. Keys that only one of the two configs has (other versions) are skipped.

    Raises:
        ConfigError: the first setting that differs, both values named.
    """
    saved_file = run_dir / "config.yaml"
    if not saved_file.exists():
        return
    try:
        saved = yaml.safe_load(saved_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(
            f"{saved_file}: unreadable ({error}); resume needs the run's config"
        ) from None
    unset = _defaults_none(config)  # null there is the option left out
    now, before = (
        {k: v for k, v in _flat(tree).items() if not (k in unset and v is None)}
        for tree in (config.model_dump(mode="json"), saved if isinstance(saved, dict) else {})
    )
    for key in [*before, *(k for k in now if k not in before)]:
        if any(key == k or key.startswith(k + ".") for k in IGNORED_ON_RESUME):
            continue
        # a key of the schema only one version has is skipped; an option added or removed is not
        optional = key.startswith(OPTION_SECTIONS) and key != "data.options.seed"
        if (key in before and key in now and before[key] != now[key]) or (
            optional and (key in before) != (key in now)
        ):
            was, has = (f"{key}={d[key]!r}" if key in d else f"no {key}" for d in (before, now))
            raise ConfigError(
                f"--resume: {run_dir} was started with {was}, this config has {has}; resume "
                f"with the run's settings ({saved_file}) or start a new run"
            )


def _defaults_none(config: RunConfig) -> set[str]:
    """The ``data.options`` keys whose builder default is None: set to null or left out, the
    same run."""
    return {
        f"data.options.{name}"
        for name, parameter in builder_parameters(config.data.dataset).items()
        if parameter.default is None
    }


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists stay whole)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_metrics(path: Path) -> dict[str, Any]:
    """A finished run's ``metrics.json``.

    Raises:
        ConfigError: the file is not one (unreadable JSON, or not a run's metrics), named.
    """
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{path}: unreadable ({error}); remove it to train the run again"
        ) from None
    needed = ("test", "valid", "wall_time_s", "epochs", "steps")
    if not isinstance(metrics, dict) or any(key not in metrics for key in needed):
        raise ConfigError(
            f"{path} is not the metrics of a finished run; remove it to train the run again"
        )
    # an undefined metric is written as null (standard JSON): NaN again
    for split in (metrics, *metrics.get("stages", [])):
        for part in ("test", "valid"):
            for values in (split.get(part) or {}).values():
                values.update({k: math.nan for k, v in values.items() if v is None})
    return cast(dict[str, Any], metrics)


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
    written = read_metrics(run_dir / "metrics.json")
    metric = written.get("selection_metric")
    if metric is None:
        return []
    stages = [StageRecord.from_dict(stage) for stage in record.stages]
    return ["stages:", *(f"  {line}" for line in describe_stages(stages, metric))]


def train_command(config: RunConfig, output: Path, *, resume: Resume) -> None:
    """``nomoretuning train``: one run in ``output``, its test metrics printed, its plots drawn.
    The data, the model and the method are built before ``output`` is touched, so a bad config
    never costs an earlier output (``--overwrite``)."""
    config.model.options = shared_model_options(config)
    pin_data_seed(config)  # config.yaml records the seed that split the data
    dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    if config.method.name == "single_task":  # one run per task: check the first one's
        tasks = tasks[:1]
    build_combiner(config.method, tasks, build_model(config.model, dataset, tasks))
    if resume and outputs.is_main_process() and not (output.is_dir() and any(output.iterdir())):
        print(f"nothing to resume in {output}: a new run starts there")
    outputs.prepare_output(output, config.overwrite, resume)
    record = run_training(config, output, dataset, resume=resume)
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
