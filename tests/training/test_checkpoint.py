"""Checkpoints: the previous good one is kept; corrupt, foreign or old files are refused in one
line naming the file and what to do, and nothing is deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from trainer_helpers import toy_config, toy_model

import nomoretuning as nt
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.training.checkpoint import CheckpointFiles
from nomoretuning.training.trainer import Trainer, TrainingError


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_saving_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    for step in range(3):
        files.save({"step": step})
    assert files.load("last")["step"] == 2
    assert files.load("previous")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]


def test_an_interrupt_between_the_renames_still_leaves_a_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    files.save({"step": 1})
    real = os.replace
    calls = []

    def interrupted(source: object, target: object) -> None:
        real(source, target)  # type: ignore[arg-type]
        calls.append(target)
        if len(calls) == 1:  # last.pt has just become previous.pt
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.save({"step": 2})
    monkeypatch.setattr(os, "replace", real)
    assert files.load("last")["step"] == 2 and files.load("previous")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]


def test_a_kill_between_the_renames_is_finished_when_the_run_resumes(tmp_path: Path) -> None:
    """SIGKILL runs no handler: ``last.pt`` is gone, the new one under its temporary name."""
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    files.save({"step": 1})
    files.save({"step": 2})
    os.replace(tmp_path / "last.pt", tmp_path / ".last.pt.0a1b2c3d.tmp")  # the new one
    os.replace(tmp_path / "previous.pt", tmp_path / "last.pt")
    os.replace(tmp_path / "last.pt", tmp_path / "previous.pt")  # the old last.pt moved away
    (tmp_path / ".last.pt.ffffffff.tmp").write_bytes(b"PK\x03\x04 cut")  # an older, half write
    assert files.load("last")["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".last.pt.ffffffff.tmp",
        "last.pt",
        "previous.pt",
    ]


def test_each_checkpoint_records_its_number_and_a_loaded_one_continues_the_count(
    tmp_path: Path,
) -> None:
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    for step in range(3):
        files.save({"step": step})
    resumed = CheckpointFiles(tmp_path, {"tasks": ["a"]})  # a new process
    assert resumed.load("previous")["sequence"] == 2 and resumed.sequence == 2
    resumed.save({"step": 2})
    assert resumed.load("last")["sequence"] == 3


def test_a_temporary_file_older_than_the_previous_checkpoint_is_not_promoted(
    tmp_path: Path,
) -> None:
    """A complete file left by a save killed before its renames is stale once later saves
    succeed: taking it for the newest would later push the real previous.pt out."""
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    files.save({"step": 2})
    os.replace(tmp_path / "last.pt", tmp_path / ".last.pt.0a1b2c3d.tmp")  # step 2, left behind
    old = time.time() - 60
    os.utime(tmp_path / ".last.pt.0a1b2c3d.tmp", (old, old))
    files.save({"step": 3})
    files.save({"step": 4})
    (tmp_path / "last.pt").unlink()  # lost
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        files.load("last")
    assert files.load("previous")["step"] == 3


def test_an_interrupt_inside_torch_save_is_an_interrupt_and_keeps_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = CheckpointFiles(tmp_path, {"tasks": ["a"]})
    files.save({"step": 1})

    def interrupted_save(obj: object, handle: object) -> None:
        try:  # what torch.save does when Ctrl-C lands mid-write
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        files.save({"step": 2})
    monkeypatch.undo()
    assert files.load("last")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_foreign_or_old_file_is_refused(tmp_path: Path) -> None:
    CheckpointFiles(tmp_path, {"tasks": ["a"]}).save({"step": 1})
    with pytest.raises(TrainingError, match=r"last\.pt was written by another run \(its tasks"):
        CheckpointFiles(tmp_path, {"tasks": ["b"]}).load()
    torch.save({"model": {}}, tmp_path / "last.pt")  # a 0.1 checkpoint: no format
    with pytest.raises(TrainingError, match=r"not a nomoretuning checkpoint of format 2 \(found"):
        CheckpointFiles(tmp_path, {"tasks": ["a"]}).load()


def _trainer(dataset: PreparedDataset, run: Path, seed: int = 0) -> Trainer:
    return Trainer(
        toy_model(dataset, seed=seed), nt.NMT(["like", "finish"]), dataset, toy_config(), run
    )


def _interrupt(dataset: PreparedDataset, run: Path, at_step: int = 14) -> None:
    """A run killed at ``at_step`` (after several checkpoints)."""
    killed = _trainer(dataset, run)
    step = killed._train_step

    def dying(batch: object, bar: object) -> None:
        if killed.state.global_step == at_step:
            raise KeyboardInterrupt
        step(batch, bar)  # type: ignore[arg-type]

    killed._train_step = dying  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        killed.fit()


def test_a_corrupt_last_checkpoint_names_the_file_and_the_previous_one_resumes(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    full = _trainer(dataset, tmp_path / "full").fit()
    run = tmp_path / "run"
    _interrupt(dataset, run)
    last = run / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # truncated by a full disk
    before = _files(run)
    with pytest.raises(TrainingError) as error:
        _trainer(dataset, run, seed=5).fit(resume=True)
    message = str(error.value)
    assert "\n" not in message
    assert str(last) in message and "is not a readable checkpoint" in message
    assert "--resume previous" in message and "--overwrite" in message
    assert _files(run) == before  # nothing deleted, nothing truncated

    result = _trainer(dataset, run, seed=7).fit(resume="previous")
    assert result.test == full.test
    for log in ("history.csv", "evaluations.csv"):
        assert (run / log).read_text() == (tmp_path / "full" / log).read_text()


def test_resuming_with_another_setup_is_refused(dataset: PreparedDataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _interrupt(dataset, run)
    before = _files(run)
    other = Trainer(toy_model(dataset), nt.NMT(["finish", "like"]), dataset, toy_config(), run)
    with pytest.raises(TrainingError, match="written by another run"):
        other.fit(resume=True)
    assert _files(run) == before
    # the same run at another batch size is another run; on another device it is the same
    nmt = nt.NMT(["like", "finish"])
    larger = Trainer(toy_model(dataset), nmt, dataset, toy_config(batch_size=200), run)
    with pytest.raises(TrainingError, match="trainer setting batch_size=64, this run has 200"):
        larger.fit(resume=True)
    assert _files(run) == before
    elsewhere = toy_config(device="cpu", eval_batch_size=7, progress=True)
    Trainer(toy_model(dataset), nt.NMT(["like", "finish"]), dataset, elsewhere, run).fit(
        resume=True
    )
