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
