"""Ranking on the user's own files from the command line: LETOR files by path (``data.dataset:
letor``) and a multi-label ranking table (``data.dataset: ranking_table``) train, compare (the
Table 3 protocol with any task names) and grid; their bad inputs end with one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_helpers import LAMBDARANK, TINY, needs_lambdarank, run_cli, write_config


def _sessions(path: Path, queries: int = 80, seed: int = 0) -> Path:
    """SYNTHETIC sessions: purchase > add_to_cart > dwell on one score, 6 items per query."""
    rng = np.random.default_rng(seed)
    rows = queries * 6
    x = rng.normal(size=(rows, 4))
    utility = x[:, 0] + 0.5 * x[:, 1]
    frame = pd.DataFrame(x, columns=["f0", "f1", "f2", "f3"])
    frame.insert(0, "session", np.repeat([f"s{q}" for q in range(queries)], 6))
    frame["category"] = rng.choice(["a", "b", "c"], rows)
    frame["purchase"] = (utility + rng.normal(size=rows) > 1.0).astype(int)
    frame["add_to_cart"] = (utility + rng.normal(size=rows) > 0.3).astype(int)
    frame["dwell"] = np.round(np.exp(x[:, 2] + rng.normal(size=rows)), 2)
    frame.to_csv(path, index=False)
    return path


def _table_config(path: Path, tasks: list[str], **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "seed": 0,
        "data": {
            "dataset": "ranking_table",
            "path": str(path),
            "tasks": tasks,
            "options": {
                "group": "session",
                "labels": ["purchase", "add_to_cart", "dwell"],
                "dense": ["f0", "f1", "f2", "f3"],
                "sparse": ["category"],
                "gains": {"dwell": "linear"},
                "pair_masks": {"dwell": "positive"},
            },
        },
        "model": {"name": "single_score", "options": {"hidden_dims": [8]}},
        "method": {"name": "nmt"},
        "trainer": dict(TINY),
        "compare": {"protocol": "table3", "seeds": [0]},
    }
    config.update(sections)
    return config


def test_a_ranking_table_trains_compares_grids_and_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _sessions(tmp_path / "sessions.csv")
    tasks = ["purchase", "add_to_cart", "dwell"]
    config = write_config(tmp_path, _table_config(table, tasks))
    run_dir = tmp_path / "train"
    code, out, err = run_cli(["train", str(config), "--output", str(run_dir)], capsys)
    assert code == 0, err
    assert "test purchase: ndcg" in out and "test dwell: ndcg" in out
    assert (run_dir / "plots" / "validation.png").stat().st_size > 10_000

    compared = tmp_path / "compare"
    code, out, err = run_cli(["compare", str(config), "--output", str(compared)], capsys)
    assert code == 0, err
    runs = [r["run"] for r in json.loads((compared / "results.json").read_text())]
    assert runs == [
        "purchase",
        "purchase+dwell",
        "purchase+dwell (fixed weights)",
        "purchase+add_to_cart",
        "purchase+add_to_cart+dwell",
    ]
    assert "purchase kept" in (compared / "results.md").read_text()

    two = write_config(tmp_path, _table_config(table, ["purchase", "dwell"]), "two.yaml")
    code, _, err = run_cli(["grid", str(two), "--output", str(tmp_path / "grid")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "grid" / "grid.json").read_text())["metric"] == "ndcg"

    scores = tmp_path / "scores.csv"
    code, _, err = run_cli(
        ["predict", str(run_dir), "--data", str(table), "--out", str(scores), "--keep", "session"],
        capsys,
    )
    assert code == 0, err
    frame = pd.read_csv(scores)
    assert list(frame.columns) == ["session", "score"] and len(frame) == 480
    code, out, err = run_cli(["evaluate", str(run_dir), "--data", str(table)], capsys)
    assert code == 0, err
    assert "pairwise_accuracy" in out and "dwell" in out


@needs_lambdarank
def test_letor_files_by_path_train_and_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "seed": 0,
        "data": {
            "dataset": "letor",
            "path": str(LAMBDARANK / "rank.train"),
            "options": {
                "test": str(LAMBDARANK / "rank.test"),
                "feature_transform": "log1p",
                "drop_small_queries": True,
            },
        },
        "model": {"name": "single_score", "options": {"hidden_dims": [16]}},
        "method": {"name": "single_task"},
        "trainer": dict(TINY),
    }
    run_dir = tmp_path / "letor"
    code, out, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(run_dir)], capsys
    )
    assert code == 0, err
    assert "test relevance: ndcg" in out
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]["relevance"]
    test_file, out = str(LAMBDARANK / "rank.test"), str(tmp_path / "m.json")
    code, _, err = run_cli(["evaluate", str(run_dir), "--data", test_file, "--out", out], capsys)
    assert code == 0, err
    measured = json.loads((tmp_path / "m.json").read_text())["relevance"]
    assert measured["ndcg"] == pytest.approx(recorded["ndcg"], abs=1e-9)


@pytest.mark.parametrize(
    ("text", "options", "needle"),
    [
        ("1 qid:1 1:1\n0 qid:1 2:1\n1 2:1\n0 2:2\n", {}, "lack 'qid:'"),
        ("1 qid:1 1:1\nhigh qid:1 2:1\n", {}, "label 'high' is not a number"),
        ("1 qid:1 1:1\n0 qid:1 2:1\n1 qid:2 1:1\n", {}, "has 1 item(s)"),
        ("1 qid:1 1:1\n0 qid:1 9:1\n", {"n_features": 3}, "beyond n_features 3"),
    ],
)
def test_bad_letor_files_exit_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    options: dict[str, Any],
    needle: str,
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    config = {
        "data": {"dataset": "letor", "path": str(bad), "options": {"test": str(bad), **options}},
        "model": {"name": "single_score"},
        "method": {"name": "single_task"},
        "trainer": dict(TINY),
    }
    code, _, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(tmp_path / "r")], capsys
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_a_ranking_runs_validation_plot_draws_ndcg(tmp_path: Path) -> None:
    from nomoretuning.cli import plots

    drawn: list[str] = []
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluations.csv").write_text("step,stage,auc_pay,ndcg_pay\n5,1,,0.61\n10,1,,0.65\n")

    class Axes:
        def plot(self, xs: list[float], ys: list[float], **_: object) -> None:
            drawn.append(f"{xs}:{ys}")

        def set_title(self, title: str) -> None:
            drawn.append(title)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    class Figure:
        def tight_layout(self) -> None: ...

        def savefig(self, path: Path) -> None: ...

    class PyPlot:
        def subplots(self, **_: object) -> tuple[Figure, Axes]:
            return Figure(), Axes()

        def close(self, _: object) -> None: ...

    plots._plot_validation(run / "evaluations.csv", run, PyPlot(), ["pay"], [])
    assert drawn == ["[5.0, 10.0]:[0.61, 0.65]", "validation NDCG"]


@needs_lambdarank
def test_the_shipped_letor_config_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli_helpers import CONFIGS

    config = yaml.safe_load((CONFIGS / "ranking_letor.yaml").read_text())
    for key in ("path",):
        config["data"][key] = str(LAMBDARANK / "rank.train")
    config["data"]["options"]["test"] = str(LAMBDARANK / "rank.test")
    config["trainer"] = dict(TINY)
    code, out, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(tmp_path / "r")], capsys
    )
    assert code == 0, err
    assert "test relevance: ndcg" in out
