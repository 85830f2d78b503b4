"""The one set of argument validators: each returns the checked value or raises a one-line error.

Every layer validates with these (the bottom layer, beside ``errors``: it imports nothing else of
the package). Messages name the argument as the caller calls it (``"NMT: dual_lr"``,
``"trainer.batch_size"``, ``"data.options.valid_fraction"``) and the value given. The error class
defaults to `ConfigError` (a ``ValueError``: a bad argument or option); the data layer passes
``error=DataError``.

Example:
    >>> positive_int(3, "trainer.patience")
    3
    >>> positive_number(0.0, "NMT: dual_lr")
    Traceback (most recent call last):
    ...
    nomoretuning.errors.ConfigError: NMT: dual_lr must be a finite number > 0, got 0.0
    >>> task_names(["ctr", "cvr"], "NMT priorities")
    ('ctr', 'cvr')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TypeVar

from nomoretuning.errors import ConfigError, NomoretuningError

__all__ = [
    "boolean",
    "fraction",
    "is_integer",
    "one_of",
    "optional_path",
    "optional_positive_int",
    "positive_int",
    "positive_number",
    "task_names",
]

S = TypeVar("S", bound=str)
P = TypeVar("P")
ErrorType = type[NomoretuningError]


def is_integer(value: object) -> bool:
    """True for integers (``int``, numpy's) that are not ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive_int(value: object, name: str, *, error: ErrorType = ConfigError) -> int:
    """``value`` if it is an integer >= 1.

    Example:
        >>> positive_int(0, "MMoE: num_experts")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: MMoE: num_experts must be a positive integer, got 0
    """
    if not is_integer(value) or value < 1:  # type: ignore[operator]
        raise error(f"{name} must be a positive integer, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def optional_positive_int(
    value: object, name: str, *, error: ErrorType = ConfigError
) -> int | None:
    """``value`` if it is None or an integer >= 1."""
    if value is None:
        return None
    if not is_integer(value) or value < 1:  # type: ignore[operator]
        raise error(f"{name} must be a positive integer or null, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def positive_number(
    value: object, name: str, *, allow_zero: bool = False, error: ErrorType = ConfigError
) -> float:
    """``value`` as a float if it is a finite number > 0 (>= 0 with ``allow_zero``)."""
    if _is_number(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0):  # type: ignore[arg-type,operator]
        return float(value)  # type: ignore[arg-type]
    bound = ">= 0" if allow_zero else "> 0"
    raise error(f"{name} must be a finite number {bound}, got {value!r}")


def fraction(
    value: object,
    name: str,
    *,
    allow_zero: bool = True,
    allow_one: bool = False,
    error: ErrorType = ConfigError,
) -> float:
    """``value`` as a float in ``[0, 1)`` by default (the ends as asked).

    Example:
        >>> fraction(1.0, "dropout")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: dropout must be a number in [0, 1), got 1.0
    """
    ok = _is_number(value) and math.isfinite(value)  # type: ignore[arg-type]
    low_ok = ok and (value >= 0 if allow_zero else value > 0)  # type: ignore[operator]
    high_ok = ok and (value <= 1 if allow_one else value < 1)  # type: ignore[operator]
    if low_ok and high_ok:
        return float(value)  # type: ignore[arg-type]
    interval = f"{'[' if allow_zero else '('}0, 1{']' if allow_one else ')'}"
    raise error(f"{name} must be a number in {interval}, got {value!r}")


def boolean(value: object, name: str, *, error: ErrorType = ConfigError) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0, 1 or a string).

    Example:
        >>> boolean("yes", "NMT: refine")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: NMT: refine must be true or false, got 'yes'
    """
    if not isinstance(value, bool):
        raise error(f"{name} must be true or false, got {value!r}")
    return value


def optional_path(value: P | None, name: str, *, error: ErrorType = ConfigError) -> P | None:
    """``value`` unless it is a blank string, which names no file (``Path("")`` would be the
    working folder); None stays None.

    Example:
        >>> try:
        ...     optional_path("", "valid")
        ... except ValueError as error:
        ...     print(error)
        valid='' names no file; give a file or folder, or leave valid unset
    """
    if isinstance(value, str) and not value.strip():
        raise error(f"{name}={value!r} names no file; give a file or folder, or leave {name} unset")
    return value


def one_of(value: object, name: str, allowed: Sequence[S], *, error: ErrorType = ConfigError) -> S:
    """``value`` if it is one of ``allowed``.

    Example:
        >>> one_of("adam", "NMT: dual", ("ascent", "pi"))
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: NMT: dual must be one of ['ascent', 'pi'], got 'adam'
    """
    for option in allowed:
        if value == option:
            return option
    raise error(f"{name} must be one of {list(allowed)}, got {value!r}")


def task_names(
    tasks: Iterable[str] | str,
    what: str = "tasks",
    *,
    available: Sequence[str] | None = None,
    error: ErrorType = ConfigError,
) -> tuple[str, ...]:
    """Task names: non-empty strings, at least one, no duplicates, each in ``available`` if given.

    Example:
        >>> task_names(["ctr", "gmv"], "data.tasks", available=["ctr", "cvr"])
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: data.tasks: unknown task 'gmv'; choose from ['ctr', 'cvr']
    """
    if isinstance(tasks, str):
        raise error(f"{what} must be a sequence of task names, got the string {tasks!r}")
    try:
        names = tuple(tasks)
    except TypeError:
        raise error(f"{what} must be a sequence of task names, got {tasks!r}") from None
    if not names:
        raise error(f"{what} must name at least one task")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise error(f"{what}: task names must be non-empty strings, got {name!r}")
        if name in seen:
            raise error(f"{what}: task {name!r} appears more than once")
        if available is not None and name not in available:
            raise error(f"{what}: unknown task {name!r}; choose from {list(available)}")
        seen.add(name)
    return names
