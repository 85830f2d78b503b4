"""The trainer on streamed data (real Census-Income rows as a table): NMT end to end, exact resume
after a kill, and a malformed row met mid-stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from census_table import CENSUS_SPARSE, census_schema, table_columns, write_census_table

import nomoretuning as nt
from nomoretuning.data import load_table
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import DataError
from nomoretuning.models import build_model
from nomoretuning.training.trainer import Trainer, TrainerConfig

STREAM = {"piece_rows": 1500, "shuffle_rows": 4000}


@pytest.fixture(scope="module")
def census_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_census_table(tmp_path_factory.mktemp("census") / "census.csv", rows=12_000)


@pytest.fixture(scope="module")
def streamed(census_csv: Path) -> PreparedDataset:
    return load_table(census_csv, **table_columns(census_schema()), streaming=STREAM)  # type: ignore[arg-type]


def _model(data: PreparedDataset, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(
        "mmoe", data.features, data.tasks, num_experts=2, expert_dims=(16,), gate_dims=(),
        tower_dims=(8,), embedding_dim=4, dropout=0.1,
    )  # fmt: skip


def _config(**changes: object) -> TrainerConfig:
    options = {
        "batch_size": 256, "max_epochs": 2, "max_steps": 30, "eval_every": 10, "patience": 5,
        "checkpoint_every": 7, "progress": False, "device": "cpu",
    }  # fmt: skip
    options.update(changes)
    return TrainerConfig(**options)  # type: ignore[arg-type]


def test_nmt_on_a_streamed_table_learns_what_it_learns_in_memory(
    census_csv: Path, tmp_path: Path
) -> None:
    lines = census_csv.read_text().splitlines(keepends=True)
    files = {}
    for name, rows in (("train", (1, 9601)), ("valid", (9601, 10801)), ("test", (10801, None))):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(lines[0] + "".join(lines[rows[0] : rows[1]]))
    columns = table_columns(census_schema())
    results = []
    for streaming in (False, STREAM):
        data = load_table(**files, **columns, streaming=streaming)  # type: ignore[arg-type]
        config = _config(max_steps=None, max_epochs=3, eval_every=20)
        results.append(Trainer(_model(data), nt.NMT(["income", "married"]), data, config).fit())
    memory, streamed = results
    assert [s.tasks for s in streamed.stages] == [["income", "married"], ["income"], ["married"]]
    for task in ("income", "married"):  # the same rows, the same vocabularies: the same learning
        assert streamed.test[task]["auc"] > 0.8
        assert abs(streamed.test[task]["auc"] - memory.test[task]["auc"]) < 0.02


def test_a_killed_streamed_run_resumes_to_the_same_result(
    streamed: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nmt = lambda: nt.NMT(["income", "married"])  # noqa: E731
    full = Trainer(_model(streamed), nmt(), streamed, _config(), run_dir=tmp_path / "full").fit()

    step = Trainer._train_step

    def killed(self: Trainer, batch: object, bar: object) -> None:
        if self.state.global_step == 45:  # stage 2, inside a later window of the epoch
            raise KeyboardInterrupt
        step(self, batch, bar)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "_train_step", killed)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_model(streamed), nmt(), streamed, _config(), run_dir=tmp_path / "killed").fit()
    monkeypatch.undo()
    torch.manual_seed(1234)
    resumed = Trainer(
        _model(streamed, seed=99), nmt(), streamed, _config(), run_dir=tmp_path / "killed"
    ).fit(resume=True)
    assert resumed.steps == full.steps
    assert resumed.test == full.test
    for log in ("history.csv", "evaluations.csv"):
        assert (tmp_path / "full" / log).read_text() == (tmp_path / "killed" / log).read_text()


def test_a_malformed_row_mid_stream_stops_with_one_line_and_keeps_the_checkpoint(
    census_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hashed ids, no dense column and a split by position: nothing to fit, so the stream is
    # read by the training steps themselves; the file goes bad after the first checkpoint.
    log = tmp_path / "log.csv"
    log.write_text(census_csv.read_text())
    data = load_table(
        log, sparse=CENSUS_SPARSE, labels=["income", "married"], hash_buckets=512, streaming=STREAM
    )
    lines = log.read_text().splitlines(keepends=True)
    column = lines[0].rstrip("\n").split(",").index("income")
    row = 11_000
    fields = lines[row].rstrip("\n").split(",")
    fields[column] = "x"  # the same length as the 0 or 1 it replaces: the pieces stay valid
    lines[row] = ",".join(fields) + "\n"
    save = Trainer._save_last

    def save_then_corrupt(self: Trainer) -> None:
        save(self)
        log.write_text("".join(lines))  # from the first checkpoint on, the file is bad

    monkeypatch.setattr(Trainer, "_save_last", save_then_corrupt)
    run = tmp_path / "run"
    trainer = Trainer(
        _model(data), nt.EqualWeights(["income", "married"]), data,
        _config(max_steps=None, max_epochs=3, eval_every=5), run_dir=run,
    )  # fmt: skip
    with pytest.raises(DataError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "\n" not in message
    assert str(log) in message and f"'x' at data row {row}" in message
    saved = torch.load(run / "last.pt", weights_only=False)
    assert 0 < saved["trainer"]["position"]["global_step"] <= trainer.state.global_step
    assert trainer.state.global_step < 3 * 38  # it stopped before the end
