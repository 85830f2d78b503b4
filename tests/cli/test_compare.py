"""``nomoretuning compare`` (the paper's Table 1 protocol) end to end on the real Census-Income
file: ``results.json`` in the documented schema, ``results.md``, and ``--resume``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import SMALL_MODEL, census_config, needs_census, run_cli, write_config

from nomoretuning.cli.record import RunRecord

pytestmark = needs_census


def test_compare_writes_results_in_the_documented_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        census_config(
            model={"name": "mmoe", "options": {**SMALL_MODEL, "bottom_dims": [16]}},
            compare={
                "models": ["mmoe", "shared_bottom"],
                "methods": ["single_task", "equal", "nmt"],
                "seeds": [0, 1],
            },
        ),
    )
    out_dir = tmp_path / "cmp"
    code, _, err = run_cli(["compare", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    records = json.loads((out_dir / "results.json").read_text())
    assert len(records) == 2 + 2 * 2 * 2  # single-task once per seed, then models x methods x seeds
    for record in records:
        assert {"model", "method", "seed", "test", "wall_time_s"} <= set(record)
        for task in ("income", "marital"):
            assert {"auc", "logloss"} <= set(record["test"][task])
        assert RunRecord.from_dict(record).to_dict() == record
    assert [r["method"] for r in records[:2]] == ["single_task", "single_task"]
    assert "stages" not in records[0]  # the merged record of two single-task runs
    assert [len(r["stages"]) for r in records if r["method"] == "nmt"] == [3] * 4  # joint start
    table = (out_dir / "results.md").read_text()
    assert "| mmoe | nmt |" in table
    assert "| shared_bottom | single_task |" in table
    assert "Δ income" in table
    assert "±" in table
    # how many seeds' top stage kept the joint start, from the runs' own stage records
    header = next(line for line in table.splitlines() if line.startswith("| model |"))
    assert header.split(" | ")[-2] == "joint start kept"
    for model in ("mmoe", "shared_bottom"):
        kept = sum(
            r["stages"][1]["selected_step"] == 0
            for r in records
            if r["model"] == model and r["method"] == "nmt"
        )
        row = next(line for line in table.splitlines() if line.startswith(f"| {model} | nmt |"))
        assert f"| {kept}/2 |" in row
        row = next(line for line in table.splitlines() if line.startswith(f"| {model} | equal |"))
        assert row.split(" | ")[-2] == ""

    # a run's config.yaml reproduces it: the data split by the comparison's seed, kept there
    saved = out_dir / "mmoe" / "equal" / "seed1" / "config.yaml"
    assert yaml.safe_load(saved.read_text())["data"]["options"]["seed"] == 0
    code, _, err = run_cli(["train", str(saved), "--output", str(tmp_path / "again")], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())["test"]
    record = next(
        r for r in records if (r["model"], r["method"], r["seed"]) == ("mmoe", "equal", 1)
    )
    assert again == record["test"]

    # an interrupted comparison continues: finished runs are reused, not recomputed
    (out_dir / "results.json").unlink()
    code, _, err = run_cli(["compare", str(config), "--output", str(out_dir), "--resume"], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "results.json").read_text()) == records


def test_compare_runs_compositions_with_nmt_under_their_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = census_config(compare={"models": ["mmoe"], "methods": ["famo+nmt"], "seeds": [0]})
    out_dir = tmp_path / "famo"
    code, _, err = run_cli(
        ["compare", str(write_config(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    [record] = json.loads((out_dir / "results.json").read_text())
    assert record["method"] == "famo+nmt"
    assert record["run_dir"].endswith("mmoe/famo_nmt/seed0")
    assert "| mmoe | famo+nmt |" in (out_dir / "results.md").read_text()
