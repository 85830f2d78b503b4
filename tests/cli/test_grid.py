"""``nomoretuning grid``: the weight grid with NMT beside it, scored by AUC on the real
Census-Income file and by NDCG on a ranking dataset, its ``metric`` parameter, and a process
that is not the main one writing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CENSUS, census_config, needs_census, run_cli, table3_config, write_config

from nomoretuning.cli import outputs
from nomoretuning.cli.config import validate_config
from nomoretuning.cli.protocols.grid import run_grid
from nomoretuning.errors import ConfigError


def _ranking_grid(**sections: Any) -> dict[str, Any]:
    config = table3_config(grid={"points": 2}, **sections)
    config["data"]["tasks"] = ["pay", "relevance"]
    del config["compare"]
    return config


@needs_census
def test_grid_compares_the_weight_grid_with_nmt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "grid"
    config = write_config(tmp_path, census_config(grid={"points": 3}))
    code, _, err = run_cli(["grid", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "grid.json").read_text())
    assert summary["metric"] == "auc"
    assert [p["weights"]["income"] for p in summary["grid"]] == [0.9, 0.5, 0.1]
    assert summary["cost"]["grid_runs"] == 3
    best = max(summary["grid"], key=lambda p: p["valid"]["income"]["auc"])
    assert summary["best_grid_by_valid_primary"] == best["weights"]  # on validation
    cost = summary["cost"]
    grid_time = sum(p["wall_time_s"] for p in summary["grid"])  # unrounded, then the ratio
    assert cost["wall_time_ratio"] == float(f"{grid_time / summary['nmt']['wall_time_s']:.4g}")
    assert summary["nmt"]["method"] == "nmt"
    assert (out_dir / "tradeoff.png").exists()
    assert "NMT" in (out_dir / "grid.md").read_text()


@needs_census
def test_no_best_grid_point_when_no_validation_metric_is_defined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sample's few rows, split with seed 4, leave no income positive in validation."""
    sample = CENSUS.parent / "census-income.sample"
    data = {"dataset": "census_income", "path": str(sample), "tasks": ["income", "marital"]}
    data["options"] = {"seed": 4, "allow_single_class": True}
    config = census_config(data=data, grid={"points": 2})
    out_dir = tmp_path / "grid"
    code, _, err = run_cli(
        ["grid", str(write_config(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    summary = json.loads((out_dir / "grid.json").read_text())
    assert all(p["valid"]["income"]["auc"] is None for p in summary["grid"])
    assert summary["best_grid_by_valid_primary"] is None


def test_grid_on_a_ranking_dataset_reports_ndcg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "grid"
    config = write_config(tmp_path, _ranking_grid())
    code, _, err = run_cli(["grid", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "grid.json").read_text())
    assert summary["metric"] == "ndcg"
    assert [p["weights"]["pay"] for p in summary["grid"]] == [0.9, 0.1]
    assert "pay NDCG" in (out_dir / "grid.md").read_text()
    assert not (out_dir / "tradeoff.png").exists()  # the trade-off plot draws AUC


def test_the_grid_metric_can_be_chosen(tmp_path: Path) -> None:
    config = validate_config(_ranking_grid())
    lines: list[str] = []
    summary = run_grid(config, tmp_path / "acc", metric="pairwise_accuracy", report=lines.append)
    assert summary["metric"] == "pairwise_accuracy"
    assert lines[-1].startswith("nmt: pay ")
    with pytest.raises(ConfigError, match="not the metric 'auc'"):
        run_grid(config, tmp_path / "auc", metric="auc", report=lines.append)


def test_a_process_that_is_not_the_main_one_writes_no_grid_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "is_main_process", lambda: False)
    out_dir = tmp_path / "grid"
    config = write_config(tmp_path, _ranking_grid())
    code, out, err = run_cli(["grid", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    assert (out_dir / "nmt" / "metrics.json").exists()  # the trainer still sees rank 0
    written = {p.name for p in out_dir.rglob("*")}
    # config.yaml is a run file, written with metrics.json by the trainer (on rank 0 only)
    assert not written & {"grid.json", "grid.md", "plots", "tradeoff.png"}
    assert "plot:" not in out
