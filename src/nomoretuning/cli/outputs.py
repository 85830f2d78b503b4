"""The output directory of a command: created once, never overwritten unless asked, and written by
the main process only (under torchrun every rank runs the protocols in step; rank 0 writes).

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> prepare_output(out, overwrite=False)
    >>> write_json_on_main(out / "results.json", [{"seed": 0}])
    >>> json.loads((out / "results.json").read_text())
    [{'seed': 0}]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nomoretuning.errors import ConfigError
from nomoretuning.files import json_text
from nomoretuning.serving.run_files import MODEL_FILE, PREPROCESSING_FILE
from nomoretuning.training import distributed as parallel
from nomoretuning.training.checkpoint import atomic_write_text
from nomoretuning.training.logs import RUN_FILES
from nomoretuning.training.trainer import Resume

__all__ = [
    "Progress",
    "is_main_process",
    "prepare_output",
    "remove_earlier_output",
    "say",
    "write_json_on_main",
    "write_text_on_main",
]

Progress = Callable[[str], None]
"""Where a protocol reports each finished run (one line)."""


def say(message: str) -> None:
    """Prints a progress line at once (runs take minutes; the line should not wait in a buffer)."""
    print(message, flush=True)


def is_main_process() -> bool:
    """True in the process that writes outputs and prints (rank 0, or the only process)."""
    return parallel.is_main_process()


def prepare_output(path: Path, overwrite: bool, resume: Resume = False) -> None:
    """Refuses to touch an existing, non-empty directory unless asked (rank 0 decides).

    Raises:
        ConfigError: ``path`` is a file, or a non-empty directory without ``overwrite`` or
            ``resume`` (on every rank).
    """
    parallel.run_on_main(lambda: _prepare_output(path, overwrite, resume), ConfigError)


def _prepare_output(path: Path, overwrite: bool, resume: Resume) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output {path} exists and is not a directory")
    if path.exists() and any(path.iterdir()) and not (overwrite or resume):
        raise ConfigError(
            f"output {path} already exists and is not empty; pick another output, "
            f"pass --overwrite, or --resume to finish it"
        )
    if path.exists() and overwrite and not resume:
        remove_earlier_output(path)
    path.mkdir(parents=True, exist_ok=True)


RESULT_FILES = frozenset({"results.json", "results.md", "grid.json", "grid.md", "tradeoff.png"})
"""The files a protocol (compare, grid) writes at the top of its output."""

RUN_MARKERS = frozenset({"history.csv", "evaluations.csv", "last.pt", "previous.pt", "best.pt"})
"""Files only a run writes: a folder holding one is a run directory."""

OUTPUT_FILES = frozenset({*RUN_FILES, MODEL_FILE, PREPROCESSING_FILE, "config.yaml", *RESULT_FILES})
"""The files a command writes into its output and the run directories under it."""

PLOT_FILES = frozenset({"training.png", "validation.png"})
"""The files of a run's ``plots`` folder."""


def remove_earlier_output(path: Path) -> list[Path]:
    """What ``--overwrite`` removes: the `RESULT_FILES` at the top of ``path``, and in every run
    directory under it (a folder holding one of `RUN_MARKERS`, ``path`` itself included) the
    `OUTPUT_FILES`, its plots and TensorBoard events; then the folders that leaves empty on the
    way to them. Nothing else: a file of the same name in a folder that is no run stays, as do
    data and notes. Returns the removed files.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> for name in ("mmoe/seed0/history.csv", "mmoe/seed0/plots/training.png",
        ...              "results.json", "notes/config.yaml"):
        ...     (out / name).parent.mkdir(parents=True, exist_ok=True)
        ...     _ = (out / name).write_text("")
        >>> sorted(str(p.relative_to(out)) for p in remove_earlier_output(out))
        ['mmoe/seed0/history.csv', 'mmoe/seed0/plots/training.png', 'results.json']
        >>> sorted(str(p.relative_to(out)) for p in out.rglob("*"))
        ['notes', 'notes/config.yaml']
    """
    removed = [path / name for name in sorted(RESULT_FILES) if (path / name).is_file()]
    runs = [d for d in (path, *path.rglob("*")) if d.is_dir() and _is_run(d)]
    for run in runs:
        removed += [run / name for name in sorted(OUTPUT_FILES) if (run / name).is_file()]
        removed += [run / "plots" / name for name in sorted(PLOT_FILES)]
        board = run / "tensorboard"
        removed += sorted(board.glob("events.out.tfevents.*")) if board.is_dir() else []
    removed = [file for file in dict.fromkeys(removed) if file.is_file()]
    for file in removed:
        file.unlink()
    for run in runs:  # the folders emptied, from the deepest up to the output
        for folder in (run / "plots", run / "tensorboard", run, *run.parents):
            if folder == path or path not in folder.parents:
                break
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return removed


def _is_run(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RUN_MARKERS)


def write_text_on_main(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` atomically, in the main process only."""
    if is_main_process():
        atomic_write_text(path, text)


def write_json_on_main(path: Path, value: object) -> None:
    """Writes ``value`` as indented JSON (an undefined metric as null), in the main process
    only."""
    write_text_on_main(path, json_text(value))
