"""The robustness benchmark's verdicts: one per cell from its runs' records, the printed report
and the heatmap of the margins (``bench_robustness.py`` runs the matrix)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("single", "equal", "nmt")
DELTA = 0.0005
LOWER_TOLERANCE = 0.3  # percent


@dataclass
class Verdict:
    """One cell's verdict: test-metric means over ``seeds`` (``margin``: NMT's top task minus
    max(single-task, joint), paired by seed, with its standard error) and each lower task's
    percent against joint training."""

    row: str
    cell: str
    seeds: int
    top: str
    nmt: float
    single: float
    joint: float
    margin: float
    stderr: float
    lower: dict[str, float] = field(default_factory=dict)  # percent vs joint
    epochs: float = 0.0

    @property
    def delta(self) -> float:
        return max(DELTA, self.stderr)

    @property
    def top_ok(self) -> bool:
        return self.margin >= -self.delta

    @property
    def lower_ok(self) -> bool:
        return all(v >= -LOWER_TOLERANCE for v in self.lower.values())

    @property
    def passed(self) -> bool:
        return self.top_ok and self.lower_ok

    @property
    def failure(self) -> str:
        """Which rule a failing cell breaks: ``top``, ``lower`` or ``both``."""
        return "both" if not (self.top_ok or self.lower_ok) else "top" if self.lower_ok else "lower"


def verdict(
    row: str,
    cell: str,
    single: dict[int, dict[str, Any]],
    joint: dict[int, dict[str, Any]],
    nmt: dict[int, dict[str, Any]],
) -> Verdict | None:
    """One cell's verdict from each method's records by seed (``nmt``: the method judged), over
    their common seeds; None with fewer than two."""
    seeds = sorted(set(single) & set(joint) & set(nmt))
    if len(seeds) < 2:
        return None
    tasks = list(nmt[seeds[0]]["test"])
    top = tasks[0]
    diffs = [
        nmt[s]["test"][top] - max(single[s]["test"][top], joint[s]["test"][top]) for s in seeds
    ]
    lower = {
        t: statistics.mean(
            100 * (nmt[s]["test"][t] - joint[s]["test"][t]) / joint[s]["test"][t] for s in seeds
        )
        for t in tasks[1:]
    }
    return Verdict(
        row,
        cell,
        len(seeds),
        top,
        statistics.mean(nmt[s]["test"][top] for s in seeds),
        statistics.mean(single[s]["test"][top] for s in seeds),
        statistics.mean(joint[s]["test"][top] for s in seeds),
        statistics.mean(diffs),
        statistics.stdev(diffs) / math.sqrt(len(diffs)),
        lower,
        statistics.mean(nmt[s]["epochs"] for s in seeds),
    )


def verdicts(
    records: Sequence[dict[str, Any]], rows: Sequence[str], cells: Sequence[str]
) -> list[Verdict]:
    """One verdict per (row, cell) with all three methods on at least two common seeds, in the
    order of ``rows`` and ``cells``."""
    table: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in records:
        table.setdefault((r["row"], r["cell"]), {}).setdefault(r["method"], {})[r["seed"]] = r
    out = []
    for (row, cell), methods in table.items():
        if set(methods) != set(METHODS):
            continue
        found = verdict(row, cell, *(methods[m] for m in METHODS))
        if found is not None:
            out.append(found)
    row_order = {name: i for i, name in enumerate(rows)}
    cell_order = {name: i for i, name in enumerate(cells)}
    return sorted(out, key=lambda v: (row_order[v.row], cell_order[v.cell]))


def report(
    records: Sequence[dict[str, Any]],
    heatmap: Path | None,
    rows: Sequence[str],
    cells: Sequence[str],
) -> list[Verdict]:
    """Prints the pass count, every cell's verdict and the worst cells; draws ``heatmap``."""
    found = verdicts(records, rows, cells)
    passed = sum(v.passed for v in found)
    print(
        f"{passed}/{len(found)} cells pass (NMT's top task >= max(single, joint) - delta, "
        f"delta = max({DELTA}, paired s.e.); lower tasks >= joint - {LOWER_TOLERANCE} %)"
    )
    for v in found:
        lower = ", ".join(f"{t} {x:+.2f} %" for t, x in v.lower.items())
        verdict = "PASS" if v.passed else f"FAIL {v.failure}"
        print(
            f"  {verdict:10s}  {v.row:32s} {v.cell:22s} n={v.seeds} "
            f"{v.top}: nmt {v.nmt:.4f} single {v.single:.4f} joint {v.joint:.4f} "
            f"margin {v.margin:+.4f} (s.e. {v.stderr:.4f}) | {lower} | NMT epochs {v.epochs:.1f}"
        )
    worst = sorted(found, key=lambda v: v.margin + v.delta)[:5]
    if worst:
        print(
            "worst cells (margin + delta): "
            + "; ".join(f"{v.row} / {v.cell} {v.margin + v.delta:+.4f}" for v in worst)
        )
    if heatmap is not None and found:
        _heatmap(found, heatmap, rows, cells)
        print(f"heatmap: {heatmap}")
    return found


def _heatmap(
    found: Sequence[Verdict], path: Path, row_names: Sequence[str], cell_names: Sequence[str]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in row_names if any(v.row == r for v in found)]
    cells = [c for c in cell_names if any(v.cell == c for v in found)]
    grid = np.full((len(rows), len(cells)), np.nan)
    for v in found:
        grid[rows.index(v.row), cells.index(v.cell)] = v.margin
    # colours saturate at 0.004 so that a few large wins do not wash out the small margins
    limit = min(0.004, max(0.002, float(np.nanmax(np.abs(grid)))))
    fig, ax = plt.subplots(figsize=(1.2 * len(cells) + 4, 0.6 * len(rows) + 2))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    for v in found:
        i, j = rows.index(v.row), cells.index(v.cell)
        label = f"{v.margin:+.4f}" + ("" if v.passed else f"\nFAIL ({v.failure})")
        ax.text(j, i, label, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cells)), cells, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(
        "NMT's top task minus max(single-task, joint)\n(test metric, mean over seeds)", fontsize=9
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
