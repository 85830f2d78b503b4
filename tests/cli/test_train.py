"""``nomoretuning train`` end to end on real data (short budgets): the run directory, overrides,
inner methods, mixed precision, merged single-task runs, the TikTok sample and learning to rank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import (
    CONFIGS,
    FAST,
    LAMBDARANK,
    PACKAGED,
    TIKTOK,
    census_config,
    needs_census,
    needs_lambdarank,
    run_cli,
    write_config,
)

from nomoretuning.cli import main as cli
from nomoretuning.cli.config import validate_config
from nomoretuning.cli.protocols.train import run_training
from nomoretuning.training import metrics


@needs_census
def test_train_writes_a_complete_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, census_config())
    out_dir = tmp_path / "run"
    code, out, err = run_cli(["train", str(config), "--output", str(out_dir)], capsys)
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
    metrics_json = json.loads((out_dir / "metrics.json").read_text())
    assert [s["stage"] for s in metrics_json["stages"]] == [1, 2, 3]  # a joint start first
    assert metrics_json["selection_metric"] == "auc"
    # what each stage did, one line each, after the test metrics
    lines = out.splitlines()
    stages = lines.index("stages:")
    assert stages > lines.index(next(line for line in lines if line.startswith("test income")))
    assert lines[stages + 1].startswith("  stage 1, income + marital: ")
    assert lines[stages + 2].startswith("  stage 2, income: ")
    assert lines[stages + 3].startswith("  stage 3, marital under income: ")
    assert "validation auc marital" in lines[stages + 3]
    assert 0.5 < metrics_json["test"]["income"]["auc"] <= 1
    resolved = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert resolved["trainer"]["max_steps"] == 6
    assert resolved["data"]["options"]["seed"] == resolved["seed"]  # the split's seed, recorded
    assert (out_dir / "plots" / "training.png").stat().st_size > 10_000

    # never overwritten unless asked
    code, _, err = run_cli(["train", str(config), "--output", str(out_dir)], capsys)
    assert code == 2
    assert "already exists and is not empty" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["train", str(config), "--output", str(out_dir), "--overwrite"], capsys)
    assert code == 0, err

    code, out, _ = run_cli(["plot", str(out_dir)], capsys)
    assert code == 0
    assert "training.png" in out


@needs_census
def test_set_overrides_and_inner_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "famo_nmt"
    code, _, err = run_cli(
        [
            "train",
            str(write_config(tmp_path, census_config())),
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
    assert resolved["trainer"]["max_steps"] == 4


@needs_census
def test_bf16_precision_is_settable_from_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = census_config(trainer={**FAST, "max_steps": 2, "precision": "bf16"})
    out_dir = tmp_path / "bf16"
    code, _, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    assert yaml.safe_load((out_dir / "config.yaml").read_text())["trainer"]["precision"] == "bf16"
    assert 0 < json.loads((out_dir / "metrics.json").read_text())["test"]["income"]["auc"] <= 1


@needs_census
def test_single_task_trains_each_task_alone_and_merges_the_record(tmp_path: Path) -> None:
    config = validate_config(census_config(method={"name": "single_task"}))
    record = run_training(config, tmp_path / "single", progress=False)
    assert set(record.test) == set(record.valid) == {"income", "marital"}
    assert record.method == "single_task"
    assert record.stages is None
    assert "stages" not in record.to_dict()
    runs = [json.loads((tmp_path / "single" / t / "metrics.json").read_text()) for t in record.test]
    assert record.steps == sum(run["steps"] for run in runs)
    assert record.test["marital"] == runs[1]["test"]["marital"]


@needs_census
def test_the_command_trains_single_task_on_several_tasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, census_config(method={"name": "single_task"}))
    code, out, err = run_cli(["train", str(config), "--output", str(tmp_path / "st")], capsys)
    assert code == 0, err
    assert "test income" in out and "test marital" in out
    assert (tmp_path / "st" / "income" / "metrics.json").is_file()


@pytest.mark.skipif(not TIKTOK.exists(), reason="../shared/data is not beside the checkout")
def test_tiktok_sample_trains_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = census_config(
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
    path = write_config(tmp_path, config)
    code, _, err = run_cli(["train", str(path), "--output", str(tmp_path / "tt")], capsys)
    assert code == 0, err


@needs_lambdarank
def test_train_on_the_real_lambdarank_example_beats_a_random_ranking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load((CONFIGS / "ranking_lambdarank.yaml").read_text())
    config["data"]["path"] = str(LAMBDARANK)
    config["trainer"].update(max_epochs=2)
    out_dir = tmp_path / "lr"
    code, out, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 0, err
    assert "test relevance: ndcg" in out
    assert "stages:" not in out  # one stage: nothing to tell apart
    result = json.loads((out_dir / "metrics.json").read_text())
    trained = result["test"]["relevance"]["ndcg"]
    assert {"ndcg", "pairwise_accuracy", "loss"} == set(result["test"]["relevance"])

    from nomoretuning.data.ranking import load_lambdarank_example

    test = load_lambdarank_example(LAMBDARANK).test
    y, g = test.labels["relevance"].numpy(), test.groups.numpy()  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    random = np.mean([metrics.ndcg_at_k(y, rng.random(y.size), g, 10) for _ in range(20)])
    assert trained > random + 0.08, (trained, random)


@needs_census
def test_a_corrupt_checkpoint_on_resume_is_one_line_and_the_previous_one_finishes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, census_config())
    reference, run = tmp_path / "reference", tmp_path / "run"
    for out_dir in (reference, run):
        code, _, err = run_cli(["train", str(config), "--output", str(out_dir)], capsys)
        assert code == 0, err
    # The run is interrupted after its last checkpoint, which the crash left truncated.
    (run / "metrics.json").unlink()
    (run / "best.pt").unlink()
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    code, _, err = run_cli(["train", str(config), "--output", str(run), "--resume"], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{last} is not a readable checkpoint" in err
    assert "--resume previous" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    code, _, err = run_cli(
        ["train", str(config), "--output", str(run), "--resume", "previous"], capsys
    )
    assert code == 0, err
    finished = [json.loads((d / "metrics.json").read_text()) for d in (reference, run)]
    for metrics_json in finished:
        metrics_json.pop("wall_time_s"), metrics_json.pop("run_dir")
    assert finished[0] == finished[1]
    for log in ("history.csv", "evaluations.csv"):
        assert (run / log).read_text() == (reference / log).read_text()


def _a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """A short Census-Income NMT run: its config file and its run directory."""
    config = write_config(tmp_path, census_config())
    run = tmp_path / "run"
    assert run_cli(["train", str(config), "--output", str(run)], capsys)[0] == 0
    return config, run


@needs_census
def test_a_bad_config_with_overwrite_costs_no_earlier_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run = _a_finished_run(tmp_path, capsys)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for override in ("model.name=mmoee", f"data.path={tmp_path / 'nope.csv'}"):
        code, _, err = run_cli(
            ["train", str(config), "--output", str(run), "--overwrite", "--set", override],
            capsys,
        )
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # a folder of other things: --overwrite writes the run beside them, deleting none
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("important")
    assert run_cli(["train", str(config), "--output", str(mine), "--overwrite"], capsys)[0] == 0
    assert (mine / "thesis.txt").read_text() == "important" and (mine / "metrics.json").exists()


@needs_census
def test_resume_refuses_other_settings_and_a_damaged_metrics_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, run = _a_finished_run(tmp_path, capsys)
    started = (run / "config.yaml").read_text()
    changes = [("trainer.lr=0.05", "trainer.lr=0.001"), ("seed=1", "seed=0")]
    changes += [("method.options.tolerance=0.5", "no method.options.tolerance")]  # an option added
    changes += [("data.options.seed=null", "data.options.seed=0")]  # its default is 0, not null
    for override, key in changes:
        code, _, err = run_cli(
            ["train", str(config), "--output", str(run), "--resume", "--set", override], capsys
        )
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"was started with {key}" in err and "config.yaml" in err
    assert (run / "config.yaml").read_text() == started  # a refused resume rewrites nothing
    # where it writes, whether it shows progress, on what device it runs may change
    args = ["train", str(config), "--output", str(run), "--resume"]
    harmless = ["--set", "trainer.progress=true", "--set", "trainer.device=cpu"]
    harmless += ["--set", "data.options.test_path=null"]  # its default is null: left out
    assert run_cli([*args, *harmless], capsys)[0] == 0
    code, out, _ = run_cli(
        ["train", str(config), "--output", str(tmp_path / "new"), "--resume"], capsys
    )
    assert code == 0 and "nothing to resume in" in out
    (run / "metrics.json").write_text("[1, 2]")
    code, _, err = run_cli(["train", str(config), "--output", str(run), "--resume"], capsys)
    assert code == 2 and f"{run / 'metrics.json'} is not the metrics of a finished run" in err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", str(config), "--output", str(run), "--resume", "--overwrite"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_train_runs_the_packaged_demo_config_whose_options_serve_several_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo config shares one option set among its compared models (``bottom_dims`` is the
    single-task model's); ``train`` keeps the ones ``model.name`` takes."""
    out_dir = tmp_path / "demo"
    quick = ["data.options.n_rows=4000", "trainer.max_steps=4", "trainer.eval_every=2"]
    args = ["train", str(PACKAGED / "demo_synthetic.yaml"), "--output", str(out_dir)]
    code, out, err = run_cli([*args, *(a for o in quick for a in ("--set", o))], capsys)
    assert code == 0, err
    assert "test click: auc" in out
    resolved = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert resolved["model"]["name"] == "mmoe"
    assert "bottom_dims" not in resolved["model"]["options"]
    assert resolved["model"]["options"]["num_experts"] == 4


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        # with a compare section: a key that no compared model takes is a typo
        (
            {"compare": {"models": ["mmoe"]}, "model": {"name": "mmoe", "options": {"botom": 1}}},
            "model.options.botom: no compared architecture takes this option",
        ),
        # without one: options are the model's own, so another model's option is refused
        (
            {"model": {"name": "mmoe", "options": {"bottom_dims": [8]}}},
            "unknown argument 'bottom_dims'",
        ),
    ],
)
def test_train_refuses_model_options_that_fit_no_model_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sections: dict, message: str
) -> None:
    config = {"data": {"dataset": "synthetic", "options": {"n_rows": 2000}}, **sections}
    config["trainer"] = {"max_steps": 2, "progress": False}
    out_dir = tmp_path / "run"
    code, _, err = run_cli(
        ["train", str(write_config(tmp_path, config)), "--output", str(out_dir)], capsys
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out_dir.exists() or not any(out_dir.iterdir())  # nothing written
