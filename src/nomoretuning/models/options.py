"""`ModelOptions`: the options every architecture takes beside its own layer widths (embeddings,
activation, dropout, batch norm), with their defaults and checks.

Every model takes them as flat keyword arguments (``MMoE(features, tasks, embedding_dim=8)``,
``build_model("mmoe", features, tasks, dropout=0.1)``) and keeps them, checked, in
``model.options``.

Example:
    >>> ModelOptions.checked("MMoE", embedding_dim=8)
    ModelOptions(embedding_dim=8, embedding_l2=1e-06, embedding_init_std=0.0001, activation='relu', dropout=0.0, batch_norm=False)
    >>> ModelOptions.checked("MMoE", dropout=1.0)
    Traceback (most recent call last):
    ...
    nomoretuning.errors.ConfigError: MMoE: dropout must be a number in [0, 1), got 1.0
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypedDict

from nomoretuning.checks import fraction, positive_int, positive_number
from nomoretuning.errors import ConfigError
from nomoretuning.models.checks import check_activation

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["ModelOptionArguments", "ModelOptions"]


class ModelOptionArguments(TypedDict, total=False):
    """The keyword arguments of `ModelOptions`, to type the ``**options`` of the models."""

    embedding_dim: int
    embedding_l2: float
    embedding_init_std: float
    activation: str
    dropout: float
    batch_norm: bool


@dataclass(frozen=True)
class ModelOptions:
    """The options shared by every model; the defaults are STEM's (the NMT paper's).

    Example:
        >>> from nomoretuning.models import FeatureConfig, MMoE
        >>> model = MMoE(FeatureConfig(dense=("x",)), ["ctr"], num_experts=2, embedding_dim=8)
        >>> model.options == ModelOptions(embedding_dim=8)
        True
    """

    embedding_dim: int = 16
    """Width of every embedding."""
    embedding_l2: float = 1e-6
    """Weight of the embedding L2 (``MultiTaskModel.regularization``); 0 turns it off."""
    embedding_init_std: float = 1e-4
    """Standard deviation of the N(0, std) initialization of the embedding tables."""
    activation: str = "relu"
    """Hidden activation of every MLP (one of ``ACTIVATIONS``)."""
    dropout: float = 0.0
    """Dropout rate after each hidden layer of every MLP."""
    batch_norm: bool = False
    """Batch norm after each hidden linear layer of every MLP."""

    @classmethod
    def checked(cls, owner: str, **options: Unpack[ModelOptionArguments]) -> ModelOptions:
        """``options`` (defaults for those not given), checked; messages start with ``owner``.

        Raises:
            ConfigError: a value out of range (a ``ValueError``).
            TypeError: an unknown option.
        """
        given = cls(**options)
        checked = cls(
            embedding_dim=positive_int(given.embedding_dim, f"{owner}: embedding_dim"),
            embedding_l2=positive_number(
                given.embedding_l2, f"{owner}: embedding_l2", allow_zero=True
            ),
            embedding_init_std=positive_number(
                given.embedding_init_std, f"{owner}: embedding_init_std"
            ),
            activation=check_activation(given.activation, owner),
            dropout=fraction(given.dropout, f"{owner}: dropout"),
            batch_norm=given.batch_norm,
        )
        if not isinstance(checked.batch_norm, bool):
            raise ConfigError(
                f"{owner}: batch_norm must be True or False, got {given.batch_norm!r}"
            )
        return checked

    @classmethod
    def defaults(cls) -> dict[str, object]:
        """``{option: default}``, in field order.

        Example:
            >>> ModelOptions.defaults()["embedding_dim"]
            16
        """
        return {field.name: field.default for field in fields(cls)}
