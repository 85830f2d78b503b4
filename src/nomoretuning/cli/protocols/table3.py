"""The NMT paper's Table 3 protocol (its Taobao experiment; ``nomoretuning compare`` with
``compare.protocol: table3``): one single-score model trained with the pairwise logistic loss,
five runs per seed,

=================================  ==========================  ====================
run                                tasks (priority order)      method
=================================  ==========================  ====================
``pay``  (the baseline)            pay                         ``single_task``
``pay+relevance``                  pay > relevance             ``nmt``
``pay+relevance (fixed weights)``  pay, relevance              ``fixed`` (0.5 : 0.5)
``pay+amount``                     pay > amount                ``nmt``
``pay+amount+relevance``           pay > amount > relevance    ``nmt``
=================================  ==========================  ====================

for the paper's tasks; any tasks in priority order make the same plan (`table3_plan`). Every
model is scored on the *test* split on every task (the top-task-only model too: its single score is
ranked against every label), and the report gives each task's NDCG@k and pairwise accuracy with
the relative change against the top-task-only baseline, as the paper reports each business
metric's change.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import (
    build_dataset,
    build_model,
    build_objective,
    pin_data_seed,
    trainer_config,
)
from nomoretuning.cli.config import MethodSection, RunConfig
from nomoretuning.cli.outputs import Progress
from nomoretuning.cli.plots import plot_run
from nomoretuning.cli.protocols.train import run_training, selected_tasks
from nomoretuning.cli.record import Metrics, RunRecord
from nomoretuning.cli.registry import DATASETS, RANKING_DATASETS
from nomoretuning.cli.report import table3_markdown
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.training.checkpoint import load_checkpoint
from nomoretuning.training.devices import resolve_device
from nomoretuning.training.objectives import PairwiseObjective
from nomoretuning.training.prediction import predict
from nomoretuning.training.trainer import Resume

__all__ = [
    "DEFAULT_WEIGHTS",
    "TABLE3_TASKS",
    "Table3Run",
    "run_table3",
    "score_on_tasks",
    "table3_command",
    "table3_plan",
]

TABLE3_TASKS = ("pay", "amount", "relevance")
"""The tasks of the paper's Table 3, highest priority first (the protocol takes any tasks)."""

DEFAULT_WEIGHTS = {"pay": 0.5, "relevance": 0.5}
"""The paper's weights of ``pay+relevance (fixed weights)``; for other tasks, 0.5 : 0.5 on the
top and the lowest task, unless ``compare.weights`` is set."""

WHAT = "compare.protocol table3"
"""How error messages name the protocol."""


@dataclass(frozen=True)
class Table3Run:
    """One row of Table 3: its name, the tasks it trains (priority order) and the method."""

    name: str
    tasks: tuple[str, ...]
    method: MethodSection

    @property
    def slug(self) -> str:
        """Its directory name under the output."""
        return self.name.replace(" (fixed weights)", "_fixed").replace("+", "_")


def table3_plan(
    tasks: Sequence[str],
    method: MethodSection | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Table3Run]:
    """The runs of the Table 3 protocol for ``tasks`` in priority order (any names, two or more).

    With top task ``t1`` and the others ``t2 .. tn`` (``tn`` the lowest): ``t1`` alone (the
    baseline); ``t1+tj`` with NMT for each other task, lowest first; after ``t1+tn`` the same pair
    with fixed ``weights`` (default 0.5 : 0.5, the paper's "weight adjustment"); and with three
    tasks or more each longer priority chain ``t1+t2+...+tk`` with NMT. For the paper's
    ``pay > amount > relevance``: pay, pay+relevance, pay+relevance (fixed weights), pay+amount,
    pay+amount+relevance. NMT runs take ``method``'s options when it is an ``nmt`` section.

    Example:
        >>> [(r.name, r.tasks, r.method.name) for r in table3_plan(["pay", "relevance"])]
        [('pay', ('pay',), 'single_task'), ('pay+relevance', ('pay', 'relevance'), 'nmt'), \
('pay+relevance (fixed weights)', ('pay', 'relevance'), 'fixed')]
    """
    available = tuple(tasks)
    if len(available) < 2:
        raise ConfigError(
            f"{WHAT}: needs at least two tasks in data.tasks (the top one is the baseline), "
            f"got {list(available)}"
        )
    top, last = available[0], available[-1]
    fixed = dict(weights) if weights is not None else {top: 0.5, last: 0.5}
    if sorted(fixed) != sorted({top, last}):
        raise ConfigError(
            f"compare.weights: must weight exactly {top} and {last} (the top and the lowest "
            f"task: the fixed-weight run), got {sorted(fixed)}"
        )

    def nmt(run_tasks: tuple[str, ...]) -> MethodSection:
        if method is not None and method.name == "nmt":
            section = method.model_copy(deep=True)
        else:
            section = MethodSection(name="nmt")
        section.priorities = list(run_tasks)
        section.weights = None
        return section

    runs = [Table3Run(top, (top,), MethodSection(name="single_task"))]
    for other in reversed(available[1:]):
        pair = (top, other)
        runs.append(Table3Run("+".join(pair), pair, nmt(pair)))
        if other == last:
            fixed_name = f"{'+'.join(pair)} (fixed weights)"
            runs.append(Table3Run(fixed_name, pair, MethodSection(name="fixed", weights=fixed)))
    for length in range(3, len(available) + 1):
        chain = available[:length]
        runs.append(Table3Run("+".join(chain), chain, nmt(chain)))
    return runs


