"""Learning to rank from the command line: the NMT paper's Table 3 protocol and the weight grid.

Table 3 (the paper's Taobao experiment, ``compare.protocol: table3``): one single-score model
trained with the pairwise logistic loss, five runs per seed,

=================================  ==========================  ====================
run                                tasks (priority order)      method
=================================  ==========================  ====================
``pay``  (the baseline)            pay                         ``single_task``
``pay+relevance``                  pay > relevance             ``nmt``
``pay+relevance (fixed weights)``  pay, relevance              ``fixed`` (0.5 : 0.5)
``pay+amount``                     pay > amount                ``nmt``
``pay+amount+relevance``           pay > amount > relevance    ``nmt``
=================================  ==========================  ====================

(runs whose task the dataset lacks are left out). Every model is scored on the *test* split on
every task (the pay-only model too: its single score is ranked against the amount and relevance
labels), and the report gives each task's NDCG@k and pairwise accuracy with the relative change
against the pay-only baseline, as the paper reports each business metric's change.

``nomoretuning grid`` on a ranking dataset runs the fixed-weight grid with NDCG@k in place of AUC.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nomoretuning.cli.builders import build_dataset, build_model, build_objective, trainer_config
from nomoretuning.cli.config import MethodSection, RunConfig
from nomoretuning.cli.registry import RANKING_DATASETS
from nomoretuning.cli.runs import grid_weights, run_training, selected_tasks
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.training.checkpoint import atomic_write_text, load_checkpoint
from nomoretuning.training.objectives import PairwiseObjective, predict

__all__ = [
    "RANKING_DATASETS",
    "TABLE3_TASKS",
    "Table3Run",
    "run_ranking_grid",
    "run_table3",
    "score_on_tasks",
    "table3_plan",
]

TABLE3_TASKS = ("pay", "amount", "relevance")
"""The tasks of the Table 3 protocol, highest priority first."""

DEFAULT_WEIGHTS = {"pay": 0.5, "relevance": 0.5}
"""Weights of the ``pay+relevance (fixed weights)`` run unless ``compare.weights`` is set."""

Progress = Callable[[str], None]


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
    """The runs of the Table 3 protocol for the available ``tasks`` (which must include ``pay``).

    NMT runs take ``method``'s options (tolerance, dual rule, inner combiner) when it is an
    ``nmt`` section; the fixed-weight run uses ``weights`` (default 0.5 : 0.5).

    Example:
        >>> [(r.name, r.tasks, r.method.name) for r in table3_plan(["pay", "relevance"])]
        [('pay', ('pay',), 'single_task'), ('pay+relevance', ('pay', 'relevance'), 'nmt'), \
('pay+relevance (fixed weights)', ('pay', 'relevance'), 'fixed')]
    """
    available = tuple(tasks)
    if "pay" not in available:
        raise ConfigError(
            f"compare.protocol table3: needs the task 'pay' (the top priority, the baseline) "
            f"in data.tasks; got {list(available)}"
        )
    unknown = [t for t in available if t not in TABLE3_TASKS]
    if unknown:
        raise ConfigError(
            f"compare.protocol table3: unknown task {unknown[0]!r}; its tasks are "
            f"{list(TABLE3_TASKS)} (pay > amount > relevance)"
        )
    if len(available) < 2:
        raise ConfigError(
            "compare.protocol table3: needs 'pay' and at least one of 'amount', 'relevance' "
            "in data.tasks"
        )
    fixed = dict(weights) if weights is not None else dict(DEFAULT_WEIGHTS)
    if "relevance" in available and sorted(fixed) != ["pay", "relevance"]:
        raise ConfigError(
            f"compare.weights: must weight exactly pay and relevance (the fixed-weight run), "
            f"got {sorted(fixed)}"
        )

    def nmt(run_tasks: tuple[str, ...]) -> MethodSection:
        if method is not None and method.name == "nmt":
            section = method.model_copy(deep=True)
        else:
            section = MethodSection(name="nmt")
        section.priorities = list(run_tasks)
        section.weights = None
        return section

    runs = [Table3Run("pay", ("pay",), MethodSection(name="single_task"))]
    if "relevance" in available:
        runs.append(Table3Run("pay+relevance", ("pay", "relevance"), nmt(("pay", "relevance"))))
        runs.append(
            Table3Run(
                "pay+relevance (fixed weights)",
                ("pay", "relevance"),
                MethodSection(name="fixed", weights=fixed),
            )
        )
    if "amount" in available:
        runs.append(Table3Run("pay+amount", ("pay", "amount"), nmt(("pay", "amount"))))
    if "amount" in available and "relevance" in available:
        three = ("pay", "amount", "relevance")
        runs.append(Table3Run("pay+amount+relevance", three, nmt(three)))
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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def score_on_tasks(
    config: RunConfig,
    dataset: PreparedDataset,
    run_dir: Path,
    trained: Sequence[str],
    tasks: Sequence[str],
    objective: PairwiseObjective,
    split: str = "test",
) -> dict[str, dict[str, float]]:
    """Metrics on ``split`` of the single-score model saved in ``run_dir/best.pt`` for every task
    in ``tasks``, including tasks it was not trained on (its one score ranks every label)."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, dataset, list(trained))
    state = load_checkpoint(run_dir / "best.pt", map_location="cpu")
    model.load_state_dict(state["model"])
    settings = trainer_config(config)
    device = _device(settings.device)
    wrapped = _OneScore(model, trained[0], tasks).to(device)
    logits, labels, groups = predict(
        wrapped, getattr(dataset, split), settings.eval_batch_size, device, tasks
    )
    return objective.evaluate(logits, labels, groups)


