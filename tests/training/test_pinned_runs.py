"""Pinned end-to-end runs: short real-data Census-Income NMT runs through the command line must give
exactly the history, evaluations and metrics recorded in ``tests/training/pinned/``.

The recordings were made on the code before the restructuring of the trainer (issue 9); the test
holds every later change of structure to the same behaviour: the same rows, columns, stages and
empty cells exactly, and every number to a relative 1e-3. That tolerance is far below what a
change of behaviour moves (percents) and above the float noise a new numpy, pandas or BLAS brings
to a 60-step run (measured after a dependency update with torch pinned: 5e-7 relative on the
losses and metrics, 4e-5 on a multiplier of the PI run). A change that is meant to alter the
numbers regenerates them deliberately, with the reason in its commit message:

    .venv/bin/python tests/training/test_pinned_runs.py --regenerate

The runs pin both data paths of the constraints: held-out (the default; bounds and multiplier
updates from validation losses) and training (per-step dual updates from training losses, bounds
from a full training pass), the latter with the PI controller and FAMO as the inner combiner.
Every option that decides the trajectory is set explicitly, so a change of a library default does
not move these runs.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

CENSUS = Path(__file__).resolve().parents[3] / "shared/data/census-income-kdd/census-income.test.gz"
PINNED = Path(__file__).resolve().parent / "pinned"

MODEL = {"num_experts": 2, "expert_dims": [32], "gate_dims": [], "tower_dims": [16]}
TRAINER = {
    "batch_size": 512,
    "eval_batch_size": 4096,
    "lr": 0.002,
    "max_epochs": 1,
    "max_steps": 60,
    "eval_every": 15,
    "patience": 2,
    "progress": False,
    "patience_unit": "evaluations",
    "freeze_constrained": False,
    "fit_later_heads": False,
    "selection_band": None,
    "metric_guard": None,
    "start_test": None,
}
NMT_OPTIONS = {
    "tolerance": 0.01,
    "tolerance_mode": "relative",
    "target": 1.0,
    "dual": "ascent",
    "dual_lr": 100.0,
    "violation": "relative",
    "joint_start": False,
}

RUNS: dict[str, dict[str, Any]] = {
    "held_out": {
        "method": {"name": "nmt", "priorities": ["income", "marital"], "options": NMT_OPTIONS},
        "trainer": {**TRAINER, "constraints": "valid", "constraint_every": None},
    },
    "training_pi_famo": {
        "method": {
            "name": "nmt",
            "priorities": ["income", "marital"],
            "inner": "famo",
            "options": {**NMT_OPTIONS, "dual": "pi", "dual_lr": 10.0},
        },
        "trainer": {**TRAINER, "constraints": "train"},
    },
}

VOLATILE = ("wall_time_s", "run_dir")


def _train(name: str, root: Path) -> Path:
    from nomoretuning.cli import main as cli

    spec = RUNS[name]
    config = {
        "seed": 0,
        "data": {"dataset": "census_income", "path": str(CENSUS), "tasks": ["income", "marital"]},
        "model": {"name": "mmoe", "options": MODEL},
        "method": spec["method"],
        "trainer": spec["trainer"],
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / name
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["train", str(path), "--output", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _metrics(run: Path) -> dict[str, Any]:
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k not in VOLATILE}


@pytest.mark.skipif(not CENSUS.exists(), reason="../shared/data is not beside the checkout")
@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_pinned_run_reproduces_its_recording(name: str, tmp_path: Path) -> None:
    run = _train(name, tmp_path)
    pinned = PINNED / name
    for log in ("history.csv", "evaluations.csv"):
        _assert_same_table(run / log, pinned / log)
    _assert_close(_metrics(run), json.loads((pinned / "metrics.json").read_text()), "metrics")


RTOL, ATOL = 1e-3, 1e-6


def _assert_close(measured: Any, recorded: Any, where: str) -> None:
    """Equal structure and text; numbers (not booleans) equal to RTOL."""
    if isinstance(recorded, dict):
        assert isinstance(measured, dict) and sorted(measured) == sorted(recorded), where
        for key in recorded:
            _assert_close(measured[key], recorded[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(measured, list) and len(measured) == len(recorded), where
        for i, (a, b) in enumerate(zip(measured, recorded, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(recorded, float) or (
        isinstance(recorded, int) and not isinstance(recorded, bool) and isinstance(measured, float)
    ):
        assert measured == pytest.approx(recorded, rel=RTOL, abs=ATOL), where
    else:
        assert measured == recorded, where


def _assert_same_table(measured: Path, recorded: Path) -> None:
    """Same header, rows and empty cells; text cells equal; numbers equal to RTOL."""
    new, old = (list(csv.reader(p.read_text().splitlines())) for p in (measured, recorded))
    assert new[0] == old[0], f"{measured.name}: columns differ"
    assert len(new) == len(old), f"{measured.name}: {len(new) - 1} rows, recorded {len(old) - 1}"
    for number, (row, pin) in enumerate(zip(new[1:], old[1:], strict=True), start=1):
        for column, a, b in zip(old[0], row, pin, strict=True):
            where = f"{measured.name} row {number} column {column}: {a!r} vs recorded {b!r}"
            try:
                x, y = float(a), float(b)
            except ValueError:
                assert a == b, where
                continue
            assert x == pytest.approx(y, rel=RTOL, abs=ATOL), where


def test_the_comparison_catches_a_change_of_behaviour(tmp_path: Path) -> None:
    recorded, noisy, changed = (tmp_path / f"{n}.csv" for n in ("recorded", "noisy", "changed"))
    recorded.write_text("step,stage,loss\n1,1,0.5\n2,1,\n")
    noisy.write_text("step,stage,loss\n1,1,0.5000001\n2,1,\n")
    changed.write_text("step,stage,loss\n1,1,0.505\n2,1,\n")
    _assert_same_table(noisy, recorded)
    with pytest.raises(AssertionError, match="row 1 column loss"):
        _assert_same_table(changed, recorded)
    with pytest.raises(AssertionError, match=r"metrics\.stages"):
        _assert_close({"stages": [1, 2]}, {"stages": [1]}, "metrics")


def _regenerate() -> None:
    import tempfile

    for name in sorted(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            run = _train(name, Path(tmp))
            target = PINNED / name
            target.mkdir(parents=True, exist_ok=True)
            for log in ("history.csv", "evaluations.csv"):
                (target / log).write_text((run / log).read_text())
            (target / "metrics.json").write_text(json.dumps(_metrics(run), indent=2) + "\n")
            print(f"recorded {target}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: {sys.argv[0]} --regenerate")
    _regenerate()
