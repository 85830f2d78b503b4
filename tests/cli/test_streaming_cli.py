"""`data.streaming` from a config, end to end on the real Census-Income rows written as a table:
train, then predict and evaluate with the run's files; and the bad inputs, each one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from census_table import census_schema, table_columns, write_census_table
from cli_helpers import SMALL_MODEL, census_config, needs_census, run_cli, write_config

pytestmark = needs_census


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_census_table(tmp_path_factory.mktemp("census") / "census.csv", rows=12_000)


def streamed_config(table: Path, **options: Any) -> dict[str, Any]:
    return {
        "seed": 0,
        "data": {
            "dataset": "table",
            "path": str(table),
            "streaming": {"piece_rows": 2000, "shuffle_rows": 6000},
            "options": {**table_columns(census_schema()), **options},
        },
        "model": {"name": "mmoe", "options": dict(SMALL_MODEL)},
        "method": {"name": "nmt", "priorities": ["income", "married"]},
        "trainer": {"batch_size": 512, "max_epochs": 2, "eval_every": 10, "progress": False},
    }


@pytest.mark.parametrize("hashed", [False, True])
def test_a_streamed_table_trains_predicts_and_evaluates(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], hashed: bool
) -> None:
    config = write_config(
        tmp_path, streamed_config(table, **({"hash_buckets": 4096} if hashed else {}))
    )
    run = tmp_path / "run"
    code, _, err = run_cli(["train", str(config), "--output", str(run)], capsys)
    assert code == 0, err
    assert (run / "metrics.json").is_file() and (run / "preprocessing.json").is_file()
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(["predict", str(run), "--data", str(table), "--out", str(out)], capsys)
    assert code == 0, err
    scores = pd.read_csv(out)
    assert len(scores) == 12_000 and list(scores.columns) == ["income", "married"]
    assert scores["income"].between(0, 1).all()
    code, stdout, err = run_cli(["evaluate", str(run), "--data", str(table)], capsys)
    assert code == 0, err
    assert "income" in stdout and "auc" in stdout


def test_bad_streaming_configs_and_data_fail_in_one_line(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    census = census_config()
    census["data"]["streaming"] = True
    bad_table = tmp_path / "bad.csv"
    lines = table.read_text().splitlines(keepends=True)
    fields = lines[7_777].rstrip("\n").split(",")
    fields[lines[0].rstrip("\n").split(",").index("income")] = "zero"
    lines[7_777] = ",".join(fields) + "\n"
    bad_table.write_text("".join(lines))
    unknown = streamed_config(table)
    unknown["data"]["streaming"] = {"buffer_rows": 10}
    for config, message in (
        (census, "data.streaming: the census_income dataset is read into memory only"),
        (unknown, "streaming option 'buffer_rows' is unknown"),
        (streamed_config(bad_table), "at data row 7777"),
    ):
        path = write_config(tmp_path, config)
        code, _, err = run_cli(["train", str(path), "--output", str(tmp_path / "r")], capsys)
        assert code == 2
        assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("streaming", [False, True])
def test_train_and_test_files_without_a_validation_file_train_end_to_end(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], streaming: bool
) -> None:
    """The layout AliExpress ships: train and test files, validation drawn from train."""
    lines = table.read_text().splitlines(keepends=True)
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("".join(lines[:10_001]))
    test.write_text(lines[0] + "".join(lines[10_001:]))
    config = streamed_config(table, train=str(train), test=str(test))
    del config["data"]["path"]
    if not streaming:
        del config["data"]["streaming"]
    run = tmp_path / "run"
    code, _, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(run)], capsys
    )
    assert code == 0, err
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["data"]["options"]["seed"] == 0  # the seed that drew the validation rows
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"income", "married"}
    code, stdout, err = run_cli(["evaluate", str(run), "--data", str(test)], capsys)
    assert code == 0, err
    assert "income" in stdout


def test_scores_need_no_group_column_and_gauc_does(
    table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    grouped = tmp_path / "grouped.csv"
    frame.assign(household=frame["race"]).to_csv(grouped, index=False)
    config = streamed_config(grouped, group="household")
    del config["data"]["streaming"]
    run = tmp_path / "run"
    code, _, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(run)], capsys
    )
    assert code == 0, err
    scores = []
    for name, data in (("all", grouped), ("ungrouped", table)):  # the table lacks household
        out = tmp_path / f"{name}.csv"
        code, _, err = run_cli(
            ["predict", str(run), "--data", str(data), "--out", str(out)], capsys
        )
        assert code == 0, err
        scores.append(pd.read_csv(out))
    pd.testing.assert_frame_equal(*scores)
    code, _, err = run_cli(["evaluate", str(run), "--data", str(table)], capsys)
    assert code == 2 and "column 'household' is missing" in err, err
