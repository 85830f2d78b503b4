"""Output directories: never overwritten unless asked; files written by the main process only."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomoretuning.cli import outputs
from nomoretuning.errors import ConfigError


def test_an_existing_output_needs_overwrite_or_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outputs.prepare_output(out, overwrite=False)
    (out / "results.json").write_text("[]")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        outputs.prepare_output(out, overwrite=False)
    outputs.prepare_output(out, overwrite=False, resume=True)
    assert (out / "results.json").exists()
    outputs.prepare_output(out, overwrite=True)
    assert list(out.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        outputs.prepare_output(tmp_path / "file", overwrite=True)


def test_only_the_main_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs.parallel, "is_main_process", lambda: False)
    assert not outputs.is_main_process()
    outputs.write_json_on_main(tmp_path / "results.json", [])
    outputs.write_text_on_main(tmp_path / "results.md", "")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_removes_only_what_an_earlier_output_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = out / "mmoe" / "nmt" / "seed0"
    (run / "plots").mkdir(parents=True)
    (run / "tensorboard").mkdir()
    ours = ["results.json", "results.md", "mmoe/nmt/seed0/metrics.json", "mmoe/nmt/seed0/last.pt"]
    ours += ["mmoe/nmt/seed0/config.yaml", "mmoe/nmt/seed0/plots/training.png"]
    ours += ["mmoe/nmt/seed0/tensorboard/events.out.tfevents.1.host"]
    theirs = ["train.parquet", "notes/thesis.txt", "mmoe/nmt/seed0/scores.csv"]
    # files named as ours, in folders that are no run: theirs too
    theirs += ["notes/results.json", "sub/deploy/config.yaml", "sub/model.json"]
    for name in [*ours, *theirs]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    outputs.prepare_output(out, overwrite=True)
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == sorted(theirs)
    assert not (run / "plots").exists() and not (run / "tensorboard").exists()
