"""Tables read in pieces with pyarrow: one file or a folder of files, CSV/TSV or Parquet.

`table_files` lists the files of a path (a file, or every table file of a folder in name order).
`TableFile` reads one file without pandas:

- `TableFile.chunks`: the file in order, a record batch at a time (compressed CSV too), with the
  file's row number of each batch's first row. Memory stays at a few blocks of the file.
- `TableFile.pieces` / `TableFile.read_piece`: random access for streaming. An uncompressed CSV
  file is cut at line breaks into pieces of ``piece_rows`` lines (one scan of the bytes finds the
  offsets); a Parquet file's pieces are its row groups.

A CSV file's columns are read as text (``string``, the values verbatim, the missing-value
spellings of pandas as null: `NA_VALUES`); a Parquet file's keep their types, its `ColumnTypes`
numeric columns cast to ``float64``. Numbers in text are converted by
`nomoretuning.data.columnar`, whose errors name the row. Parse errors raise
`nomoretuning.errors.DataError` naming the file and the data rows of the piece.

Example:
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("uid,click\\n" + "".join(f"u{i},{i % 2}\\n" for i in range(5)))
    >>> f = TableFile.open(p)
    >>> f.names, [(start, t.num_rows) for start, t in f.chunks(ColumnTypes(("uid",), ("click",)))]
    (('uid', 'click'), [(0, 5)])
    >>> pieces = f.pieces(piece_rows=2)
    >>> [(q.start, q.rows) for q in pieces]
    [(0, 2), (2, 2), (4, 1)]
    >>> f.read_piece(pieces[2], ColumnTypes(("uid",), ())).column("uid").to_pylist()
    ['u4']
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.checks import optional_path
from nomoretuning.data.readers import COMPRESSION_SUFFIXES, detect_format
from nomoretuning.data.schema import missing_column
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["NA_VALUES", "ColumnTypes", "Piece", "TableFile", "release_memory", "table_files"]

NA_VALUES: tuple[str, ...] = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
"""The text pandas reads as missing by default (``keep_default_na``), read as null here too."""

BLOCK_BYTES = 1 << 20
"""pyarrow's CSV block size: larger blocks read no faster and keep more memory in flight."""

_SCAN_BYTES = 16 << 20


@dataclass(frozen=True)
class ColumnTypes:
    """The columns to read: ``text`` (ids, kept verbatim) and ``numeric`` (dense values, labels)."""

    text: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.text, *self.numeric)))


@dataclass(frozen=True)
class Piece:
    """Rows ``start .. start + rows - 1`` (data rows, from 0) of ``file``.

    ``offset`` and ``end`` are byte offsets of a CSV piece; ``row_group`` the Parquet row group.
    """

    file: int
    start: int
    rows: int
    offset: int = 0
    end: int = 0
    row_group: int = -1


