"""Argument checks shared by the models: one-line ``ValueError`` messages naming the bad value.

Example:
    >>> check_dims((64, 32), "MMoE", "tower_dims")
    (64, 32)
    >>> check_positive_int(0, "MMoE", "num_experts")
    Traceback (most recent call last):
    ...
    ValueError: MMoE: num_experts must be a positive int, got 0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nomoretuning.core.base import check_tasks
from nomoretuning.models.features import FeatureConfig

__all__ = [
    "ACTIVATIONS",
    "check_activation",
    "check_dims",
    "check_features",
    "check_model_tasks",
    "check_nonnegative_float",
    "check_positive_int",
    "check_probability",
]

ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "gelu", "silu", "tanh")
"""Activation names accepted by every model (``"relu"`` is the default)."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_positive_int(value: object, owner: str, name: str) -> int:
    """Returns ``value`` if it is an int >= 1, else raises ``ValueError``."""
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_dims(
    value: object, owner: str, name: str, *, allow_empty: bool = True
) -> tuple[int, ...]:
    """Returns layer widths as a tuple of positive ints; a list or tuple is accepted.

    Example:
        >>> check_dims([], "SharedBottom", "bottom_dims", allow_empty=False)
        Traceback (most recent call last):
        ...
        ValueError: SharedBottom: bottom_dims must list at least one layer width, got []
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError(
            f"{owner}: {name} must be a list of positive ints (layer widths), got {value!r}"
        )
    dims = tuple(value)
    if not dims and not allow_empty:
        raise ValueError(f"{owner}: {name} must list at least one layer width, got {value!r}")
    for width in dims:
        if not _is_int(width) or width < 1:
            raise ValueError(
                f"{owner}: {name} must hold positive ints (layer widths), got {width!r} in "
                f"{value!r}"
            )
    return tuple(int(w) for w in dims)


def check_probability(value: object, owner: str, name: str) -> float:
    """Returns ``value`` as a float in ``[0, 1)`` (a dropout rate), else raises ``ValueError``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{owner}: {name} must be a float in [0, 1), got {value!r}")
    return float(value)


def check_nonnegative_float(
    value: object, owner: str, name: str, *, strictly_positive: bool = False
) -> float:
    """Returns ``value`` as a finite float >= 0 (> 0 if ``strictly_positive``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > 0 if strictly_positive else value >= 0):  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    bound = "> 0" if strictly_positive else ">= 0"
    raise ValueError(f"{owner}: {name} must be a finite float {bound}, got {value!r}")


def check_activation(value: object, owner: str) -> str:
    """Returns the activation name if it is one of :data:`ACTIVATIONS`."""
    if value not in ACTIVATIONS:
        raise ValueError(f"{owner}: unknown activation {value!r}; allowed: {list(ACTIVATIONS)}")
    return str(value)


def check_features(value: object, owner: str) -> FeatureConfig:
    """Returns ``value`` if it is a :class:`FeatureConfig`."""
    if not isinstance(value, FeatureConfig):
        raise ValueError(
            f"{owner}: features must be a nomoretuning.models.FeatureConfig, got "
            f"{type(value).__name__}"
        )
    return value


def check_model_tasks(value: object, owner: str) -> tuple[str, ...]:
    """Returns the task names as a tuple: a non-empty sequence of distinct non-empty strings.

    Example:
        >>> check_model_tasks(["ctr", "ctr"], "MMoE")
        Traceback (most recent call last):
        ...
        ValueError: MMoE: tasks: task 'ctr' appears more than once
    """
    if not isinstance(value, Sequence):
        raise ValueError(
            f"{owner}: tasks must be a sequence of task names, got {type(value).__name__}"
        )
    return check_tasks(value, what=f"{owner}: tasks")
