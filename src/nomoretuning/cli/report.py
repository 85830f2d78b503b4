"""Markdown reports of comparisons and grids, as the paper prints them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

__all__ = [
    "KEEP_TOLERANCE",
    "comparison_markdown",
    "grid_markdown",
    "kept_joint_start",
    "mean_std",
    "table3_markdown",
]

BASELINE = "equal"

KEEP_TOLERANCE = 0.005
"""Table 3: the top task counts as kept when its mean metric is at most 0.5 % below the baseline."""


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation, NaN values left out (the deviation is NaN with fewer
    than two values left, both are NaN with none).

    Example:
        >>> mean_std([1.0, 3.0, float("nan")])
        (2.0, 1.4142135623730951)
        >>> mean_std([0.5])
        (0.5, nan)
    """
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return math.nan, math.nan
    mean = sum(clean) / len(clean)
    if len(clean) < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in clean) / (len(clean) - 1)
    return mean, math.sqrt(var)


def _fmt(values: Sequence[float]) -> str:
    """A table cell: mean ± std over the seeds (the mean alone for one seed), saying how many
    seeds it uses when some had an undefined value.

    Example:
        >>> _fmt([0.5, 0.7]), _fmt([0.5]), _fmt([0.5, 0.7, float("nan")]), _fmt([float("nan")])
        ('0.6000 ± 0.1414', '0.5000', '0.6000 ± 0.1414 (2 of 3 seeds)', 'n/a')
    """
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"
    used = sum(not math.isnan(v) for v in values)
    return text if used == len(values) else f"{text} ({used} of {len(values)} seeds)"


def _delta(value: float, base: float) -> str:
    if math.isnan(value) or math.isnan(base) or base == 0:
        return ""
    return f"{100 * (value - base) / base:+.2f}%"


def kept_joint_start(record: dict[str, Any]) -> bool | None:
    """Whether a run's top-task stage kept the joint start (selected its start, step 0), or
    None for a run without a joint start (one stage, or the paper's schedule, whose first stage
    records a bound).

    Example:
        >>> joint = {"stage": 1, "tasks": ["a", "b"], "constrained": [], "selected_step": 40}
        >>> top = {"stage": 2, "tasks": ["a"], "constrained": [], "selected_step": 0}
        >>> kept_joint_start({"stages": [joint, top]}), kept_joint_start({"stages": [joint]})
        (True, None)
    """
    stages = record.get("stages") or []
    if len(stages) < 2 or "bound" in stages[0] or stages[0]["constrained"]:
        return None
    return bool(stages[1]["selected_step"] == 0)


