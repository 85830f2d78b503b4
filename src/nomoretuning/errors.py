"""Exceptions with one-line, actionable messages.

The command line catches these and exits non-zero without a traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "NomoretuningError"]


class NomoretuningError(Exception):
    """Base class of the errors that nomoretuning reports to users."""


class DataError(NomoretuningError, ValueError):
    """Bad input data: names the file, the column and a fix in one line.

    Example:
        >>> raise DataError("a.csv: column 'click' has value 2; labels must be 0 or 1")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.DataError: a.csv: column 'click' has value 2; labels must be 0 or 1
    """


class ConfigError(NomoretuningError, ValueError):
    """Bad configuration: names the key, the value and what is allowed."""
