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

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from nomoretuning.errors import ConfigError
from nomoretuning.training import distributed as parallel
from nomoretuning.training.checkpoint import atomic_write_text
from nomoretuning.training.trainer import Resume

__all__ = [
    "Progress",
    "is_main_process",
    "prepare_output",
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
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def write_text_on_main(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` atomically, in the main process only."""
    if is_main_process():
        atomic_write_text(path, text)


def write_json_on_main(path: Path, value: object) -> None:
    """Writes ``value`` as indented JSON, in the main process only."""
    write_text_on_main(path, json.dumps(value, indent=2))
