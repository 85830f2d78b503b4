"""Learning to rank from the command line: train on the real lambdarank example, the Table 3
protocol on the simulator, the NDCG grid, and bad configs (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nomoretuning.cli import main as cli
from nomoretuning.training import metrics

LAMBDARANK = Path(__file__).resolve().parents[3] / "shared" / "data" / "lambdarank-example"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TINY = {
    "batch_size": 256,
    "max_epochs": 1,
    "max_steps": 4,
    "eval_every": 2,
    "patience": 2,
    "progress": False,
}


def _write(tmp_path: Path, config: dict[str, object], name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _table3(**changes: object) -> dict[str, object]:
    config: dict[str, object] = {
        "seed": 0,
        "data": {
            "dataset": "search_logs",
            "tasks": ["pay", "amount", "relevance"],
            "options": {"n_queries": 150, "items_per_query": 10, "seed": 0},
        },
        "model": {"name": "single_score", "options": {"hidden_dims": [8]}},
        "method": {"name": "nmt"},
        "trainer": dict(TINY),
        "compare": {"protocol": "table3", "seeds": [0]},
    }
    config.update(changes)
    return config


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_shipped_configs_are_valid() -> None:
    from nomoretuning.cli.config import load_config

    assert load_config(CONFIGS / "ranking_lambdarank.yaml").data.dataset == "lambdarank"
    table3 = load_config(CONFIGS / "ranking_table3.yaml")
    assert table3.compare.protocol == "table3"
    assert table3.model.name == "single_score"


@pytest.mark.skipif(not (LAMBDARANK / "rank.train").is_file(), reason="no ../shared/data")
def test_train_on_the_real_lambdarank_example_beats_a_random_ranking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load((CONFIGS / "ranking_lambdarank.yaml").read_text())
    config["data"]["path"] = str(LAMBDARANK)
    config["trainer"].update(max_epochs=2)
    out_dir = tmp_path / "lr"
    code, out, err = _run(
        ["train", str(_write(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    assert "test relevance: ndcg" in out
    result = json.loads((out_dir / "metrics.json").read_text())
    trained = result["test"]["relevance"]["ndcg"]
    assert {"ndcg", "pairwise_accuracy", "loss"} == set(result["test"]["relevance"])

    from nomoretuning.data import load_lambdarank_example

    test = load_lambdarank_example(LAMBDARANK).test
    y, g = test.labels["relevance"].numpy(), test.groups.numpy()  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    random = np.mean([metrics.ndcg_at_k(y, rng.random(y.size), g, 10) for _ in range(20)])
    assert trained > random + 0.08, (trained, random)


def test_table3_protocol_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "t3"
    config = _write(tmp_path, _table3())
    code, _, err = _run(["compare", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    records = json.loads((out_dir / "results.json").read_text())
    assert [r["run"] for r in records] == [
        "pay",
        "pay+relevance",
        "pay+relevance (fixed weights)",
        "pay+amount",
        "pay+amount+relevance",
    ]
    assert [r["method"] for r in records] == ["single_task", "nmt", "fixed", "nmt", "nmt"]
    assert records[-1]["tasks"] == ["pay", "amount", "relevance"]
    for record in records:
        assert {"model", "method", "tasks", "seed", "test", "wall_time_s"} <= set(record)
        assert record["model"] == "single_score"
        assert set(record["test"]) == {"pay", "amount", "relevance"}  # every task, every run
        for values in record["test"].values():
            assert {"ndcg", "pairwise_accuracy", "loss"} <= set(values)
    assert [len(r["stages"]) for r in records] == [1, 2, 1, 2, 3]
    table = (out_dir / "results.md").read_text()
    assert "pay-only baseline" in table
    for column in ("Δ pay", "Δ amount", "Δ relevance", "pay kept", "NDCG@10", "pairwise accuracy"):
        assert column in table
    assert "| pay+amount+relevance | nmt |" in table

    # finished runs are reused by --resume
    (out_dir / "results.json").unlink()
    code, _, err = _run(["compare", str(config), "--output", str(out_dir), "--resume"], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "results.json").read_text()) == records


def test_grid_on_a_ranking_dataset_reports_ndcg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _table3(grid={"points": 2})
    config["data"]["tasks"] = ["pay", "relevance"]  # type: ignore[index]
    del config["compare"]
    out_dir = tmp_path / "grid"
    code, _, err = _run(["grid", str(_write(tmp_path, config)), "--output", str(out_dir)], capsys)
    assert code == 0, err
    summary = json.loads((out_dir / "grid.json").read_text())
    assert summary["metric"] == "ndcg"
    assert [p["weights"]["pay"] for p in summary["grid"]] == [0.9, 0.1]
    assert "pay NDCG" in (out_dir / "grid.md").read_text()


def _set(path: str, value: object) -> object:
    def mutate(config: dict[str, object]) -> None:
        node = config
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[last] = value

    return mutate


@pytest.mark.parametrize(
    ("command", "mutate", "message"),
    [
        ("train", _set("data.tasks", ["pay", "clicks"]), "tasks must be distinct names among"),
        ("compare", _set("data.tasks", ["amount", "relevance"]), "needs the task 'pay'"),
        ("compare", _set("data.tasks", ["pay"]), "at least one of 'amount', 'relevance'"),
        ("compare", _set("data", {"dataset": "lambdarank"}), "needs the task 'pay'"),
        ("compare", _set("model.name", "mmoe"), "set model.name: single_score"),
        ("compare", _set("compare.protocol", "table2"), "compare.protocol: Input should be"),
        ("compare", _set("compare.protocol", "table1"), "set compare.protocol: table3"),
        ("compare", _set("compare.weights", {"pay": 1.0, "amount": 1.0}), "compare.weights"),
        ("compare", _set("compare.weights", {"pay": 0}), "must be > 0"),
        ("compare", _set("compare.models", ["mmoe"]), "compare.models: not used by protocol"),
        ("train", _set("data.options.max_pairs_per_group", 0), "max_pairs_per_group"),
        ("train", _set("data.options.ndcg_k", 0), "ndcg_k must be a positive integer"),
        ("grid", _set("data.tasks", ["pay"]), "grid: needs 2 or 3 tasks"),
    ],
)
def test_bad_ranking_configs_exit_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    mutate: object,
    message: str,
) -> None:
    config = _table3()
    mutate(config)  # type: ignore[operator]
    if config["data"].get("dataset") == "lambdarank":  # type: ignore[union-attr]
        config["data"]["path"] = str(LAMBDARANK)  # type: ignore[index]
        if not (LAMBDARANK / "rank.train").is_file():
            pytest.skip("no ../shared/data")
    path = _write(tmp_path, config, "bad.yaml")
    code, _, err = _run([command, str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 2, err
    assert message in err
    assert err.startswith("nomoretuning: error: ")
    assert len(err.strip().splitlines()) == 1
