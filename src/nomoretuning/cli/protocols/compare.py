"""The paper's Table 1 protocol (``nomoretuning compare``, ``compare.protocol: table1``): every
model x method x seed of ``compare`` on one dataset split, the test AUC of each task per model and
method, and its change against joint training with equal weights.

Runs go to ``OUTPUT/<model>/<method>/seed<seed>`` (``famo+nmt`` as ``famo_nmt``; single-task
training once per seed, under ``single_task/single_task``). ``results.json`` is rewritten after
every run, so an interrupted comparison keeps what it finished; ``--resume`` reuses those runs.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import (
    build_dataset,
    check_shared_options,
    options_for,
    pin_data_seed,
)
from nomoretuning.cli.config import RunConfig
from nomoretuning.cli.outputs import Progress
from nomoretuning.cli.plots import plot_run
from nomoretuning.cli.protocols.train import run_training, selected_tasks
from nomoretuning.cli.record import RunRecord
from nomoretuning.cli.registry import DATASETS
from nomoretuning.cli.report import comparison_markdown
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.training.trainer import Resume

__all__ = ["compare_command", "run_comparison"]


def run_comparison(
    config: RunConfig,
    output: Path,
    *,
    resume: Resume = False,
    report: Progress = outputs.say,
    dataset: PreparedDataset | None = None,
) -> list[RunRecord]:
    """Runs every model x method x seed of ``config.compare``; writes ``output/results.json``.
    ``dataset``: the config's from `checked_data`, when the caller checked it already."""
    dataset = dataset or checked_data(config)
    tasks = selected_tasks(config, dataset)
    plan: list[tuple[str, str, int]] = []
    for method in config.compare.methods:
        models = ["single_task"] if method == "single_task" else config.compare.models
        for model, seed in itertools.product(models, config.compare.seeds):
            plan.append((model, method, seed))
    records: list[RunRecord] = []
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
        outputs.write_json_on_main(output / "results.json", [r.to_dict() for r in records])
        aucs = ", ".join(f"{t} {record.test[t]['auc']:.4f}" for t in tasks)
        elapsed = time.perf_counter() - start
        report(
            f"[{index}/{len(plan)}] {model:13s} {method:10s} seed {seed}: {aucs} "
            f"({record.wall_time_s:.0f}s, {elapsed:.0f}s total)"
        )
    return records


def checked_data(config: RunConfig) -> PreparedDataset:
    """What a comparison checks before it writes anything (its models' options), then its data,
    each run's split seed pinned (`pin_data_seed`)."""
    for model in config.compare.models:
        options_for(model, {})
    check_shared_options(config.compare.models, config.model.options)
    pin_data_seed(config)  # each run's config.yaml splits the data as this split is
    return build_dataset(config.data, config.seed)


def compare_command(config: RunConfig, output: Path, *, overwrite: bool, resume: Resume) -> None:
    """``nomoretuning compare`` with ``compare.protocol: table1``: the comparison, ``results.md``
    and the table printed, the plots of the first NMT run."""
    if DATASETS[config.data.dataset].ranking:
        raise ConfigError(
            f"compare.protocol table1 reports AUC of per-task logits; for the ranking dataset "
            f"{config.data.dataset!r} set compare.protocol: table3"
        )
    dataset = checked_data(config)  # before the output is touched
    outputs.prepare_output(output, overwrite, resume)
    records = run_comparison(config, output, resume=resume, dataset=dataset)
    if not outputs.is_main_process():
        return
    tasks = list(records[0].test) if records else []
    table = comparison_markdown([r.to_dict() for r in records], tasks)
    outputs.write_text_on_main(output / "results.md", table)
    print()
    print(table)
    print(f"results: {output / 'results.json'}, {output / 'results.md'}")
    nmt_runs = [r for r in records if r.method == "nmt"]
    if nmt_runs:
        for path in plot_run(Path(nmt_runs[0].run_dir)):
            print(f"plot: {path}")
