"""The robustness benchmark's verdicts: one per cell from its runs' records, the printed report
and the heatmap of the margins (``bench_robustness.py`` runs the matrix)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METHODS = ("single", "equal", "nmt")
DELTA = 0.0005
LOWER_TOLERANCE = 0.3  # percent
DATA_SIZES = ("synthetic_rows", "census_split", "search_queries")
"""A record's data-size fields: the runs of one row must share them (`verdicts` checks)."""


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


def record_key(record: dict[str, Any]) -> str:
    """A run's key: its row, cell, method and seed."""
    return f"{record['row']}|{record['cell']}|{record['method']}|{record['seed']}"


def data_size(record: dict[str, Any]) -> str:
    """A record's `DATA_SIZES` fields, as one comparable text (absent fields are None)."""
    return json.dumps({k: record.get(k) for k in DATA_SIZES})


def read_records(files: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """The runs recorded in ``files`` by `record_key`, each run once: a run recorded again in a
    later file replaces the earlier record, and a row recorded in a later file on other data (a
    `data_size` of its own) replaces every earlier run of that row, which is said. One file
    mixing a row's data sizes is refused in one line."""
    runs: dict[str, dict[str, Any]] = {}
    for file in files:
        if not file.is_file():
            raise SystemExit(f"--report {file}: no such file")
        lines = file.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        sizes = {r["row"]: data_size(r) for r in records}
        for r in records:
            if data_size(r) != sizes[r["row"]]:
                raise SystemExit(f"{file}: {r['row']} has runs on different data; keep one size")
        stale = [k for k, r in runs.items() if sizes.get(r["row"], data_size(r)) != data_size(r)]
        for row in sorted({runs[k]["row"] for k in stale}):
            print(f"{file}: {row} on other data ({sizes[row]}) replaces its earlier runs")
        for key in stale:
            del runs[key]
        runs.update((record_key(r), r) for r in records)
    return runs


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
    order of ``rows`` and ``cells``; a row whose runs differ in a `DATA_SIZES` field (different
    data) is refused in one line."""
    sizes: dict[str, set[str]] = {}
    for r in records:
        sizes.setdefault(r["row"], set()).add(data_size(r))
    for row, found in sizes.items():
        if len(found) > 1:
            raise SystemExit(f"{row}: its records mix data sizes {sorted(found)}; report one")
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
