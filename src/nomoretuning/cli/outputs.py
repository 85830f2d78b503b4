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

import os
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


OUTPUT_FILES = frozenset(
    {
        *RUN_FILES,
        MODEL_FILE,
        PREPROCESSING_FILE,
        "config.yaml",
        "results.json",
        "results.md",
        "grid.json",
        "grid.md",
        "training.png",
        "validation.png",
        "tradeoff.png",
    }
)
"""The files a command writes into its output (and into the run directories under it)."""


def remove_earlier_output(path: Path) -> list[Path]:
    """What ``--overwrite`` removes: the `OUTPUT_FILES` and TensorBoard event files under
    ``path``, and the folders that leaves empty; nothing else (a data file, a note, a folder of
    something else all stay). Returns the removed files.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> (out / "seed0" / "plots").mkdir(parents=True)
        >>> for name in ("seed0/metrics.json", "seed0/plots/training.png", "notes.txt"):
        ...     _ = (out / name).write_text("")
        >>> [p.name for p in remove_earlier_output(out)], sorted(p.name for p in out.iterdir())
        (['training.png', 'metrics.json'], ['notes.txt'])
    """
    removed: list[Path] = []
    for folder, _, files in os.walk(path, topdown=False):
        here = Path(folder)
        for name in sorted(files):
            if name in OUTPUT_FILES or name.startswith("events.out.tfevents."):
                (here / name).unlink()
                removed.append(here / name)
        if here != path and not any(here.iterdir()):
            here.rmdir()
    return removed


def write_text_on_main(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` atomically, in the main process only."""
    if is_main_process():
        atomic_write_text(path, text)


def write_json_on_main(path: Path, value: object) -> None:
    """Writes ``value`` as indented JSON (an undefined metric as null), in the main process
    only."""
    write_text_on_main(path, json_text(value))