class _OneScore(nn.Module):
    """Gives a single-score model's score under every task name."""

    def __init__(self, model: nn.Module, source: str, tasks: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.source = source
        self.tasks = tuple(tasks)

    def forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        score = self.model(sparse, dense)[self.source]
        return dict.fromkeys(self.tasks, score)


def score_on_tasks(
    config: RunConfig,
    dataset: PreparedDataset,
    run_dir: Path,
    trained: Sequence[str],
    tasks: Sequence[str],
    objective: PairwiseObjective,
    split: str = "test",
) -> Metrics:
    """Metrics on ``split`` of the single-score model saved in ``run_dir/best.pt`` for every task
    in ``tasks``, including tasks it was not trained on (its one score ranks every label).

    Scores on the run's training device (`resolve_device`: GPU ``LOCAL_RANK`` under torchrun).
    """
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset, list(trained))
    state = load_checkpoint(run_dir / "best.pt", map_location="cpu")
    model.load_state_dict(state["model"])
    settings = trainer_config(config)
    device = resolve_device(settings.device)
    wrapped = _OneScore(model, trained[0], tasks).to(device)
    logits, labels, groups = predict(
        wrapped, getattr(dataset, split), settings.eval_batch_size, device, tasks
    )
    return objective.evaluate(logits, labels, groups)


def _check_config(config: RunConfig) -> None:
    """What the protocol needs of a config: a ranking dataset, the single-score model, no
    ``compare.models`` or ``compare.methods``."""
    if not DATASETS[config.data.dataset].ranking:
        raise ConfigError(
            f"{WHAT}: needs a ranking dataset ({', '.join(RANKING_DATASETS)}), "
            f"got data.dataset {config.data.dataset!r}"
        )
    if config.model.name != "single_score":
        raise ConfigError(
            f"{WHAT}: trains the single-score model (one score for every task); set "
            f"model.name: single_score, got {config.model.name!r}"
        )
    unused = sorted({"models", "methods"} & config.compare.model_fields_set)
    if unused:
        raise ConfigError(
            f"compare.{unused[0]}: not used by protocol table3 (its runs follow from data.tasks: "
            "the top task alone, the top task with each other, with fixed weights, and the "
            "priority chains); remove it"
        )


def _objective(dataset: PreparedDataset, tasks: Sequence[str]) -> PairwiseObjective:
    objective = build_objective(dataset, tasks)
    if not isinstance(objective, PairwiseObjective):
        raise ConfigError(f"{WHAT}: dataset {dataset.name!r} has no pairwise ranking objective")
    return objective


def run_table3(
    config: RunConfig,
    output: Path,
    *,
    resume: Resume = False,
    report: Progress = outputs.say,
    dataset: PreparedDataset | None = None,
) -> list[RunRecord]:
    """Runs the Table 3 protocol (see the module docstring); writes ``output/results.json``.

    Each record has its ``run`` (the Table 3 row) and ``tasks`` (trained, priority order);
    ``test`` holds ``{task: {"ndcg", "pairwise_accuracy", "loss"}}`` for every task of the
    protocol, ``valid`` the trained tasks.
    """
    dataset = dataset or checked_data(config)
    tasks = selected_tasks(config, dataset)
    plan = table3_plan(tasks, config.method, config.compare.weights)
    objective = _objective(dataset, tasks)
    records: list[RunRecord] = []
    total = len(plan) * len(config.compare.seeds)
    start = time.perf_counter()
    for run in plan:
        for seed in config.compare.seeds:
            sub = config.model_copy(deep=True)
            sub.seed = seed
            sub.data.tasks = list(run.tasks)
            sub.method = run.method.model_copy(deep=True)
            run_dir = output / run.slug / f"seed{seed}"
            trained = run_training(sub, run_dir, dataset, progress=False, resume=resume)
            test = score_on_tasks(sub, dataset, run_dir, run.tasks, tasks, objective)
            record = dataclasses.replace(trained, run=run.name, tasks=list(run.tasks), test=test)
            records.append(record)
            outputs.write_json_on_main(output / "results.json", [r.to_dict() for r in records])
            shown = ", ".join(f"{t} {test[t]['ndcg']:.4f}" for t in tasks)
            report(
                f"[{len(records)}/{total}] {run.name:30s} seed {seed}: NDCG@{objective.k} "
                f"{shown} ({record.wall_time_s:.0f}s, {time.perf_counter() - start:.0f}s total)"
            )
    return records


def checked_data(config: RunConfig) -> PreparedDataset:
    """What Table 3 checks before it writes anything (its config, its plan), then its data, each
    run's split seed pinned (`pin_data_seed`)."""
    _check_config(config)
    pin_data_seed(config)  # each run's config.yaml splits the data as this split is
    dataset = build_dataset(config.data, config.seed)
    table3_plan(selected_tasks(config, dataset), config.method, config.compare.weights)
    return dataset


def table3_command(config: RunConfig, output: Path, *, overwrite: bool, resume: Resume) -> None:
    """``nomoretuning compare`` with ``compare.protocol: table3``: the protocol, ``results.md``
    and the table printed, the plots of the deepest NMT run."""
    dataset = checked_data(config)  # before the output is touched
    outputs.prepare_output(output, overwrite, resume)
    records = run_table3(config, output, resume=resume, dataset=dataset)
    if not outputs.is_main_process():
        return
    tasks = list(records[0].test) if records else []
    k = int(config.data.options.get("ndcg_k", 10))
    top = tasks[0] if tasks else "pay"
    table = table3_markdown([r.to_dict() for r in records], tasks, k=k, baseline=top, top=top)
    outputs.write_text_on_main(output / "results.md", table)
    print()
    print(table)
    print(f"results: {output / 'results.json'}, {output / 'results.md'}")
    deepest = max(records, key=lambda r: len(r.tasks or ()) if r.method != "fixed" else 0)
    for path in plot_run(Path(deepest.run_dir)):
        print(f"plot: {path}")