def table_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The table files of ``path``: the file itself, every table file of a folder (sorted by
    name, hidden files skipped), or each path of a list in turn.

    Raises:
        DataError: a missing path, or a folder without table files.
    """
    _require_pyarrow()
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in table_files(p)]
    optional_path(path, "path", error=DataError)
    root = Path(path)  # type: ignore[arg-type]
    if root.is_dir():
        files = []
        for child in sorted(root.iterdir()):
            if child.name.startswith((".", "_")) or not child.is_file():
                continue
            try:
                detect_format(child)
            except DataError:
                continue
            files.append(child)
        if not files:
            raise DataError(
                f"{root}: no table files in this folder; put .csv, .tsv, .txt or .parquet files "
                "in it (hidden files and names starting with _ are skipped)"
            )
        return files
    if not root.is_file():
        raise DataError(f"{root}: file not found; check the path")
    return [root]


@dataclass(frozen=True)
class TableFile:
    """One CSV/TSV or Parquet file read with pyarrow (see the module docstring).

    Build it with `TableFile.open`. ``names`` are the file's columns, in file order.
    """

    path: Path
    format: str
    names: tuple[str, ...]
    sep: str = ","
    header: bool = True

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        sep: str | None = None,
        header: bool = True,
        names: Sequence[str] | None = None,
    ) -> TableFile:
        """The file at ``path``; its format and default separator come from its name.

        A text file without a header needs ``names`` (``header=False``).
        """
        _require_pyarrow()
        file = Path(path)
        if not file.is_file():
            raise DataError(f"{file}: file not found; check the path")
        if file.stat().st_size == 0:
            raise DataError(f"{file}: file is empty; point to a file with a header and data rows")
        format, default_sep = detect_format(file)
        if format == "parquet":
            import pyarrow.parquet as pq

            try:
                schema = pq.read_schema(file)
            except (OSError, ValueError) as error:
                raise _unreadable(file, "parquet", error) from None
            return cls(file, "parquet", tuple(schema.names))
        separator = sep or default_sep or ","
        if not header:
            if names is None:
                raise ValueError("TableFile.open: a file without a header needs names")
            return cls(file, "csv", tuple(names), separator, False)
        import pyarrow.csv as pacsv

        try:
            with pacsv.open_csv(
                file,
                read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=separator),
                convert_options=pacsv.ConvertOptions(include_columns=[]),
            ) as reader:
                found = tuple(reader.schema.names)
        except (OSError, ValueError) as error:  # ArrowInvalid is a ValueError
            raise _unreadable(file, "csv", error) from None
        return cls(file, "csv", found, separator, True)

    @property
    def compressed(self) -> bool:
        return self.path.name.lower().endswith(COMPRESSION_SUFFIXES)

    def check_columns(self, wanted: Sequence[str]) -> None:
        """Raises the `missing_column` error for the first of ``wanted`` the file lacks."""
        for name in wanted:
            if name not in self.names:
                raise missing_column(str(self.path), name, self.names)

    # ------------------------------------------------------------------ reading in order
    def chunks(self, types: ColumnTypes) -> Iterator[tuple[int, pa.Table]]:
        """``(first data row, table)`` for every block of the file, in order."""
        self.check_columns(types.columns)
        start = 0
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                parquet = pq.ParquetFile(self.path)
                for batch in parquet.iter_batches(batch_size=65_536, columns=list(types.columns)):
                    table = _parquet_types(pa.Table.from_batches([batch]), types)
                    yield start, table
                    start += table.num_rows
            except (OSError, ValueError) as error:
                raise _unreadable(self.path, "parquet", error, start) from None
            return
        import pyarrow as pa

        try:
            with self._csv_reader(types) as reader:
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    yield start, pa.Table.from_batches([batch])
                    start += batch.num_rows
        except (OSError, ValueError) as error:
            raise _unreadable(self.path, "csv", error, start) from None

    def _csv_reader(self, types: ColumnTypes, source: Any = None) -> Any:
        import pyarrow.csv as pacsv

        return pacsv.open_csv(
            self.path if source is None else source,
            read_options=pacsv.ReadOptions(
                block_size=BLOCK_BYTES,
                use_threads=False,
                column_names=None if self.header and source is None else list(self.names),
            ),
            parse_options=pacsv.ParseOptions(delimiter=self.sep),
            convert_options=self._convert_options(types),
        )

    def _convert_options(self, types: ColumnTypes) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        column_types = {c: pa.string() for c in types.columns}
        return pacsv.ConvertOptions(
            include_columns=list(types.columns),
            column_types=column_types,
            null_values=list(NA_VALUES),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )

    # -------------------------------------------------------------- random access pieces
    def pieces(self, piece_rows: int, file_index: int = 0) -> list[Piece]:
        """The file cut into pieces of ``piece_rows`` data rows (Parquet: its row groups).

        Raises:
            DataError: a compressed text file (it cannot be read from the middle).
        """
        if self.format == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(self.path).metadata
            out, start = [], 0
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                if rows:
                    out.append(Piece(file_index, start, rows, row_group=group))
                start += rows
            return out
        if self.compressed:
            raise DataError(
                f"{self.path}: a compressed text file cannot be streamed (it cannot be read from "
                "the middle); decompress it or convert it to Parquet"
            )
        return _line_pieces(self.path, piece_rows, self.header, file_index)

    def read_piece(self, piece: Piece, types: ColumnTypes) -> pa.Table:
        """The rows of ``piece`` (exactly ``piece.rows`` of them)."""
        import pyarrow as pa

        self.check_columns(types.columns)
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.ParquetFile(self.path).read_row_group(
                    piece.row_group, columns=list(types.columns)
                )
            except (OSError, ValueError) as error:
                raise _unreadable(self.path, "parquet", error, piece.start) from None
            return _parquet_types(table, types)
        try:
            with self.path.open("rb") as handle:
                handle.seek(piece.offset)
                data = handle.read(piece.end - piece.offset)
            with self._csv_reader(types, pa.BufferReader(data)) as reader:
                table = reader.read_all()
        except (OSError, ValueError) as error:
            raise _unreadable(self.path, "csv", error, piece.start, piece.rows) from None
        if table.num_rows != piece.rows:
            raise DataError(
                f"{self.path}: data rows {piece.start + 1}-{piece.start + piece.rows} hold "
                f"{table.num_rows} rows, not the {piece.rows} lines counted (a blank line, or a "
                "quoted value spanning lines, or the file changed); fix the file or convert it "
                "to Parquet"
            )
        return table


def _require_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.csv  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "reading tables needs pyarrow (and pandas): pip install 'nomoretuning[data]'"
        ) from error


def release_memory() -> None:
    """Hands freed memory back to the operating system: pyarrow's pool, and glibc's heap
    (``malloc_trim``, where the C library has it), which otherwise keep what reading freed."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def _parquet_types(table: pa.Table, types: ColumnTypes) -> pa.Table:
    """Numeric columns of a Parquet table as float64 (text columns keep their type)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in types.numeric:
        if name in types.text:
            continue
        column = table.column(name)
        if column.type != pa.float64() and (
            pa.types.is_integer(column.type)
            or pa.types.is_floating(column.type)
            or pa.types.is_boolean(column.type)
        ):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.cast(column, pa.float64()))
    return table


def _line_pieces(path: Path, piece_rows: int, header: bool, file_index: int) -> list[Piece]:
    """Pieces of an uncompressed text file: one scan of its bytes for line breaks, keeping only
    the offsets where pieces start (memory: one block, whatever the file's size)."""
    starts: list[int] = [] if header else [0]  # byte offset of the first line of every piece
    lines = 0  # lines that end before the current block
    size = 0
    first = 1 if header else 0  # the header line is not a data row
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(_SCAN_BYTES):
            breaks = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
            # A piece starts after line break number first + k * piece_rows - 1 (0-based).
            number = lines + np.arange(len(breaks)) + 1  # the line each break ends (1-based)
            begins = number >= first
            at = (number - first) % piece_rows == 0
            offsets = breaks[begins & at] + size + 1
            starts.extend(int(o) for o in offsets)
            lines += len(breaks)
            size += len(block)
            last = block[-1:]
    rows = lines + (1 if size and last != b"\n" else 0) - first
    if rows <= 0:
        raise DataError(f"{path}: no data rows; point to a file with data rows")
    starts = starts[: -(-rows // piece_rows)]  # a break at the very end starts no piece
    ends = [*starts[1:], size]
    return [
        Piece(file_index, i * piece_rows, min(piece_rows, rows - i * piece_rows), offset=o, end=e)
        for i, (o, e) in enumerate(zip(starts, ends, strict=True))
    ]


def _unreadable(
    path: Path, format: str, error: BaseException, start: int | None = None, rows: int = 0
) -> DataError:
    reason = " ".join(str(error).split())[:200] or type(error).__name__
    where = ""
    if start is not None:
        where = f" in data rows {start + 1}-{start + rows}" if rows else f" after data row {start}"
    return DataError(
        f"{path}: unreadable as {format}{where} ({reason}); check the format, separator and "
        "column count of those rows"
    )