def comparison_markdown(
    records: Sequence[dict[str, Any]], tasks: Sequence[str], metric: str = "auc"
) -> str:
    """Mean ± std of each task's test metric per model and method, with the relative change
    against joint training with equal weights (the paper's Table 1 convention), and for staged
    methods the seeds whose top-task stage kept the joint start (`kept_joint_start`)."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    seeds: dict[tuple[str, str], set[int]] = defaultdict(set)
    kept: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for record in records:
        key = (record["model"], record["method"])
        for task in tasks:
            cells[key][task].append(float(record["test"][task][metric]))
        times[key].append(float(record["wall_time_s"]))
        seeds[key].add(int(record["seed"]))
        joint_start = kept_joint_start(record)
        if joint_start is not None:
            kept[key].append(joint_start)
    models = list(dict.fromkeys(r["model"] for r in records if r["model"] != "single_task"))
    methods = list(dict.fromkeys(r["method"] for r in records))
    lines = [
        f"Test {metric.upper()} (mean ± std over seeds); Δ = relative change against "
        f"joint training with equal weights on the same architecture"
        + ("; joint start kept: the seeds whose top-task stage kept it." if kept else "."),
        "",
    ]
    header = [
        "model",
        "method",
        *[f"{t} {metric}" for t in tasks],
        *[f"Δ {t}" for t in tasks],
        "seeds",
        *(["joint start kept"] if kept else []),
        "time/run (s)",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    single = ("single_task", "single_task")
    for model in models:
        base = {t: mean_std(cells[(model, BASELINE)][t])[0] for t in tasks}
        for method in methods:
            key = single if method == "single_task" else (model, method)
            if key not in cells:
                continue
            stats = {t: mean_std(cells[key][t]) for t in tasks}
            row = [model, method]
            row += [_fmt(cells[key][t]) for t in tasks]
            row += [
                _delta(stats[t][0], base[t]) if (model, BASELINE) in cells else "" for t in tasks
            ]
            row.append(str(len(seeds[key])))
            if kept:
                row.append(f"{sum(kept[key])}/{len(kept[key])}" if kept[key] else "")
            row.append(f"{sum(times[key]) / len(times[key]):.1f}")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def grid_markdown(summary: dict[str, Any]) -> str:
    """The grid's test metric per weight vector (``summary["metric"]``, AUC by default), NMT
    last, and what each costs."""
    tasks = summary["tasks"]
    metric = summary.get("metric", "auc")
    name = {"auc": "AUC", "ndcg": "NDCG"}.get(metric, metric)
    lines = [
        "| weights | " + " | ".join(f"{t} {name}" for t in tasks) + " | epochs | time (s) |",
        "|" + "---|" * (len(tasks) + 3),
    ]
    for point in summary["grid"]:
        weights = ":".join(f"{point['weights'][t]:.2f}" for t in tasks)
        aucs = " | ".join(f"{point['test'][t][metric]:.4f}" for t in tasks)
        lines.append(f"| {weights} | {aucs} | {point['epochs']:.1f} | {point['wall_time_s']:.1f} |")
    nmt = summary["nmt"]
    aucs = " | ".join(f"**{nmt['test'][t][metric]:.4f}**" for t in tasks)
    lines.append(f"| **NMT** | {aucs} | {nmt['epochs']:.1f} | {nmt['wall_time_s']:.1f} |")
    cost = summary["cost"]
    lines += [
        "",
        f"Grid: {cost['grid_runs']} runs, {cost['grid_epochs']} epochs, "
        f"{cost['grid_wall_time_s']} s. NMT: 1 run, {cost['nmt_epochs']} epochs, "
        f"{cost['nmt_wall_time_s']} s ({_ratio(cost['wall_time_ratio'])}).",
    ]
    return "\n".join(lines) + "\n"


def _ratio(grid_over_nmt: float) -> str:
    """The grid's wall time over NMT's, in words.

    Example:
        >>> _ratio(6.333), _ratio(0.7752), _ratio(0.007407)
        ('6.33x less wall time', '1.29x more wall time', '135.01x more wall time')
    """
    if grid_over_nmt >= 1:
        return f"{grid_over_nmt:.2f}x less wall time"
    if grid_over_nmt > 0:
        return f"{1 / grid_over_nmt:.2f}x more wall time"
    return "no wall time for the grid"


def table3_markdown(
    records: Sequence[dict[str, Any]],
    tasks: Sequence[str],
    k: int = 10,
    baseline: str = "pay",
    top: str = "pay",
) -> str:
    """The Table 3 report: per run, each task's test NDCG@k and pairwise accuracy (mean ± std over
    seeds) and the relative change of the mean against the ``baseline`` run (the pay-only model,
    scored on every task), with whether the ``top`` task was kept (its mean at most
    `KEEP_TOLERANCE` below the baseline's).

    Example:
        >>> rec = lambda run, p, r: {"run": run, "method": "nmt", "seed": 0, "wall_time_s": 1.0,
        ...     "test": {"pay": {"ndcg": p, "pairwise_accuracy": p},
        ...              "relevance": {"ndcg": r, "pairwise_accuracy": r}}}
        >>> text = table3_markdown([rec("pay", 0.8, 0.4), rec("pay+relevance", 0.8, 0.5)],
        ...                        ["pay", "relevance"])
        >>> row = [line for line in text.splitlines() if line.startswith("| pay+relevance")][0]
        >>> row.split(" | ")[4:7]
        ['+0.00%', '+25.00%', 'yes']
    """
    runs = list(dict.fromkeys(r["run"] for r in records))
    methods = {r["run"]: r["method"] for r in records}
    lines = [
        f"Test metrics of the single-score model (mean ± std over seeds); Δ = relative change of "
        f"the mean against the {baseline}-only baseline (the {baseline} model scored on every "
        f"task). {top} kept: its mean is at most {100 * KEEP_TOLERANCE:g}% below the baseline's.",
    ]
    for metric, title in (("ndcg", f"NDCG@{k}"), ("pairwise_accuracy", "pairwise accuracy")):
        cells: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        times: dict[str, list[float]] = defaultdict(list)
        seeds: dict[str, set[int]] = defaultdict(set)
        for record in records:
            for task in tasks:
                cells[record["run"]][task].append(float(record["test"][task][metric]))
            times[record["run"]].append(float(record["wall_time_s"]))
            seeds[record["run"]].add(int(record["seed"]))
        base = {t: mean_std(cells[baseline][t])[0] for t in tasks} if baseline in cells else {}
        header = [
            "run",
            "method",
            *[f"{t} {title}" for t in tasks],
            *[f"Δ {t}" for t in tasks],
            f"{top} kept",
            "seeds",
            "time/run (s)",
        ]
        lines += ["", f"**{title}**", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for run in runs:
            stats = {t: mean_std(cells[run][t]) for t in tasks}
            deltas = [_delta(stats[t][0], base[t]) if base else "" for t in tasks]
            if run == baseline or not base or top not in tasks:
                kept = "—"
            else:
                top_base, top_mean = base[top], stats[top][0]
                kept = "yes" if top_mean >= top_base * (1 - KEEP_TOLERANCE) else "no"
            row = [run, methods[run], *[_fmt(cells[run][t]) for t in tasks], *deltas, kept]
            row += [str(len(seeds[run])), f"{sum(times[run]) / len(times[run]):.1f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
