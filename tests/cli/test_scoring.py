"""``nomoretuning predict``, ``evaluate`` and ``export`` end to end on real data: a short
Census-Income run scored on the raw file reproduces the trainer's own test metrics, the exported
artifact matches eager PyTorch, and every bad input ends with one line and exit status 2 without
touching a result.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import CENSUS, LAMBDARANK, census_config, needs_census, needs_lambdarank, run_cli
from cli_helpers import write_config as write_yaml

from nomoretuning.cli import main as cli
from nomoretuning.data import load_census_income
from nomoretuning.serving import load_exported, load_run
from nomoretuning.training import metrics

pytestmark = needs_census


@pytest.fixture(scope="module")
def census_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short NMT run (small MMoE, a few steps) on the real Census-Income file."""
    folder = tmp_path_factory.mktemp("census")
    config = write_yaml(folder, census_config())
    assert cli.main(["train", str(config), "--output", str(folder / "run")]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def census_split() -> dict[str, np.ndarray]:
    """The run's test rows (positions in the raw file) and their labels, as the loader splits."""
    ds = load_census_income(CENSUS, tasks=["income", "marital"], seed=0)
    test = ds.metadata["indices"]["test"]  # type: ignore[index]
    return {"rows": np.asarray(test), **{t: ds.test.labels[t].numpy() for t in ds.tasks}}


def _raw_lines(rows: np.ndarray) -> str:
    with gzip.open(CENSUS, "rt") as handle:
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return "".join(lines[i] + "\n" for i in rows)


def test_predict_on_the_raw_file_reproduces_the_trainers_test_metrics(
    census_run: Path,
    census_split: dict[str, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scores.parquet"
    args = ["predict", str(census_run), "--data", str(CENSUS), "--out", str(out)]
    code, stdout, err = run_cli([*args, "--keep", "age", "sex"], capsys)
    assert code == 0, err
    assert "scored 99762 rows" in stdout
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["age", "sex", "income", "marital"]
    assert len(scores) == 99_762  # one row per input row
    raw = pd.read_csv(CENSUS, header=None, skipinitialspace=True, nrows=5)
    assert scores["age"].head().tolist() == raw[0].tolist()  # input order, columns carried
    assert ((scores[["income", "marital"]] > 0) & (scores[["income", "marital"]] < 1)).all().all()
    recorded = json.loads((census_run / "metrics.json").read_text())["test"]
    rows = census_split["rows"]
    for task in ("income", "marital"):
        auc = metrics.auc(census_split[task], scores[task].to_numpy()[rows])
        # the scores agree with the trainer's to about 1e-7 (float32 logits over other batches),
        # which can flip a near-tie pair: 1e-6 is a handful of the test split's millions of pairs
        assert auc == pytest.approx(recorded[task]["auc"], abs=1e-6)

    # in pieces of 7,000 rows (bounded memory): the same scores, as CSV
    pieces = tmp_path / "pieces.csv"
    code, _, err = run_cli(
        [
            "predict",
            str(census_run),
            "--data",
            str(CENSUS),
            "--out",
            str(pieces),
            "--chunk-rows=7000",
        ],
        capsys,
    )
    assert code == 0, err
    again = pd.read_csv(pieces)
    # a different piece size may take a different float32 matrix kernel: equal to rounding
    np.testing.assert_allclose(again["income"], scores["income"], rtol=0, atol=1e-6)


def test_evaluate_reproduces_the_runs_test_metrics(
    census_run: Path,
    census_split: dict[str, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    test_file = tmp_path / "test_rows.csv"
    test_file.write_text(_raw_lines(np.sort(census_split["rows"])))
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(census_run), "--data", str(test_file), "--out", str(out)]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "auc" in stdout and "income" in stdout
    measured = json.loads(out.read_text())
    recorded = json.loads((census_run / "metrics.json").read_text())["test"]
    for task in ("income", "marital"):
        for name in ("auc", "logloss", "loss"):
            assert measured[task][name] == pytest.approx(recorded[task][name], abs=1e-9)
    # an existing --out is never overwritten unless asked
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1


def test_python_api_predicts_a_frame_like_the_command_line(census_run: Path) -> None:
    run = load_run(census_run)
    assert run.tasks == ("income", "marital")
    assert run.output_columns == ("income", "marital")
    frame = pd.read_csv(CENSUS, header=None, skipinitialspace=True, keep_default_na=False, nrows=50)
    frame.columns = [*_census_columns()]
    scores = run.predict(frame)
    assert list(scores.columns) == ["income", "marital"] and len(scores) == 50
    path = census_run.parent / "first50.csv"
    path.write_text(_raw_lines(np.arange(50)))
    assert run.predict_file(path, census_run.parent / "first50.parquet", overwrite=True) == 50
    from_file = pd.read_parquet(census_run.parent / "first50.parquet")
    np.testing.assert_allclose(scores.to_numpy(), from_file.to_numpy(), rtol=0, atol=1e-12)
    # the last checkpoint is another model (the latest training state), also loadable
    last = load_run(census_run, "last")
    assert last.checkpoint == "last" and last.predict(frame).shape == (50, 2)


def _census_columns() -> tuple[str, ...]:
    from nomoretuning.data import CENSUS_COLUMNS

    return CENSUS_COLUMNS


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_export_matches_eager_pytorch_on_real_rows(
    census_run: Path, tmp_path: Path, format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ("model.onnx" if format == "onnx" else "model.pt")
    code, stdout, err = run_cli(
        ["export", str(census_run), "--format", format, "--out", str(out)], capsys
    )
    assert code == 0, err
    beside = tmp_path / "model.preprocessing.json"
    assert beside.is_file() and f"preprocessing: {beside}" in stdout
    run = load_run(census_run)
    rows = next(run.preprocessing.read(CENSUS, chunk_rows=5000))
    exported = load_exported(out, format)(rows.sparse, rows.dense)
    eager = run.predict_rows(rows)
    for task in run.tasks:
        np.testing.assert_allclose(exported[task], eager[task], rtol=0, atol=1e-5)
    # never over an existing artifact unless asked
    code, _, err = run_cli(
        ["export", str(census_run), "--format", format, "--out", str(out)], capsys
    )
    assert code == 2 and "already exists" in err
    other = tmp_path / ("model.pt" if format == "onnx" else "model.onnx")
    for wrong in (other, tmp_path / "scores.csv"):
        code, _, err = run_cli(
            ["export", str(census_run), "--format", format, "--out", str(wrong)], capsys
        )
        assert code == 2 and "would be written under a" in err and not wrong.exists(), err


@needs_lambdarank
def test_a_ranking_run_scores_and_evaluates_letor_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "seed": 0,
        "data": {"dataset": "lambdarank", "path": str(LAMBDARANK), "tasks": ["relevance"]},
        "model": {"name": "single_score", "options": {"hidden_dims": [16]}},
        "method": {"name": "single_task"},
        "trainer": {"batch_size": 256, "max_steps": 6, "eval_every": 3, "progress": False},
    }
    run_dir = tmp_path / "rank"
    code, _, err = run_cli(
        ["train", str(write_yaml(tmp_path, config)), "--output", str(run_dir)], capsys
    )
    assert code == 0, err
    test_file = LAMBDARANK / "rank.test"
    out = tmp_path / "scores.csv"
    code, _, err = run_cli(
        ["predict", str(run_dir), "--data", str(test_file), "--out", str(out), "--keep", "qid"],
        capsys,
    )
    assert code == 0, err
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["qid", "score"] and len(scores) == 768
    code, _, err = run_cli(
        ["evaluate", str(run_dir), "--data", str(test_file), "--out", str(tmp_path / "m.json")],
        capsys,
    )
    assert code == 0, err
    measured = json.loads((tmp_path / "m.json").read_text())["relevance"]
    recorded = json.loads((run_dir / "metrics.json").read_text())["test"]["relevance"]
    for name in ("ndcg", "pairwise_accuracy", "loss"):
        assert measured[name] == pytest.approx(recorded[name], abs=1e-9)
    # The file without its .query: scoring needs no queries; evaluating and keeping qid do.
    bare = tmp_path / "bare.txt"
    bare.write_bytes(test_file.read_bytes())
    bare_out = tmp_path / "bare.csv"
    code, _, err = run_cli(
        ["predict", str(run_dir), "--data", str(bare), "--out", str(bare_out)], capsys
    )
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(bare_out), scores[["score"]])
    for args in (
        ["evaluate", str(run_dir), "--data", str(bare)],
        [
            "predict",
            str(run_dir),
            "--data",
            str(bare),
            "--out",
            str(tmp_path / "q.csv"),
            "--keep",
            "qid",
        ],
    ):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "no query ids" in err and "bare.txt.query" in err, err
        assert len(err.strip().splitlines()) == 1
    negative = tmp_path / "negative.txt"
    negative.write_text("-1 1:0.5\n" + test_file.read_text())
    sizes = (LAMBDARANK / "rank.test.query").read_text()
    (tmp_path / "negative.txt.query").write_text("1\n" + sizes)
    code, _, err = run_cli(["evaluate", str(run_dir), "--data", str(negative)], capsys)
    assert code == 2 and "'relevance' is -1 at data row 1" in err, err
    # scoring reads no labels: a placeholder -1 is fine
    code, _, err = run_cli(
        ["predict", str(run_dir), "--data", str(negative), "--out", str(tmp_path / "n.csv")],
        capsys,
    )
    assert code == 0, err


# ----------------------------------------------------------------------------- bad input
def _fails(args: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_runs_get_one_line(
    census_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "s.csv")
    data = ["--data", str(CENSUS), "--out", out]
    _fails(["predict", str(tmp_path / "nowhere"), *data], capsys, "no such run directory")
    (tmp_path / "empty").mkdir()
    _fails(["predict", str(tmp_path / "empty"), *data], capsys, "no model.json")
    single = tmp_path / "single"
    (single / "income").mkdir(parents=True)
    spec = json.loads((census_run / "model.json").read_text())
    (single / "income" / "model.json").write_text(json.dumps({**spec, "tasks": ["income"]}))
    _fails(["predict", str(single), *data], capsys, "one single-task run per task", "income")
    runs = tmp_path / "runs"  # a folder of unrelated runs (two tasks each)
    (runs / "census_nmt").mkdir(parents=True)
    (runs / "census_nmt" / "model.json").write_text(json.dumps(spec))
    _fails(["predict", str(runs), *data], capsys, "is not a run directory", "census_nmt")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("model.json", "preprocessing.json", "last.pt"):
        (unfinished / name).write_bytes((census_run / name).read_bytes())
    _fails(["predict", str(unfinished), *data], capsys, "--checkpoint last")
    code, _, err = run_cli(["predict", str(unfinished), *data, "--checkpoint", "last"], capsys)
    assert code == 0, err
    Path(out).unlink()
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.json", "best.pt"):
        (old / name).write_bytes((census_run / name).read_bytes())
    state = json.loads((census_run / "preprocessing.json").read_text())
    (old / "preprocessing.json").write_text(json.dumps({**state, "version": 99}))
    _fails(["predict", str(old), *data], capsys, "preprocessing version 99")
    (old / "preprocessing.json").write_text("{not json")
    _fails(["predict", str(old), *data], capsys, "unreadable preprocessing")
    other = tmp_path / "other"
    other.mkdir()
    spec = json.loads((census_run / "model.json").read_text())
    spec["options"]["tower_dims"] = [4]
    (other / "model.json").write_text(json.dumps(spec))
    (other / "best.pt").write_bytes((census_run / "best.pt").read_bytes())
    _fails(["predict", str(other), *data], capsys, "does not fit")
    assert not Path(out).exists()


def test_bad_data_and_outputs_get_one_line_and_keep_results(
    census_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(census_run)
    out = tmp_path / "scores.csv"
    _fails(
        ["predict", run, "--data", str(tmp_path / "missing.csv"), "--out", str(out)],
        capsys,
        "file not found",
    )
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b,c\n1,2,3\n")
    _fails(["predict", run, "--data", str(wrong), "--out", str(out)], capsys, "expected 42")
    # a bad value deep in the file: named by its row from the top, found while reading in pieces
    lines = _raw_lines(np.arange(30)).splitlines()
    fields = lines[24].split(", ")
    fields[0] = "old"  # age is a dense column
    lines[24] = ", ".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    _fails(
        ["predict", run, "--data", str(bad), "--out", str(out), "--chunk-rows", "10"],
        capsys,
        "'age'",
        "data row 25",
    )
    assert not out.exists() and not any(p.name.startswith(".scores") for p in tmp_path.iterdir())
    _fails(
        ["predict", run, "--data", str(CENSUS), "--out", str(tmp_path / "s.xlsx")],
        capsys,
        "unknown output format",
    )
    _fails(
        ["predict", run, "--data", str(CENSUS), "--out", str(out), "--keep", "nope"],
        capsys,
        "'nope' is missing",
        "fix the column name given to keep",
    )
    _fails(
        ["predict", run, "--data", str(CENSUS), "--out", str(out), "--chunk-rows", "0"],
        capsys,
        "--chunk-rows",
    )
    out.write_text("precious\n")
    _fails(["predict", run, "--data", str(CENSUS), "--out", str(out)], capsys, "already exists")
    assert out.read_text() == "precious\n"
    code, _, _ = run_cli(
        ["predict", run, "--data", str(bad), "--out", str(out), "--overwrite"], capsys
    )
    assert code == 2 and out.read_text() == "precious\n"  # a failed scoring keeps the old file


def test_outputs_that_would_replace_the_input_or_the_run_are_refused(
    census_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(census_run)
    data = tmp_path / "held_out.csv"
    data.write_text(_raw_lines(np.arange(40)))
    before = data.read_bytes()
    for command in (["evaluate"], ["predict"]):
        out = data if command == ["predict"] else data.with_suffix(".json")
        if command == ["evaluate"]:  # the JSON beside it is fine; the input itself is not
            target = tmp_path / "same.json"
            target.write_text("{}")
            _fails(
                ["evaluate", run, "--data", str(target), "--out", str(target), "--overwrite"],
                capsys,
                "is the input file",
            )
            assert target.read_text() == "{}"
        else:
            _fails([*command, run, "--data", str(data), "--out", str(out)], capsys, "input")
    assert data.read_bytes() == before
    _fails(
        ["evaluate", run, "--data", str(data), "--out", str(tmp_path / "m.txt")],
        capsys,
        "name a .json file",
    )
    best = (census_run / "best.pt").read_bytes()
    _fails(
        ["export", run, "--format", "torchscript", "--out", f"{run}/best.pt", "--overwrite"],
        capsys,
        "is a file of the run",
    )
    _fails(
        ["evaluate", run, "--data", str(data), "--out", f"{run}/metrics.json", "--overwrite"],
        capsys,
        "is a file of the run",
    )
    assert (census_run / "best.pt").read_bytes() == best


def test_evaluate_writes_an_undefined_metric_as_null(
    census_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _raw_lines(np.arange(200)).splitlines()
    below = [line for line in lines if line.rstrip().endswith("- 50000.")][:20]
    data = tmp_path / "one_class.csv"  # every row's income below 50,000: AUC is undefined
    data.write_text("\n".join(below) + "\n")
    out = tmp_path / "metrics.json"
    code, _, err = run_cli(
        ["evaluate", str(census_run), "--data", str(data), "--out", str(out)], capsys
    )
    assert code == 0, err
    text = out.read_text()
    assert "NaN" not in text
    written = json.loads(text)
    assert written["income"]["auc"] is None and written["income"]["logloss"] > 0
