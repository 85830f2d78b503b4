"""Atomic checkpoint files, loaded with ``weights_only=True``, and a run's resumable pair
``last.pt`` / ``previous.pt``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from nomoretuning.files import temporary_beside
from nomoretuning.training.errors import TrainingError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointFiles",
    "atomic_write_text",
    "load_checkpoint",
    "raise_interrupt",
    "run_fingerprint",
    "save_checkpoint",
]


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> None:
    """Writes ``obj`` with ``torch.save`` to a temporary file, then renames it over ``path``.

    A crash mid-write leaves the previous file intact.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "last.pt"
        >>> save_checkpoint({"step": 3}, target)
        >>> load_checkpoint(target)["step"]
        3
    """
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise_interrupt(error)
        raise


def raise_interrupt(error: BaseException) -> None:
    """Raises `KeyboardInterrupt` where ``error`` is what an interrupt became inside a writer
    (``torch.save`` turns a Ctrl-C mid-write into a `RuntimeError` raised while handling it), so
    that an interrupted save reads as an interrupt.

    Example:
        >>> try:
        ...     try:
        ...         raise KeyboardInterrupt
        ...     except KeyboardInterrupt:
        ...         raise RuntimeError("unexpected pos")
        ... except RuntimeError as error:
        ...     try:
        ...         raise_interrupt(error)
        ...     except KeyboardInterrupt:
        ...         print("an interrupt")
        an interrupt
    """
    if not isinstance(error, KeyboardInterrupt) and isinstance(
        error.__context__, KeyboardInterrupt
    ):
        raise KeyboardInterrupt from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint`` (tensors and plain Python values only)."""
    loaded = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a nomoretuning checkpoint (expected a dict)")
    return loaded


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes text to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        raise_interrupt(error)
        raise


CHECKPOINT_FORMAT = 2
"""Version of the ``last.pt`` layout; a file of another version is refused with a clear message."""


def run_fingerprint(
    model: torch.nn.Module,
    combiner: torch.nn.Module,
    tasks: Sequence[str],
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What identifies the run a checkpoint belongs to: its tasks, combiner and parameter shapes,
    and the trainer ``settings`` it must keep (`TrainerConfig.resumable`).

    Example:
        >>> import nomoretuning as nt
        >>> fingerprint = run_fingerprint(torch.nn.Linear(2, 1), nt.EqualWeights(["a"]), ["a"])
        >>> fingerprint["combiner"], fingerprint["parameters"]["weight"]
        ('EqualWeights', [1, 2])
    """
    return {
        "tasks": list(tasks),
        "combiner": type(combiner).__name__,
        "parameters": {name: list(p.shape) for name, p in model.state_dict().items()},
        "settings": dict(settings or {}),
    }


class CheckpointFiles:
    """A run directory's resumable checkpoints: ``last.pt`` and the one before it,
    ``previous.pt``, kept so that a damaged ``last.pt`` never costs the run.

    ``save`` writes the new checkpoint to a temporary file, moves the current ``last.pt`` to
    ``previous.pt``, then renames the new file to ``last.pt``. ``load`` refuses, with one line
    naming the file and what to do, a file that cannot be read, one of another format, and one
    written by another run (other tasks, combiner or model); it never deletes anything.

    Example:
        >>> import tempfile, pathlib
        >>> files = CheckpointFiles(pathlib.Path(tempfile.mkdtemp()), {"tasks": ["a"]})
        >>> files.save({"step": 1}); files.save({"step": 2})
        >>> files.load("last")["step"], files.load("previous")["step"]
        (2, 1)
    """

    NAMES: ClassVar[dict[str, str]] = {"last": "last.pt", "previous": "previous.pt"}

    def __init__(self, directory: Path, fingerprint: Mapping[str, Any]) -> None:
        self.directory = directory
        self.fingerprint = dict(fingerprint)
        self.sequence = 0
        """How many checkpoints this run has saved (continued from a loaded one): each file
        records its number, so that the newest of two files is known without timestamps."""

    def path(self, which: str = "last") -> Path:
        return self.directory / self.NAMES[which]

    def exists(self, which: str = "last") -> bool:
        return self.path(which).exists()

    def save(self, state: Mapping[str, Any]) -> None:
        sequence = self.sequence + 1
        record = {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": self.fingerprint,
            "sequence": sequence,
            **state,
        }
        last, previous = self.path("last"), self.path("previous")
        fd, tmp = temporary_beside(last)
        written = False
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(record, handle)
                handle.flush()
                os.fsync(handle.fileno())
            written = True
            if last.exists():
                os.replace(last, previous)
            os.replace(tmp, last)
        except BaseException as error:
            if written and not last.exists():  # interrupted between the renames: finish them
                os.replace(tmp, last)
            Path(tmp).unlink(missing_ok=True)
            raise_interrupt(error)
            raise
        self.sequence = sequence

    def fallback(self, which: str) -> str:
        """What to do when the checkpoint ``which`` cannot serve: resume from ``previous.pt``
        where ``last.pt`` fails and it exists, else start over."""
        if which == "last" and self.exists("previous"):
            return (
                "resume from the previous one with --resume previous, or start over with "
                "--overwrite"
            )
        return "start over with --overwrite"

    def finish_interrupted_save(self) -> bool:
        """Renames a complete new checkpoint to ``last.pt`` where a process killed between
        ``save``'s two renames left it under its temporary name (``last.pt`` moved away,
        ``previous.pt`` present): the temporary file that loads and was saved right after
        ``previous.pt`` (its ``sequence`` the next one). Any other (a file cut short, or left by
        an earlier failed save) is left as it is."""
        last = self.path("last")
        if last.exists() or not self.exists("previous"):
            return False
        previous = _readable(self.path("previous"))
        if previous is None or "sequence" not in previous:
            return False
        for candidate in self.directory.glob(f".{last.name}.*.tmp"):
            state = _readable(candidate)
            if state is not None and state.get("sequence") == previous["sequence"] + 1:
                os.replace(candidate, last)
                return True
        return False

    def load(self, which: str = "last", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint ``which`` (``"last"`` or ``"previous"``), checked against this run;
        ``"last"`` first finishes a save a killed process left between its renames."""
        path = self.path(which)
        if which == "last":
            self.finish_interrupted_save()
        fallback = self.fallback(which)
        if not path.exists():
            raise TrainingError(f"{path}: no checkpoint to resume from; {fallback}")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            raise TrainingError(
                f"{path} is not a readable checkpoint ({reason}); {fallback}"
            ) from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            found = state.get("format", "none") if isinstance(state, dict) else type(state).__name__
            raise TrainingError(
                f"{path} is not a nomoretuning checkpoint of format {CHECKPOINT_FORMAT} "
                f"(found {found}); {fallback}"
            )
        written = state.get("fingerprint", {})
        saved = written.get("settings", {})  # none in a checkpoint of 0.1: nothing to compare
        for name, value in self.fingerprint.get("settings", {}).items():
            if name in saved and saved[name] != value:
                raise TrainingError(
                    f"{path} was written with the trainer setting {name}={saved[name]!r}, this "
                    f"run has {value!r}; resume with the run's settings, or start over with "
                    "--overwrite"
                )
        for key, value in self.fingerprint.items():
            if key != "settings" and written.get(key) != value:
                raise TrainingError(
                    f"{path} was written by another run (its {key} differ from this run's); "
                    f"resume the run that wrote it, or start over with --overwrite"
                )
        self.sequence = int(state.get("sequence", 0))  # the saves that follow continue it
        return state


def _readable(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None where it does not load as one (a file cut short)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        return state
    return None
