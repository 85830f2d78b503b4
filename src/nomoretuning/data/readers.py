"""Reading tables by path: CSV / TSV (optionally compressed, e.g. ``.csv.gz``) and Parquet.

Every failure (missing file, empty file, unknown format, parse error, missing column) raises
`nomoretuning.errors.DataError` with a one-line message naming the file and a fix.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nomoretuning.checks import optional_path
from nomoretuning.data.schema import missing_column
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TEXT_SUFFIXES", "detect_format", "read_json", "read_table", "read_table_chunks"]

Format = Literal["csv", "parquet"]

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")
TEXT_SUFFIXES: Mapping[str, str] = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}
"""Text suffixes and their default separators (``.txt`` is read as tab separated)."""
PARQUET_SUFFIXES = (".parquet", ".pq")
_READ_ERRORS = (UnicodeDecodeError, EOFError, OSError, zlib.error, ValueError)
"""What pandas and pyarrow raise on a file they cannot parse (parser errors are ValueErrors)."""


def detect_format(path: str | os.PathLike[str]) -> tuple[Format, str | None]:
    """``("csv", default separator)`` or ``("parquet", None)`` from the file name.

    Example:
        >>> detect_format("logs/train.tsv.gz")
        ('csv', '\\t')
        >>> detect_format("train.parquet")
        ('parquet', None)
    """
    name = Path(path).name.lower()
    for suffix in PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return "parquet", None
    for comp in ("", *COMPRESSION_SUFFIXES):
        for suffix, sep in TEXT_SUFFIXES.items():
            if name.endswith(suffix + comp):
                return "csv", sep
    raise DataError(
        f"{path}: unreadable format (unknown file extension); name the file .csv, .tsv or "
        ".txt (optionally .gz) or .parquet (read_table also takes format='csv' / 'parquet')"
    )


def read_table(
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    dtype: Mapping[str, Any] | type | None = None,
    skipinitialspace: bool = False,
    keep_default_na: bool = True,
) -> pd.DataFrame:
    """Reads a CSV/TSV or Parquet file into a DataFrame.

    Args:
        path: the file. The format comes from its name (see `detect_format`) unless `format`.
        format: ``"csv"`` (any separated text, compression inferred from the name) or
            ``"parquet"``.
        sep: field separator of a text file (default: ``,`` for .csv, tab for .tsv / .txt).
        header: whether a text file's first line holds the column names.
        names: column names for a text file without a header.
        columns: read only these columns, in this order; a missing one raises `DataError`.
        dtype: pandas dtype(s) of text columns, e.g. ``{"uid": str}`` to keep ids verbatim.
        skipinitialspace, keep_default_na: passed to ``pandas.read_csv``.

    Raises:
        DataError: missing or empty file, unknown format, parse error, missing column, no rows.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("uid,click\\nu1,1\\nu2,0\\n")
        >>> read_table(p, columns=["click"])["click"].tolist()
        [1, 0]
    """
    optional_path(path, "path", error=DataError)  # "" would be the working folder
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "reading tables needs pandas and pyarrow: pip install 'nomoretuning[data]'"
        ) from exc

    src = str(path)
    file = Path(path)
    format, default_sep = _resolve_format(file, src, format)

    try:
        if format == "parquet":
            frame = _read_parquet(file, src, columns)
        else:
            arguments = _csv_arguments(
                file,
                src,
                sep=sep or default_sep or ",",
                header=header,
                names=names,
                columns=columns,
                dtype=dtype,
                skipinitialspace=skipinitialspace,
                keep_default_na=keep_default_na,
            )
            frame = pd.read_csv(file, **arguments)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{src}: file is empty; point to a file with a header and data rows"
        ) from None
    except _READ_ERRORS as exc:
        raise _unreadable(src, format, exc) from None
    if len(frame) == 0:
        raise DataError(f"{src}: no data rows; point to a file with data rows")
    if columns is not None:
        frame = frame[list(columns)]
    return frame


def _check_columns(src: str, wanted: Sequence[str] | None, present: Sequence[str]) -> None:
    """Raises the `missing_column` error for the first of ``wanted`` not in ``present``."""
    for name in wanted or ():
        if name not in present:
            raise missing_column(src, name, present)


def _read_parquet(file: Path, src: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.parquet as pq

    if columns is not None:
        _check_columns(src, columns, list(pq.read_schema(file).names))
    return pd.read_parquet(file, columns=None if columns is None else list(columns))


def _csv_arguments(
    file: Path,
    src: str,
    *,
    sep: str,
    header: bool,
    names: Sequence[str] | None,
    columns: Sequence[str] | None,
    dtype: Mapping[str, Any] | type | None,
    skipinitialspace: bool,
    keep_default_na: bool,
) -> dict[str, Any]:
    """The ``pandas.read_csv`` arguments of `read_table` and `read_table_chunks` (the named
    ``columns`` are checked against the header first)."""
    import pandas as pd

    options: dict[str, Any] = {
        "sep": sep,
        "header": 0 if header else None,
        "names": None if names is None else list(names),
        "skipinitialspace": skipinitialspace,
        "keep_default_na": keep_default_na,
        "compression": "infer",
    }
    usecols: list[Any] | None = None
    if columns is not None:
        if header or names is not None:
            present = [str(c) for c in pd.read_csv(file, nrows=0, **options).columns]
            _check_columns(src, columns, present)
        usecols = list(columns)
    if isinstance(dtype, Mapping) and usecols is not None:
        dtype = {k: v for k, v in dtype.items() if k in usecols}
    return {**options, "usecols": usecols, "dtype": dtype, "low_memory": False}


def _resolve_format(file: Path, src: str, format: Format | None) -> tuple[Format, str | None]:
    """The file's format and default separator; a missing, empty or unknown file raises."""
    if file.is_dir():
        raise DataError(f"{src} is a folder; this reads one file: point to a file in it")
    if not file.is_file():
        raise DataError(f"{src}: file not found; check the path (or the cache directory)")
    if file.stat().st_size == 0:
        raise DataError(f"{src}: file is empty; point to a file with a header and data rows")
    if format is None:
        return detect_format(file)
    if format == "csv":
        try:
            return "csv", detect_format(file)[1]
        except DataError:
            return "csv", ","
    if format == "parquet":
        return "parquet", None
    raise DataError(f"{src}: unknown format {format!r}; use 'csv' or 'parquet'")