def _check_ranking(config: RunConfig, what: str) -> None:
    if config.data.dataset not in RANKING_DATASETS:
        raise ConfigError(
            f"{what}: needs a ranking dataset ({', '.join(RANKING_DATASETS)}), "
            f"got data.dataset {config.data.dataset!r}"
        )


def _objective(dataset: PreparedDataset, tasks: Sequence[str], what: str) -> PairwiseObjective:
    objective = build_objective(dataset, tasks)
    if not isinstance(objective, PairwiseObjective):
        raise ConfigError(f"{what}: dataset {dataset.name!r} has no pairwise ranking objective")
    return objective


def run_table3(
    config: RunConfig, output: Path, *, resume: bool = False, report: Progress = print
) -> list[dict[str, Any]]:
    """Runs the Table 3 protocol (see the module docstring); writes ``output/results.json``.

    Each record: ``model``, ``method``, ``run`` (the Table 3 row), ``tasks`` (trained, priority
    order), ``seed``, ``test`` (``{task: {"ndcg", "pairwise_accuracy", "loss"}}`` for every task of
    the protocol), ``valid`` (the trained tasks), ``wall_time_s``, ``epochs``, ``steps``,
    ``stages``, ``run_dir``.
    """
    what = "compare.protocol table3"
    _check_ranking(config, what)
    if config.model.name != "single_score":
        raise ConfigError(
            f"{what}: trains the single-score model (one score for every task); set "
            f"model.name: single_score, got {config.model.name!r}"
        )
    unused = sorted({"models", "methods"} & config.compare.model_fields_set)
    if unused:
        raise ConfigError(
            f"compare.{unused[0]}: not used by protocol table3 (its runs are fixed: pay, "
            "pay+relevance, pay+relevance with fixed weights, pay+amount, pay+amount+relevance); "
            "remove it"
        )
    dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    plan = table3_plan(tasks, config.method, config.compare.weights)
    objective = _objective(dataset, tasks, what)
    records: list[dict[str, Any]] = []
    total = len(plan) * len(config.compare.seeds)
    start = time.perf_counter()
    for run in plan:
        for seed in config.compare.seeds:
            sub = config.model_copy(deep=True)
            sub.seed = seed
            sub.data.tasks = list(run.tasks)
            sub.method = run.method.model_copy(deep=True)
            run_dir = output / run.slug / f"seed{seed}"
            record = run_training(sub, run_dir, dataset, progress=False, resume=resume)
            test = score_on_tasks(sub, dataset, run_dir, run.tasks, tasks, objective)
            records.append(
                {
                    "model": config.model.name,
                    "method": sub.method.label,
                    "run": run.name,
                    "tasks": list(run.tasks),
                    "seed": seed,
                    "test": test,
                    "valid": record["valid"],
                    "wall_time_s": record["wall_time_s"],
                    "epochs": record["epochs"],
                    "steps": record["steps"],
                    "stages": record["stages"],
                    "run_dir": str(run_dir),
                }
            )
            atomic_write_text(output / "results.json", json.dumps(records, indent=2))
            shown = ", ".join(f"{t} {test[t]['ndcg']:.4f}" for t in tasks)
            report(
                f"[{len(records)}/{total}] {run.name:30s} seed {seed}: NDCG@{objective.k} "
                f"{shown} ({record['wall_time_s']:.0f}s, {time.perf_counter() - start:.0f}s total)"
            )
    return records


def run_ranking_grid(
    config: RunConfig, output: Path, *, resume: bool = False, report: Progress = print
) -> dict[str, Any]:
    """The fixed-weight grid on a ranking dataset, NMT beside it, scored by NDCG@k.

    Writes ``output/grid.json`` in the schema of ``nomoretuning grid`` (``tasks``, ``grid``,
    ``nmt``, ``cost``, ``best_grid_by_valid_primary``) with ``metric: "ndcg"``.
    """
    what = "grid"
    _check_ranking(config, what)
    dataset = build_dataset(config.data, config.seed)
    tasks = selected_tasks(config, dataset)
    objective = _objective(dataset, tasks, what)
    metric = objective.selection_metric
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
            + ", ".join(f"{t} {record['test'][t][metric]:.4f}" for t in tasks)
        )
    run = config.model_copy(deep=True)
    if run.method.name != "nmt":
        run.method = MethodSection(name="nmt")
    run.method.priorities = run.method.priorities or list(tasks)
    run.data.tasks = list(tasks)
    nmt = run_training(run, output / "nmt", dataset, progress=False, resume=resume)
    report("nmt: " + ", ".join(f"{t} {nmt['test'][t][metric]:.4f}" for t in tasks))
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
    best = max(points, key=lambda p: p["valid"][tasks[0]][metric])
    summary = {
        "tasks": list(tasks),
        "metric": metric,
        "grid": points,
        "nmt": nmt,
        "cost": cost,
        "best_grid_by_valid_primary": best["weights"],
    }
    atomic_write_text(output / "grid.json", json.dumps(summary, indent=2))
    return summary
