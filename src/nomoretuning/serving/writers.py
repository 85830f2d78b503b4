"""Writing scores as they are computed: a CSV or Parquet file, chosen by its extension, written
piece by piece to a temporary file that replaces the target only when everything was written.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "scores.csv"
    >>> with TableWriter(out) as writer:
    ...     writer.write(pd.DataFrame({"click": [0.25, 0.5]}))
    ...     writer.write(pd.DataFrame({"click": [0.75]}))
    >>> out.read_text().split()
    ['"click"', '0.25', '0.5', '0.75']
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from nomoretuning.errors import DataError
from nomoretuning.files import temporary_beside

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OUTPUT_SUFFIXES", "TableWriter", "output_format"]

OutputFormat = Literal["csv", "parquet"]
OUTPUT_SUFFIXES: dict[str, OutputFormat] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""The output file extensions and their formats."""


def output_format(path: str | os.PathLike[str]) -> OutputFormat:
    """The format of an output file from its extension.

    Raises:
        DataError: another extension.

    Example:
        >>> output_format("scores.parquet")
        'parquet'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise DataError(
            f"{path}: unknown output format {suffix or '(no extension)'!r}; name the file "
            f"with one of {', '.join(OUTPUT_SUFFIXES)}"
        )
    return OUTPUT_SUFFIXES[suffix]


class TableWriter:
    """Appends frames (same columns each time) to ``path``; the file appears on a clean exit only.

    An exception inside the ``with`` block deletes the temporary file and leaves an existing
    ``path`` untouched.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        self._writer: Any = None
        self._tmp: Path | None = None

    def __enter__(self) -> TableWriter:
        fd, self._tmp = temporary_beside(self.path)
        os.close(fd)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Appends the rows of ``frame``."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            assert self._tmp is not None, "use TableWriter in a with block"
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self._tmp, table.schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self._tmp, table.schema)
        self._writer.write_table(table)
        del table
        # mimalloc (pyarrow's default pool) keeps freed pages; hand them back after every piece,
        # or a long Parquet output creeps up by about 1 MB a piece.
        pa.default_memory_pool().release_unused()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tmp = self._tmp
        assert tmp is not None
        try:
            if self._writer is not None:
                self._writer.close()
            if kind is None:
                if self._writer is None:
                    raise DataError(f"{self.path}: nothing to write (the input had no rows)")
                os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