def _unreadable(src: str, format: str, exc: BaseException) -> DataError:
    reason = " ".join(str(exc).split())[:160] or type(exc).__name__
    return DataError(
        f"{src}: unreadable as {format} ({reason}); check the format, separator and "
        "compression, or pass format=/sep="
    )


def read_table_chunks(
    path: str | os.PathLike[str],
    *,
    chunk_rows: int = 100_000,
    format: Format | None = None,
    sep: str | None = None,
    header: bool = True,
    names: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    dtype: Mapping[str, Any] | type | None = None,
    skipinitialspace: bool = False,
    keep_default_na: bool = True,
) -> Iterator[pd.DataFrame]:
    """`read_table` in pieces of at most `chunk_rows` rows, in file order (bounded memory).

    Same arguments and errors as `read_table`; a parse error in a later piece raises `DataError`
    when that piece is read. Parquet files are read by record batches with pyarrow.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = p.write_text("uid,click\\n" + "".join(f"u{i},{i % 2}\\n" for i in range(5)))
        >>> [len(c) for c in read_table_chunks(p, chunk_rows=2)]
        [2, 2, 1]
    """
    optional_path(path, "path", error=DataError)  # "" would be the working folder
    import pandas as pd

    src = str(path)
    file = Path(path)
    format, default_sep = _resolve_format(file, src, format)
    if format == "parquet":
        yield from _parquet_chunks(file, src, columns, chunk_rows)
        return
    try:
        arguments = _csv_arguments(
            file,
            src,
            sep=sep or default_sep or ",",
            header=header,
            names=names,
            columns=columns,
            dtype=dtype,
            skipinitialspace=skipinitialspace,
            keep_default_na=keep_default_na,
        )
        reader = pd.read_csv(file, chunksize=chunk_rows, **arguments)
        with reader:
            for chunk in reader:
                yield chunk if columns is None else chunk[list(columns)]
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{src}: file is empty; point to a file with a header and data rows"
        ) from None
    except _READ_ERRORS as exc:
        raise _unreadable(src, format, exc) from None


def _parquet_chunks(
    file: Path, src: str, columns: Sequence[str] | None, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
        _check_columns(src, columns, list(parquet.schema_arrow.names))
        wanted = None if columns is None else list(columns)
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
            yield batch.to_pandas()
    except DataError:
        raise
    except _READ_ERRORS as exc:
        raise _unreadable(src, "parquet", exc) from None


def read_json(path: Path, what: str) -> Any:
    """The value of a JSON file the library wrote (``what`` names it in the error).

    Raises:
        DataError: the file cannot be read or is not JSON.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.json"
        >>> _ = p.write_text('{"version": 1}')
        >>> read_json(p, "model file")
        {'version': 1}
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable {what} ({error}); train the run again") from None
