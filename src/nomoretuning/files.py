"""What result files are made of. Atomic writes: a temporary file beside the target, renamed
over it once complete, created with the permissions any new file of this process gets (``0o666``
less the umask, applied by the operating system), not the owner-only ``0o600`` of
`tempfile.mkstemp`, so that results are as readable as the folder they land in. JSON: standard
JSON, an undefined metric (NaN) as null."""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["json_text", "temporary_beside"]


def json_text(value: Any, indent: int | None = 2) -> str:
    """``value`` as standard JSON: NaN and the infinities (an undefined metric) become null,
    which every JSON parser reads (Python's ``NaN`` is not JSON).

    Example:
        >>> json_text({"auc": float("nan"), "loss": [0.5, float("inf")]}, indent=None)
        '{"auc": null, "loss": [0.5, null]}'
    """
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def temporary_beside(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new hidden file next to ``target`` (its folder is created), open for writing: its file
    descriptor and path. Rename it over ``target`` when complete (``os.replace``). It is
    created with mode ``0o666``, which the operating system narrows by the process's umask, as
    for any new file.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> fd, tmp = temporary_beside(folder / "metrics.json")
        >>> os.close(fd)
        >>> (folder / "plain.json").touch()  # a file made the ordinary way
        >>> tmp.name.startswith(".metrics.json."), tmp.stat().st_mode == (
        ...     folder / "plain.json").stat().st_mode
        (True, True)
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:  # a name taken: draw another
            continue
