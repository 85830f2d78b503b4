"""Atomic checkpoint files, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_write_text", "load_checkpoint", "save_checkpoint"]


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint`` (tensors and plain Python values only)."""
    loaded = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: not a nomoretuning checkpoint (expected a dict)")
    return loaded


def atomic_write_text(path: str | Path, text: str) -> None:
    """Writes text to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
