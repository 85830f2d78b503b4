"""The command line end to end on the real Census-Income file (short budgets), and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nomoretuning.cli import main as cli

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CENSUS = SHARED / "census-income-kdd" / "census-income.test.gz"
TIKTOK = SHARED / "tiktok-icme2019-sample" / "final_track2_sample.txt"

pytestmark = pytest.mark.skipif(
    not CENSUS.exists(), reason="../shared/data is not beside the checkout"
)

FAST = {
    "batch_size": 2048,
    "max_epochs": 1,
    "max_steps": 6,
    "eval_every": 3,
    "patience": 2,
    "progress": False,
}
SMALL_MODEL = {
    "num_experts": 2,
    "expert_dims": [16],
    "gate_dims": [],
    "tower_dims": [8],
    "embedding_dim": 4,
}


def _config(tmp_path: Path, name: str = "run.yaml", **sections: object) -> Path:
    config: dict[str, object] = {
        "seed": 0,
        "data": {"dataset": "census_income", "path": str(CENSUS), "tasks": ["income", "marital"]},
        "model": {"name": "mmoe", "options": dict(SMALL_MODEL)},
        "method": {"name": "nmt"},
        "trainer": dict(FAST),
    }
    config.update(sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_a_complete_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "run"
    code, out, err = _run(["train", str(_config(tmp_path)), "--output", str(out_dir)], capsys)
    assert code == 0, err
    assert "test income: auc" in out
    names = {p.name for p in out_dir.iterdir()}
    assert {
        "config.yaml",
        "history.csv",
        "evaluations.csv",
        "metrics.json",
        "last.pt",
        "best.pt",
        "plots",
    } <= names
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert [s["stage"] for s in metrics["stages"]] == [1, 2]
    assert 0.5 < metrics["test"]["income"]["auc"] <= 1
    resolved = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert resolved["trainer"]["max_steps"] == 6
    assert (out_dir / "plots" / "training.png").stat().st_size > 10_000

    # never overwritten unless asked
    code, _, err = _run(["train", str(_config(tmp_path)), "--output", str(out_dir)], capsys)
    assert code == 2
    assert "already exists and is not empty" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run(
        ["train", str(_config(tmp_path)), "--output", str(out_dir), "--overwrite"], capsys
    )
    assert code == 0, err

    code, out, _ = _run(["plot", str(out_dir)], capsys)
    assert code == 0
    assert "training.png" in out


def test_set_overrides_and_inner_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "famo_nmt"
    code, _, err = _run(
        [
            "train",
            str(_config(tmp_path)),
            "--output",
            str(out_dir),
            "--set",
            "method.inner=famo",
            "--set",
            "method.options={dual: pi}",
            "--set",
            "trainer.max_steps=4",
        ],
        capsys,
    )
    assert code == 0, err
    resolved = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert resolved["method"]["inner"] == "famo"
    assert resolved["method"]["options"] == {"dual": "pi"}


def test_compare_writes_results_in_the_documented_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        model={"name": "mmoe", "options": {**SMALL_MODEL, "bottom_dims": [16]}},
        compare={
            "models": ["mmoe", "shared_bottom"],
            "methods": ["single_task", "equal", "nmt"],
            "seeds": [0, 1],
        },
    )
    out_dir = tmp_path / "cmp"
    code, _, err = _run(["compare", str(config), "--output", str(out_dir)], capsys)
    assert code == 0, err
    records = json.loads((out_dir / "results.json").read_text())
    assert len(records) == 2 + 2 * 2 * 2  # single-task once per seed, then models x methods x seeds
    for record in records:
        assert {"model", "method", "seed", "test", "wall_time_s"} <= set(record)
        for task in ("income", "marital"):
            assert {"auc", "logloss"} <= set(record["test"][task])
    table = (out_dir / "results.md").read_text()
    assert "| mmoe | nmt |" in table
    assert "| shared_bottom | single_task |" in table
    assert "Δ income" in table
    assert "±" in table

    # an interrupted comparison continues: finished runs are reused, not recomputed
    (out_dir / "results.json").unlink()
    code, _, err = _run(["compare", str(config), "--output", str(out_dir), "--resume"], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "results.json").read_text()) == records


def test_grid_compares_the_weight_grid_with_nmt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "grid"
    code, _, err = _run(
        ["grid", str(_config(tmp_path, grid={"points": 3})), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    summary = json.loads((out_dir / "grid.json").read_text())
    assert [p["weights"]["income"] for p in summary["grid"]] == [0.9, 0.5, 0.1]
    assert summary["cost"]["grid_runs"] == 3
    assert (out_dir / "tradeoff.png").exists()
    assert "NMT" in (out_dir / "grid.md").read_text()


def test_tiktok_sample_trains_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        data={
            "dataset": "tiktok",
            "path": str(TIKTOK),
            "tasks": ["finish", "like"],
            "options": {"allow_single_class": True, "min_count": 1},
        },
        model={
            "name": "shared_bottom",
            "options": {"bottom_dims": [8], "tower_dims": [4], "embedding_dim": 4},
        },
        trainer={**FAST, "batch_size": 32},
    )
    code, _, err = _run(["train", str(config), "--output", str(tmp_path / "tt")], capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(extra=1), "extra: unknown key"),
        (lambda c: c.pop("data"), "data: required key is missing"),
        (
            lambda c: c["data"].update(dataset="imagenet"),
            "data.dataset: must be one of census_income",
        ),
        (lambda c: c["trainer"].update(lr="fast"), "trainer.lr: Input should be a valid number"),
        (lambda c: c["trainer"].update(batch_size=0), "trainer.batch_size must be a positive"),
        (lambda c: c["model"].update(name="transformer"), "model.name: unknown model"),
        (lambda c: c["model"]["options"].update(experts=3), "model.options"),
        (lambda c: c["method"].update(name="pcgrad"), "method.name: must be one of single_task"),
        (lambda c: c["method"].update(options={"tolerance": -1}), "tolerance of task 'income'"),
        (
            lambda c: c["method"].update(options={"speed": 1}),
            "method.options.speed: unknown option",
        ),
        (lambda c: c["method"].update(priorities=["income", "age"]), "method.priorities"),
        (lambda c: c["data"].update(tasks=["income", "age"]), "unknown task"),
        (lambda c: c["data"].update(path="/nonexistent/census.gz"), "/nonexistent/census.gz"),
        (lambda c: c["method"].update(name="fixed"), "method.weights"),
    ],
)
def test_bad_configs_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: object, message: str
) -> None:
    config: dict[str, object] = yaml.safe_load(_config(tmp_path).read_text())
    mutate(config)  # type: ignore[operator]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = _run(["train", str(path), "--output", str(tmp_path / "out")], capsys)
    assert code == 2
    assert message in err
    assert err.startswith("nomoretuning: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_files_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["train", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2
    assert "config file not found" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    code, _, err = _run(["train", str(broken)], capsys)
    assert code == 2
    assert "invalid YAML at line" in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, _, err = _run(["train", str(empty)], capsys)
    assert "the config is empty" in err
    code, _, err = _run(["train", str(_config(tmp_path)), "--set", "trainer.lr"], capsys)
    assert code == 2
    assert "expected key=value" in err
    code, _, err = _run(["plot", str(tmp_path)], capsys)
    assert code == 2
    assert "no history.csv" in err


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nomoretuning", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    for command in ("train", "compare", "grid", "plot", "demo"):
        assert command in done.stdout


def test_demo_says_which_data_it_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []

    def fake_compare(args: object, config_path: Path | None = None, overrides: object = ()) -> int:
        assert config_path is not None
        seen.append(Path(config_path))
        return 0

    monkeypatch.setattr(cli, "_compare", fake_compare)
    monkeypatch.setenv("NOMORETUNING_CACHE", str(tmp_path / "empty"))
    assert cli.main(["demo", "--output", str(tmp_path / "d1")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    monkeypatch.setenv("NOMORETUNING_CACHE", str(CENSUS.parent))
    assert cli.main(["demo", "--output", str(tmp_path / "d2")]) == 0
    assert "real data, UCI Census-Income" in capsys.readouterr().out
    assert [p.name for p in seen] == ["demo_synthetic.yaml", "demo_census.yaml"]
