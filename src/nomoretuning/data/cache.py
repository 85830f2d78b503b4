"""The dataset cache directory, file lookup and checksum-verified downloads.

Cache directory, first match wins: the explicit argument, the ``NOMORETUNING_CACHE`` environment
variable, ``$XDG_CACHE_HOME/nomoretuning``, ``~/.cache/nomoretuning``. Nothing is downloaded unless
a ``download*`` function is called (never at import).

Downloads are atomic: the bytes go to a temporary file beside the destination, its sha256 is
checked, and only then is it renamed into place. A checksum mismatch or a network error deletes the
temporary file and raises `DataError`, so a half-written file is never left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from nomoretuning.errors import DataError
from nomoretuning.files import temporary_beside

__all__ = [
    "CACHE_ENV",
    "CENSUS_INCOME_FILE",
    "CENSUS_INCOME_SHA256",
    "CENSUS_INCOME_URL",
    "cache_dir",
    "download",
    "download_census_income",
    "find_census_income",
    "sha256_file",
]

CACHE_ENV = "NOMORETUNING_CACHE"
CENSUS_INCOME_FILE = "census-income.test.gz"
CENSUS_INCOME_DIR = "census-income-kdd"
CENSUS_INCOME_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/"
    "census-income.test.gz"
)
CENSUS_INCOME_SHA256 = "5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659"

PathLike = str | os.PathLike[str]


def cache_dir(path: PathLike | None = None) -> Path:
    """The dataset cache directory (not created here).

    Example:
        >>> str(cache_dir("/tmp/my-cache"))
        '/tmp/my-cache'
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "nomoretuning"


def find_census_income(cache: PathLike | None = None) -> Path | None:
    """The Census-Income test file in the cache, or None.

    Looks for ``<cache>/census-income.test.gz``, then
    ``<cache>/census-income-kdd/census-income.test.gz``, so ``NOMORETUNING_CACHE`` may point at
    the folder holding the file or at its parent.
    """
    root = cache_dir(cache)
    for candidate in (root / CENSUS_INCOME_FILE, root / CENSUS_INCOME_DIR / CENSUS_INCOME_FILE):
        if candidate.is_file():
            return candidate
    return None


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: PathLike,
    *,
    sha256: str | None,
    progress: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Downloads `url` to `dest` atomically, checking `sha256` (hex) when given.

    Raises:
        DataError: network failure or checksum mismatch (the message names the expected and the
            actual hash); the temporary file is removed and `dest` is left untouched.
    """
    target = Path(dest)
    fd, tmp = temporary_beside(target, suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    done = 0
                    while True:
                        chunk = response.read(1 << 16)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress:
                            _report(target.name, done, total)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = " ".join(str(getattr(exc, "reason", exc)).split())[:160]
                raise DataError(
                    f"{url}: download failed ({reason}); check the network or the URL, or "
                    f"place the file at {target} yourself"
                ) from None
        if progress:
            sys.stderr.write("\n")
            sys.stderr.flush()
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise DataError(
                f"{url}: sha256 mismatch, expected {sha256.lower()} but got {actual}; the file "
                "was not saved, check the URL or the expected hash"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _report(name: str, done: int, total: int | None) -> None:
    mib = done / (1 << 20)
    if total:
        percent = 100 * done // total
        line = f"\rdownloading {name}: {mib:.1f} / {total / (1 << 20):.1f} MiB ({percent}%)"
    else:
        line = f"\rdownloading {name}: {mib:.1f} MiB"
    sys.stderr.write(line)
    sys.stderr.flush()


def download_census_income(
    cache: PathLike | None = None,
    *,
    url: str = CENSUS_INCOME_URL,
    sha256: str = CENSUS_INCOME_SHA256,
    progress: bool = False,
    force: bool = False,
    timeout: float = 60.0,
) -> Path:
    """The Census-Income (KDD) test split in the cache, downloaded if absent.

    An existing file (see `find_census_income`) is returned after its sha256 is checked; a
    download goes to ``<cache>/census-income-kdd/census-income.test.gz`` (or replaces the
    existing file with ``force=True``).

    Args:
        cache: cache directory (default: see `cache_dir`).
        url: where to download from (default: the UCI legacy path).
        sha256: expected hex digest of the file.
        progress: print a progress line on stderr.
        force: download even when a file is present (replacing it only if the new one verifies).
        timeout: socket timeout in seconds.
    """
    found = find_census_income(cache)
    if found is not None and not force:
        actual = sha256_file(found)
        if actual != sha256.lower():
            raise DataError(
                f"{found}: sha256 mismatch, expected {sha256.lower()} but got {actual}; delete "
                "the file or call download_census_income(force=True)"
            )
        return found
    dest = found or cache_dir(cache) / CENSUS_INCOME_DIR / CENSUS_INCOME_FILE
    return download(url, dest, sha256=sha256, progress=progress, timeout=timeout)
