"""Per-step and per-evaluation logs as append-only CSV files."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["CsvLog"]


class CsvLog:
    """An append-only CSV file with a fixed set of columns.

    ``truncate(n)`` keeps the first ``n`` rows: resume uses it to forget the steps taken after the
    checkpoint it restarts from. Values are written as given; missing keys stay empty.

    Example:
        >>> import tempfile, pathlib
        >>> log = CsvLog(pathlib.Path(tempfile.mkdtemp()) / "h.csv", ["step", "loss"])
        >>> log.append({"step": 1, "loss": 0.5}); log.append({"step": 2})
        >>> log.close(); log.path.read_text().splitlines()
        ['step,loss', '1,0.5', '2,']
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.rows = 0
        self._handle: IO[str] | None = None
        self._writer: Any = None

    def _open(self) -> None:
        new = not self.path.exists()
        self._handle = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(
            self._handle, fieldnames=self.columns, restval="", extrasaction="ignore"
        )
        if new:
            self._writer.writeheader()

    def append(self, row: Mapping[str, Any]) -> None:
        if self._handle is None:
            self._open()
        self._writer.writerow({k: _format(v) for k, v in row.items()})
        self.rows += 1

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def truncate(self, n: int) -> None:
        """Keeps the header and the first ``n`` rows of the file (used on resume)."""
        self.close()
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as handle:
                lines = handle.readlines()
            header, body = lines[:1], lines[1:]
            if header and header[0].rstrip("\r\n").split(",") != self.columns:
                raise ValueError(f"{self.path}: columns differ from this run's; cannot resume")
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text("".join(header + body[:n]), encoding="utf-8")
            tmp.replace(self.path)
            self.rows = min(n, len(body))
        else:
            self.rows = 0


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.8g}"
    return value
