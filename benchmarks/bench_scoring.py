"""Peak memory and speed of `nomoretuning predict` on generated tables of growing length.

Trains a small MMoE with NMT on a generated 200,000-row click table (two sparse id columns with
50,000 and 20,000 ids, one dense column, two tasks, a group column), then scores tables of
``--rows`` rows each (default 1M and 4M) with ``nomoretuning predict`` in a fresh process per file
and reads that process's own peak resident memory (``ru_maxrss`` from ``os.wait4``). Scoring
reads and writes in pieces of ``--chunk-rows`` rows, so the peak should not grow with the file:
the figures are printed side by side with the file sizes and the import baseline (a process that
only imports the scoring modules).

Usage:
    python benchmarks/bench_scoring.py                              # ~1.5 minutes on 2 cores
    python benchmarks/bench_scoring.py --rows 1000000 8000000 --chunk-rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "nomoretuning"]


def _table(rows: int, path: Path, seed: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 50_000, rows), rng.integers(0, 20_000, rows)
    price = rng.normal(size=rows)
    logit = 0.1 * (user % 7) - 0.1 * (item % 5) + price
    pd.DataFrame(
        {
            "user": user,
            "item": item,
            "price": price,
            "click": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8),
            "like": (rng.random(rows) < 1 / (1 + np.exp(-logit + 1))).astype(np.int8),
        }
    ).to_csv(path, index=False)


def _child(args: list[str]) -> tuple[float, float]:
    """Runs a command in a fresh process: (its own peak RSS in MB, wall seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with exit status {process.returncode}")
    return usage.ru_maxrss / 1024, seconds


def _generate(rows: int, path: Path, seed: int) -> None:
    """Writes a table in a child process: a parent holding big arrays would inflate the peak of
    every later child (``ru_maxrss`` counts the parent's pages a child starts with)."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_scoring"
    code += f"; bench_scoring._table({rows}, __import__('pathlib').Path({str(path)!r}), {seed})"
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    # This process imports only the standard library, so the children's peaks are their own.
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")  # the children inherit it
    info = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})"
            "; import common; print(common.machine(2))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    print(info.stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _generate(200_000, folder / "train.csv", seed=0)
        config = {
            "seed": 0,
            "data": {
                "dataset": "table",
                "path": str(folder / "train.csv"),
                "options": {
                    "sparse": ["user", "item"],
                    "dense": ["price"],
                    "labels": ["click", "like"],
                    "group": "user",
                },
            },
            "model": {"name": "mmoe", "options": {"num_experts": 2, "expert_dims": [16]}},
            "method": {"name": "nmt"},
            "trainer": {"max_steps": 20, "eval_every": 10, "progress": False},
        }
        (folder / "run.yaml").write_text(json.dumps(config))  # JSON is YAML
        run = folder / "run"
        subprocess.run(
            [*CLI, "train", str(folder / "run.yaml"), "--output", str(run)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        baseline, _ = _child([sys.executable, "-c", "import nomoretuning.serving.run, pyarrow"])
        print(f"import baseline: {baseline:.0f} MB peak RSS")
        print(f"{'rows':>10} {'file MB':>8} {'peak MB':>8} {'above imports':>13} {'rows/s':>9}")
        for rows in sorted(args.rows):
            data = folder / f"score_{rows}.csv"
            _generate(rows, data, seed=rows)
            size = os.path.getsize(data) / 2**20
            out = folder / f"scores_{rows}.parquet"
            command = [*CLI, "predict", str(run), "--data", str(data), "--out", str(out)]
            peak, seconds = _child([*command, "--chunk-rows", str(args.chunk_rows)])
            print(
                f"{rows:>10,} {size:>8.0f} {peak:>8.0f} {peak - baseline:>13.0f} "
                f"{rows / seconds:>9,.0f}"
            )
            data.unlink()


if __name__ == "__main__":
    main()
