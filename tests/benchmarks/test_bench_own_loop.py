"""The own-loop benchmark: the README's loop, a user's early stopping and `StageSelection`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_own_loop as own_loop
import bench_robustness as robustness

ROW = "synthetic c0.5"


@pytest.fixture(autouse=True)
def small_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small synthetic click logs, built by the robustness benchmark as the own loop's are."""
    monkeypatch.setattr(robustness, "SYNTHETIC_ROWS", 8_000)
    monkeypatch.setattr(robustness, "_DATA", {})


def test_each_method_records_its_stages_and_the_summary_pairs_them() -> None:
    records = [own_loop.run(own_loop.Job(ROW, m, 0, 1, 3)) for m in own_loop.METHODS]
    by = {r["method"]: r for r in records}
    assert by["single"]["stages"] == [] and by["joint"]["stages"] == []
    for method in ("nmt", "nmt+selection"):
        stages = by[method]["stages"]
        assert [s["tasks"] for s in stages] == [["click", "like"], ["click"], ["like"]]
        assert all(1 <= s["epochs"] <= 3 for s in stages)
    # the joint start is the joint loop's first stage, step for step, whichever the stopping
    assert by["nmt"]["stages"][0]["test"] == by["nmt+selection"]["stages"][0]["test"]
    table = own_loop.summarize(records, own_loop.METHODS)
    top = {m: by[m]["test"]["click"] for m in by}
    expected = top["nmt+selection"] - max(top["single"], top["joint"])
    row = next(line for line in table.splitlines() if line.startswith("| nmt+selection |"))
    assert row.split(" | ")[3] == f"{expected:+.4f}"
    assert "nmt+selection against joint training: like" in table


def test_fixed_epochs_train_every_stage_that_long() -> None:
    record = own_loop.run(own_loop.Job(ROW, "nmt", 0, 1, 3, fixed=2, batch_size=512))
    assert [s["epochs"] for s in record["stages"]] == [2, 2, 2]
    assert record["batch_size"] == 512 and "lr" not in record  # settings off the default kept
