"""Reading tables by path: CSV / TSV (optionally compressed, e.g. ``.csv.gz``) and Parquet.

Every failure (missing file, empty file, unknown format, parse error, missing column) raises
`nomoretuning.errors.DataError` with a one-line message naming the file and a fix.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nomoretuning.data.schema import missing_column
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TEXT_SUFFIXES", "detect_format", "read_table"]

Format = Literal["csv", "parquet"]

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")
TEXT_SUFFIXES: Mapping[str, str] = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}
"""Text suffixes and their default separators (``.txt`` is read as tab separated)."""
PARQUET_SUFFIXES = (".parquet", ".pq")


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
        f"{path}: unreadable format (unknown file extension); use .csv, .tsv or .txt "
        "(optionally .gz) or .parquet, or pass format='csv' / format='parquet'"
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
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError(
            "reading tables needs pandas and pyarrow: pip install 'nomoretuning[data]'"
        ) from exc

    src = str(path)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{src}: file not found; check the path (or the cache directory)")
    if file.stat().st_size == 0:
        raise DataError(f"{src}: file is empty; point to a file with a header and data rows")
    if format is None:
        format, default_sep = detect_format(file)
    elif format == "csv":
        try:
            _, default_sep = detect_format(file)
        except DataError:
            default_sep = ","
    elif format == "parquet":
        default_sep = None
    else:
        raise DataError(f"{src}: unknown format {format!r}; use 'csv' or 'parquet'")

    try:
        if format == "parquet":
            frame = _read_parquet(file, src, columns)
        else:
            frame = _read_text(
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
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{src}: file is empty; point to a file with a header and data rows"
        ) from None
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        EOFError,
        OSError,
        zlib.error,
        ValueError,
    ) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(
            f"{src}: unreadable as {format} ({reason}); check the format, separator and "
            "compression, or pass format=/sep="
        ) from None
    if len(frame) == 0:
        raise DataError(f"{src}: no data rows; point to a file with data rows")
    if columns is not None:
        frame = frame[list(columns)]
    return frame


def _read_parquet(file: Path, src: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.parquet as pq

    if columns is not None:
        present = list(pq.read_schema(file).names)
        for name in columns:
            if name not in present:
                raise missing_column(src, name, present)
    return pd.read_parquet(file, columns=None if columns is None else list(columns))


def _read_text(
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
) -> pd.DataFrame:
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
            for name in columns:
                if name not in present:
                    raise missing_column(src, name, present)
        usecols = list(columns)
    if isinstance(dtype, Mapping) and usecols is not None:
        dtype = {k: v for k, v in dtype.items() if k in usecols}
    return pd.read_csv(file, usecols=usecols, dtype=dtype, low_memory=False, **options)
