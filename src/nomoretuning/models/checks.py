"""Argument checks of the models beyond ``nomoretuning.checks``: layer widths, the activation, the
feature description and the task names. Each returns the checked value or raises a one-line
`ConfigError` (a ``ValueError``) naming the model, the argument and the value.

Example:
    >>> check_dims((64, 32), "MMoE", "tower_dims")
    (64, 32)
    >>> check_activation("sigmoid", "MMoE")
    Traceback (most recent call last):
    ...
    nomoretuning.errors.ConfigError: MMoE: activation must be one of ['relu', 'leaky_relu', 'gelu', 'silu', 'tanh'], got 'sigmoid'
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Sequence

from nomoretuning.checks import is_integer, one_of, task_names
from nomoretuning.errors import ConfigError
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.layers import ACTIVATIONS

__all__ = ["check_activation", "check_dims", "check_features", "check_model_tasks"]


def check_dims(
    value: object, owner: str, name: str, *, allow_empty: bool = True
) -> tuple[int, ...]:
    """Returns layer widths as a tuple of positive ints; a list or tuple is accepted.

    Example:
        >>> check_dims([], "SharedBottom", "bottom_dims", allow_empty=False)
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: SharedBottom: bottom_dims must list at least one layer width, got []
    """  # noqa: E501
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(
            f"{owner}: {name} must be a list of positive ints (layer widths), got {value!r}"
        )
    dims = tuple(value)
    if not dims and not allow_empty:
        raise ConfigError(f"{owner}: {name} must list at least one layer width, got {value!r}")
    for width in dims:
        if not is_integer(width) or width < 1:
            raise ConfigError(
                f"{owner}: {name} must hold positive ints (layer widths), got {width!r} in "
                f"{value!r}"
            )
    return tuple(int(w) for w in dims)


def check_activation(value: object, owner: str) -> str:
    """Returns the activation name if it is one of ``ACTIVATIONS``."""
    return one_of(value, f"{owner}: activation", ACTIVATIONS)


def check_features(value: object, owner: str) -> FeatureConfig:
    """Returns ``value`` if it is a `FeatureConfig`."""
    if not isinstance(value, FeatureConfig):
        raise ConfigError(
            f"{owner}: features must be a nomoretuning.models.FeatureConfig, got "
            f"{type(value).__name__}"
        )
    return value


def check_model_tasks(value: object, owner: str) -> tuple[str, ...]:
    """Returns the task names as a tuple: a sequence of distinct non-empty strings, at least one.

    Example:
        >>> check_model_tasks(["ctr", "ctr"], "MMoE")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: MMoE: tasks: task 'ctr' appears more than once
    """
    if not isinstance(value, Sequence):
        raise ConfigError(
            f"{owner}: tasks must be a sequence of task names, got {type(value).__name__}"
        )
    return task_names(value, f"{owner}: tasks")
