"""Figures: the paper's Figure 3 for one run, and the Figure 2 trade-off of the weight grid."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from nomoretuning.errors import ConfigError

__all__ = ["plot_grid", "plot_run"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 120,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
        }
    )
    return plt


def _read_history(run_dir: Path) -> dict[str, list[float]]:
    path = run_dir / "history.csv"
    if not path.is_file():
        runs = sorted(p.parent for p in run_dir.rglob("history.csv")) if run_dir.is_dir() else []
        if runs:
            raise ConfigError(
                f"{run_dir} is no run but holds {len(runs)} runs (a comparison, grid or "
                f"per-task single-task output): plot one of them, e.g. {runs[0]}"
            )
        raise ConfigError(f"{run_dir}: no history.csv; is this a run directory made by `train`?")
    columns: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        names = reader.fieldnames or []
        for name in names:
            columns[name] = []
        for row in reader:
            for name in names:
                value = row[name]
                columns[name].append(float(value) if value not in ("", None) else math.nan)
    if not columns.get("step"):
        raise ConfigError(f"{path}: the history is empty (the run took no step)")
    return columns


def _ema(values: list[float]) -> list[float]:
    """Bias-corrected exponential moving average with a span of about 1/40 of the series."""
    alpha = 1.0 - 1.0 / max(3.0, len(values) / 40.0)
    out: list[float] = []
    acc, weight = 0.0, 0.0
    for v in values:
        if not math.isnan(v):
            acc = alpha * acc + (1 - alpha) * v
            weight = alpha * weight + (1 - alpha)
        out.append(acc / weight if weight > 0 else math.nan)
    return out


def _validation_losses(run_dir: Path, task: str, start: float) -> list[tuple[float, float]]:
    path = run_dir / "evaluations.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        (float(r["step"]), float(r[f"loss_{task}"]))
        for r in rows
        if r.get(f"loss_{task}") and float(r["step"]) >= start
    ]


def _stage_starts(history: dict[str, list[float]]) -> list[tuple[float, int]]:
    starts = []
    previous = None
    for step, stage in zip(history["step"], history["stage"], strict=True):
        if stage != previous:
            starts.append((step, int(stage)))
            previous = stage
    return starts


def _mark_stages(ax: Any, starts: list[tuple[float, int]]) -> None:
    for step, stage in starts[1:]:
        ax.axvline(step, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(
            f"stage {stage}",
            (step, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )


def plot_run(run_dir: str | Path) -> list[Path]:
    """Draws, for a run, the multipliers, each constrained task's loss against its bound, and
    each stage task's loss over training steps (stage boundaries dashed). Returns the PNG paths."""
    run_dir = Path(run_dir)
    history = _read_history(run_dir)
    plt = _pyplot()
    steps = history["step"]
    starts = _stage_starts(history)
    tasks = [c[len("loss_") :] for c in history if c.startswith("loss_")]
    lambdas = [t for t in tasks if any(not math.isnan(v) for v in history.get(f"lambda_{t}", []))]
    out_dir = run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    paths: list[Path] = []

    panels = 3 if lambdas else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.6), squeeze=False)
    axes = axes[0]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if lambdas:
        ax = axes[0]
        for i, task in enumerate(lambdas):
            ax.plot(
                steps, history[f"lambda_{task}"], color=colors[i % len(colors)], label=f"λ {task}"
            )
        ax.set_title("(a) Lagrange multipliers")
        ax.set_xlabel("step")
        ax.set_ylabel("λ")
        ax.legend(frameon=False)
        _mark_stages(ax, starts)
        ax = axes[1]
        for i, task in enumerate(lambdas):
            color = colors[i % len(colors)]
            loss = history[f"loss_{task}"]
            bound = history.get(f"bound_{task}", [])
            mask = [not math.isnan(b) for b in bound]
            xs = [s for s, m in zip(steps, mask, strict=True) if m]
            raw = [v for v, m in zip(loss, mask, strict=True) if m]
            ax.plot(xs, raw, color=color, alpha=0.15, linewidth=0.8)
            ax.plot(xs, _ema(raw), color=color, label=f"{task} loss (EMA)")
            ax.plot(
                xs,
                [b for b, m in zip(bound, mask, strict=True) if m],
                color=color,
                linestyle=":",
                linewidth=2,
                label=f"{task} bound L*",
            )
            held_out = _validation_losses(run_dir, task, start=xs[0] if xs else math.inf)
            if held_out:
                vx, vy = zip(*held_out, strict=True)
                ax.plot(
                    vx,
                    vy,
                    color="black",
                    marker="o",
                    markersize=3,
                    linestyle="none",
                    label=f"{task} validation loss",
                )
        ax.set_title("(b) constrained task vs its bound")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(frameon=False, fontsize=8)
        _mark_stages(ax, starts)
    ax = axes[-1]
    for i, task in enumerate(tasks):
        loss = history[f"loss_{task}"]
        color = colors[(i + 2) % len(colors)]
        ax.plot(steps, loss, color=color, alpha=0.15, linewidth=0.8)
        ax.plot(steps, _ema(loss), color=color, label=task)
    ax.set_title("(c) task losses" if lambdas else "task losses")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(frameon=False)
    _mark_stages(ax, starts)
    fig.tight_layout()
    path = out_dir / "training.png"
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)

    evaluations = run_dir / "evaluations.csv"
    if evaluations.is_file():
        paths.append(_plot_validation(evaluations, out_dir, plt, tasks, starts))
    return paths


