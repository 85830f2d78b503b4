"""The Table 3 protocol (``compare.protocol: table3``) end to end on the search-log simulator,
``--resume``, a process that is not the main one writing nothing, and the scoring device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli, table3_config, write_config

from nomoretuning.cli import outputs
from nomoretuning.cli.builders import build_dataset
from nomoretuning.cli.config import MethodSection, validate_config
from nomoretuning.cli.protocols import table3
from nomoretuning.cli.protocols.train import run_training
from nomoretuning.cli.record import RunRecord
from nomoretuning.errors import ConfigError
from nomoretuning.training import devices
from nomoretuning.training import distributed as parallel
from nomoretuning.training.objectives import PairwiseObjective

RUNS = [
    "pay",
    "pay+relevance",
    "pay+relevance (fixed weights)",
    "pay+amount",
    "pay+amount+relevance",
]


def test_table3_protocol_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "t3"
    config = write_config(tmp_path, table3_config())
    code, _, err = run_cli(["compare", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    records = json.loads((out_dir / "results.json").read_text())
    assert [r["run"] for r in records] == RUNS
    assert [r["method"] for r in records] == ["single_task", "nmt", "fixed", "nmt", "nmt"]
    assert records[-1]["tasks"] == ["pay", "amount", "relevance"]
    for record in records:
        assert list(record)[:5] == ["model", "method", "run", "tasks", "seed"]
        assert RunRecord.from_dict(record).to_dict() == record
        assert record["model"] == "single_score"
        assert set(record["test"]) == {"pay", "amount", "relevance"}  # every task, every run
        for values in record["test"].values():
            assert {"ndcg", "pairwise_accuracy", "loss"} <= set(values)
    assert [len(r["stages"]) for r in records] == [1, 3, 1, 3, 4]  # NMT: a joint start first
    table = (out_dir / "results.md").read_text()
    assert "pay-only baseline" in table
    for column in ("Δ pay", "Δ amount", "Δ relevance", "pay kept", "NDCG@10", "pairwise accuracy"):
        assert column in table
    assert "| pay+amount+relevance | nmt |" in table

    # finished runs are reused by --resume
    (out_dir / "results.json").unlink()
    code, _, err = run_cli(["compare", str(config), "--output", str(out_dir), "--resume"], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "results.json").read_text()) == records


def test_a_process_that_is_not_the_main_one_writes_no_table3_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "is_main_process", lambda: False)
    out_dir = tmp_path / "t3"
    config = write_config(tmp_path, table3_config())
    code, out, err = run_cli(["compare", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    assert (out_dir / "pay" / "seed0" / "best.pt").exists()  # the trainer still sees rank 0
    written = {p.name for p in out_dir.rglob("*")}
    # config.yaml is a run file, written with metrics.json by the trainer (on rank 0 only)
    assert not written & {"results.json", "results.md", "plots"}
    assert "results:" not in out


def test_scoring_runs_on_the_device_of_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under torchrun with CUDA, ``auto`` scores on GPU ``LOCAL_RANK``, as the trainer trains."""
    config = validate_config(table3_config(method={"name": "single_task"}))
    dataset = build_dataset(config.data, config.seed)
    config.data.tasks = ["pay"]
    run_training(config, tmp_path / "pay", dataset, progress=False)
    resolved: list[torch.device] = []

    def on_rank_one_of_two_gpus(name: str) -> torch.device:
        with monkeypatch.context() as patch:
            patch.setenv("LOCAL_RANK", "1")
            patch.setattr(torch.cuda, "is_available", lambda: True)
            patch.setattr(parallel, "is_distributed", lambda: True)
            resolved.append(devices.resolve_device(name))
        return torch.device("cpu")

    monkeypatch.setattr(table3, "resolve_device", on_rank_one_of_two_gpus)
    objective = PairwiseObjective(["pay", "relevance"])
    scores = table3.score_on_tasks(
        config, dataset, tmp_path / "pay", ["pay"], ["pay", "relevance"], objective
    )
    assert resolved == [torch.device("cuda", 1)]
    assert set(scores) == {"pay", "relevance"}


def test_the_plan_follows_the_available_tasks_and_the_nmt_options() -> None:
    method = MethodSection(name="nmt", options={"tolerance": 0.02}, inner="famo")
    plan = table3.table3_plan(["pay", "amount"], method)
    assert [(r.name, r.slug) for r in plan] == [
        ("pay", "pay"),
        ("pay+amount", "pay_amount"),
        ("pay+amount (fixed weights)", "pay_amount_fixed"),
    ]
    assert plan[1].method.options == {"tolerance": 0.02}
    assert plan[1].method.label == "famo+nmt"
    assert plan[1].method.priorities == ["pay", "amount"]
    assert plan[2].method.weights == {"pay": 0.5, "amount": 0.5}


def test_the_plan_takes_any_tasks_in_priority_order() -> None:
    plan = table3.table3_plan(["purchase", "add_to_cart", "click", "dwell"])
    assert [(r.name, r.method.name) for r in plan] == [
        ("purchase", "single_task"),
        ("purchase+dwell", "nmt"),
        ("purchase+dwell (fixed weights)", "fixed"),
        ("purchase+click", "nmt"),
        ("purchase+add_to_cart", "nmt"),
        ("purchase+add_to_cart+click", "nmt"),
        ("purchase+add_to_cart+click+dwell", "nmt"),
    ]
    assert plan[-1].method.priorities == ["purchase", "add_to_cart", "click", "dwell"]
    paper = table3.table3_plan(["pay", "amount", "relevance"])
    assert [r.name for r in paper] == [
        "pay",
        "pay+relevance",
        "pay+relevance (fixed weights)",
        "pay+amount",
        "pay+amount+relevance",
    ]
    with pytest.raises(ConfigError, match="at least two tasks"):
        table3.table3_plan(["pay"])
    with pytest.raises(ConfigError, match="exactly purchase and dwell"):
        table3.table3_plan(["purchase", "dwell"], weights={"purchase": 1.0, "click": 1.0})
