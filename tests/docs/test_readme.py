"""The README's code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_training_loop_example_runs_as_written(capsys: object) -> None:
    blocks = [b for b in _python_blocks() if "nt.NMT(" in b and "nmt.step(losses)" in b]
    assert blocks, "README lost its training-loop example"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    nmt = namespace["nmt"]
    assert nmt.finished  # type: ignore[attr-defined]
    assert set(nmt.bounds) == {"like", "finish"}  # type: ignore[attr-defined]


def test_the_readme_names_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