def _plot_validation(
    path: Path, out_dir: Path, plt: Any, tasks: list[str], starts: list[tuple[float, int]]
) -> Path:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The selection metric the run has: AUC for binary tasks, NDCG for ranking tasks.
    metric, label = "auc", "AUC"
    if not any(r.get(f"auc_{t}") for r in rows for t in tasks):
        metric, label = "ndcg", "NDCG"
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for task in tasks:
        xs = [float(r["step"]) for r in rows if r.get(f"{metric}_{task}")]
        ys = [float(r[f"{metric}_{task}"]) for r in rows if r.get(f"{metric}_{task}")]
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3, label=f"{task}")
    ax.set_title(f"validation {label}")
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.legend(frameon=False)
    _mark_stages(ax, starts)
    fig.tight_layout()
    target = out_dir / "validation.png"
    fig.savefig(target)
    plt.close(fig)
    return target


def plot_grid(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """The trade-off of the weighted-sum grid (test AUC of the first two tasks), NMT marked."""
    plt = _pyplot()
    tasks = summary["tasks"]
    first, second = tasks[0], tasks[1]
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    xs = [p["test"][second]["auc"] for p in summary["grid"]]
    ys = [p["test"][first]["auc"] for p in summary["grid"]]
    ax.plot(xs, ys, color="0.5", linewidth=1, zorder=1)
    ax.scatter(xs, ys, color="tab:blue", zorder=2, label="weighted sum (grid)")
    for point, x, y in zip(summary["grid"], xs, ys, strict=True):
        label = ":".join(f"{point['weights'][t]:.2g}" for t in tasks)  # 0.25, not 0.2
        ax.annotate(label, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
    nmt = summary["nmt"]["test"]
    ax.scatter(
        [nmt[second]["auc"]],
        [nmt[first]["auc"]],
        marker="*",
        s=220,
        color="tab:red",
        zorder=3,
        label="NMT (no weights)",
    )
    ax.set_xlabel(f"{second} test AUC (lower priority)")
    ax.set_ylabel(f"{first} test AUC (higher priority)")
    cost = summary["cost"]
    ax.set_title(
        f"grid: {cost['grid_runs']} runs, {cost['grid_wall_time_s']:.0f} s;  "
        f"NMT: 1 run, {cost['nmt_wall_time_s']:.0f} s",
        fontsize=9,
    )
    ax.legend(frameon=False, loc="lower left")
    fig.tight_layout()
    path = Path(out_dir) / "tradeoff.png"
    fig.savefig(path)
    plt.close(fig)
    return path
