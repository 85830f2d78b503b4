"""`load_run` on runs of every input format: tables (CSV and Parquet, group ids, unseen ids), the
real TikTok sample, generated data; and the bad inputs of a table run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nomoretuning.cli.config import validate_config
from nomoretuning.cli.protocols.train import run_training
from nomoretuning.data import load_table, make_synthetic
from nomoretuning.errors import DataError
from nomoretuning.serving import load_run
from nomoretuning.training import metrics
from nomoretuning.training.prediction import predict

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
TIKTOK = SHARED / "tiktok-icme2019-sample" / "final_track2_sample.txt"
BUDGET = {"batch_size": 128, "max_steps": 8, "eval_every": 4, "progress": False}


def _table(path: Path, rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, 40, rows)
    item = rng.integers(0, 25, rows)
    price = rng.normal(size=rows)
    logit = 0.08 * (user % 7) - 0.1 * (item % 5) + price
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u in user],
            "item": [f"i{i}" for i in item],
            "price": price,
            "click": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int),
            "like": (rng.random(rows) < 1 / (1 + np.exp(-logit + 1))).astype(int),
            "row_id": np.arange(rows),
        }
    )
    frame.to_csv(path, index=False)
    return frame


def _train(tmp_path: Path, data: dict[str, object], name: str = "run") -> Path:
    config = validate_config(
        {
            "seed": 0,
            "data": data,
            "model": {"name": "mmoe", "options": {"num_experts": 2, "expert_dims": [8]}},
            "method": {"name": "nmt"},
            "trainer": BUDGET,
        }
    )
    run_training(config, tmp_path / name, progress=False)
    return tmp_path / name


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("table")
    _table(folder / "log.csv")
    data = {
        "dataset": "table",
        "path": str(folder / "log.csv"),
        "options": {
            "sparse": ["user", "item"],
            "dense": ["price"],
            "labels": ["click", "like"],
            "group": "user",
        },
    }
    return _train(folder, data), folder / "log.csv"


def test_a_table_run_predicts_evaluates_with_gauc_and_reads_parquet(
    table_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, log = table_run
    run = load_run(run_dir)
    frame = pd.read_csv(log)
    scores = run.predict(frame, keep=["row_id"])
    assert list(scores.columns) == ["row_id", "click", "like"]
    assert scores["row_id"].tolist() == list(range(600))
    # the file path and the frame path agree, and Parquet reads as CSV does
    frame.to_parquet(tmp_path / "log.parquet")
    for source in (log, tmp_path / "log.parquet"):
        out = tmp_path / f"{source.suffix[1:]}.csv"
        assert run.predict_file(source, out, chunk_rows=128) == 600
        np.testing.assert_allclose(pd.read_csv(out)["click"], scores["click"], atol=1e-12)
    measured = run.evaluate(log)
    assert set(measured["click"]) == {"auc", "gauc", "logloss", "loss"}
    # the same numbers as the library's metrics on the scores
    assert measured["click"]["auc"] == pytest.approx(
        metrics.auc(frame["click"].to_numpy(), scores["click"].to_numpy()), abs=1e-12
    )
    codes = pd.factorize(frame["user"])[0]
    logit = np.log(scores["click"] / (1 - scores["click"])).to_numpy()
    assert measured["click"]["gauc"] == pytest.approx(
        metrics.gauc(frame["click"].to_numpy(), logit, codes), abs=1e-6
    )


def test_scores_keep_the_input_index_so_a_filtered_frame_lines_up(
    table_run: tuple[Path, Path],
) -> None:
    run = load_run(table_run[0])
    frame = pd.read_csv(table_run[1])
    whole = run.predict(frame)
    part = frame[frame["price"] > 0.5].copy()
    part["p_click"] = run.predict(part, keep=["row_id"])["click"]
    assert part["p_click"].notna().all()
    np.testing.assert_allclose(part["p_click"], whole["click"][part.index], atol=1e-6)


def test_unseen_ids_score_as_the_oov_bucket(table_run: tuple[Path, Path]) -> None:
    run = load_run(table_run[0])
    frame = pd.DataFrame(
        {"user": ["u1", "never-seen"], "item": ["zzz", "zzz"], "price": [0.3, 0.3]}
    )
    rows = run.preprocessing.encode(frame)
    assert rows.sparse[1].tolist() == [0, 0] and rows.sparse[0, 1] == 0
    oov = pd.DataFrame({"user": [None], "item": [None], "price": [0.3]})
    np.testing.assert_allclose(
        run.predict(frame).iloc[1].to_numpy(), run.predict(oov).iloc[0].to_numpy(), atol=1e-12
    )


def test_bad_table_inputs_are_named(table_run: tuple[Path, Path], tmp_path: Path) -> None:
    run = load_run(table_run[0])
    frame = pd.read_csv(table_run[1])
    with pytest.raises(DataError, match="column 'price' is missing"):
        run.predict(frame.drop(columns=["price"]))
    with pytest.raises(DataError, match=r"column 'nosuch' is missing .* name given to keep"):
        run.predict_file(table_run[1], tmp_path / "kept.csv", keep=["nosuch"])
    with pytest.raises(DataError, match=r"column 'nosuch' is missing .* name given to keep"):
        run.predict(frame, keep=["nosuch"])
    with pytest.raises(DataError, match="keep lists the column 'user' twice"):
        run.predict_file(table_run[1], tmp_path / "kept.csv", keep=["user", "user"])
    no_labels = tmp_path / "unlabelled.csv"
    frame.drop(columns=["like"]).to_csv(no_labels, index=False)
    assert run.predict_file(no_labels, tmp_path / "s.csv") == 600  # scoring needs no label
    with pytest.raises(DataError, match="column 'like' is missing"):
        run.evaluate(no_labels)
    broken = frame.astype({"price": object})
    broken.loc[450, "price"] = "cheap"
    broken.to_csv(tmp_path / "broken.csv", index=False)
    with pytest.raises(DataError, match=r"'price' .*'cheap' at data row 451"):
        run.predict_file(tmp_path / "broken.csv", tmp_path / "b.csv", chunk_rows=100)
    assert not (tmp_path / "b.csv").exists()
    bad_label = frame.copy()
    bad_label.loc[3, "click"] = 7
    with pytest.raises(DataError, match="'click' has value '7' at data row 4"):
        run.evaluate(bad_label)
    with pytest.raises(DataError, match="--out is the input file"):
        run.predict_file(table_run[1], table_run[1], overwrite=True)


@pytest.mark.skipif(not TIKTOK.is_file(), reason="../shared/data is not beside the checkout")
def test_a_tiktok_run_scores_the_raw_log(tmp_path: Path) -> None:
    data = {
        "dataset": "tiktok",
        "path": str(TIKTOK),
        "options": {"allow_single_class": True, "min_count": 1},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 200-row sample has a split without a like
        run_dir = _train(tmp_path, data)
    run = load_run(run_dir)
    assert json.loads((run_dir / "preprocessing.json").read_text())["input_format"] == {
        "kind": "tiktok",
        "options": {"groups_from_encoded": False},
    }
    out = tmp_path / "scores.parquet"
    assert run.predict_file(TIKTOK, out, keep=["uid", "item_id"]) == 200
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["uid", "item_id", "finish", "like"]
    raw = pd.read_csv(TIKTOK, sep="\t", header=None, dtype=str)
    assert scores["uid"].tolist() == raw[0].tolist()
    measured = run.evaluate(TIKTOK)
    assert "gauc" in measured["finish"]


def test_a_generated_dataset_scores_encoded_columns_like_the_trainer(tmp_path: Path) -> None:
    run_dir = _train(tmp_path, {"dataset": "synthetic", "options": {"n_rows": 3000}})
    run = load_run(run_dir)
    ds = make_synthetic(3000, seed=0)
    test = ds.test
    frame = pd.DataFrame(test.sparse.numpy(), columns=[f.name for f in ds.features.sparse])
    for j, name in enumerate(ds.features.dense):
        frame[name] = test.dense[:, j].numpy()
    scores = run.predict(frame)
    logits, _, _ = predict(run.model, test, 512, torch.device("cpu"), run.tasks)
    for task in run.tasks:
        np.testing.assert_allclose(scores[task], 1 / (1 + np.exp(-logits[task])), atol=1e-7)


def test_preprocessing_round_trips_through_json(table_run: tuple[Path, Path]) -> None:
    from nomoretuning.data.preprocessing import Preprocessing

    ds = load_table(
        table_run[1],
        sparse=["user", "item"],
        dense=["price"],
        labels=["click", "like"],
        group="user",
    )
    fitted = Preprocessing.from_dataset(ds)
    loaded = Preprocessing.load(table_run[0] / "preprocessing.json")
    assert loaded.to_dict() == json.loads(json.dumps(fitted.to_dict()))
    frame = pd.read_csv(table_run[1])
    a, b = fitted.encode(frame, labels=True), loaded.encode(frame, labels=True)
    np.testing.assert_array_equal(a.sparse, b.sparse)
    np.testing.assert_array_equal(a.dense, b.dense)
    # the training split's own encoding is what the run reproduces
    train_rows = ds.metadata["indices"]["train"]  # type: ignore[index]
    np.testing.assert_array_equal(a.sparse[train_rows], ds.train.sparse.numpy())
    np.testing.assert_array_equal(a.dense[train_rows], ds.train.dense.numpy())
