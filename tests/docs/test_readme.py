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


def test_the_stage_selection_example_runs_as_written() -> None:
    """The early-stopping block, with the loop's `validate` and `train_one_epoch` given."""
    loop = next(b for b in _python_blocks() if "nt.NMT(" in b and "nmt.step(losses)" in b)
    block = next(b for b in _python_blocks() if "nt.StageSelection(" in b)
    namespace: dict[str, object] = {}
    exec(compile(loop, str(README), "exec"), namespace)
    helpers = """
nmt = nt.NMT(["like", "finish"])

def _losses(model):
    out = model(x)
    return {"like": bce(out[:, 0], y[:, 0]), "finish": bce(out[:, 1], y[:, 1])}

def validate(model):
    with torch.no_grad():
        return {task: -float(loss) for task, loss in _losses(model).items()}

def train_one_epoch():
    for step in range(20):
        losses = _losses(model)
        loss = nmt(losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        nmt.step(losses)
"""
    exec(helpers, namespace)
    exec(compile(block, str(README), "exec"), namespace)
    nmt, selection = namespace["nmt"], namespace["selection"]
    assert nmt.finished  # type: ignore[attr-defined]
    assert set(selection.floors) == {"like", "finish"}  # type: ignore[attr-defined]
