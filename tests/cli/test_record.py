"""`RunRecord`: the JSON form of a run in results.json and grid.json."""

from __future__ import annotations

import pytest

from nomoretuning.cli.record import RunRecord
from nomoretuning.errors import ConfigError

TABLE3 = {
    "model": "single_score",
    "method": "nmt",
    "run": "pay+relevance",
    "tasks": ["pay", "relevance"],
    "seed": 1,
    "test": {"pay": {"ndcg": 0.6}},
    "valid": {"pay": {"ndcg": 0.5}},
    "wall_time_s": 2.0,
    "epochs": 1.5,
    "steps": 30,
    "stages": [{"stage": 1}, {"stage": 2}],
    "run_dir": "out/pay_relevance/seed1",
}


def test_a_table3_record_keeps_its_keys_in_order() -> None:
    record = RunRecord.from_dict(TABLE3)
    assert record.run == "pay+relevance"
    assert list(record.to_dict()) == list(TABLE3)
    assert record.to_dict() == TABLE3


def test_a_grid_point_ends_with_its_weights() -> None:
    point = {k: v for k, v in TABLE3.items() if k not in ("run", "tasks")}
    point["weights"] = {"pay": 0.9, "relevance": 0.1}
    assert list(RunRecord.from_dict(point).to_dict()) == list(point)


def test_a_record_with_an_unknown_or_a_missing_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['auc'\]"):
        RunRecord.from_dict({**TABLE3, "auc": 0.9})
    with pytest.raises(ConfigError, match=r"not a run record: .*'seed'"):
        RunRecord.from_dict({k: v for k, v in TABLE3.items() if k != "seed"})
