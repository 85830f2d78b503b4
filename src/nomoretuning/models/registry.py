"""Models by name: ``build_model("mmoe", features, tasks, num_experts=4)``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from nomoretuning.errors import ConfigError
from nomoretuning.models.base import MultiTaskModel
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.moe import MMoE, OMoE
from nomoretuning.models.options import ModelOptions
from nomoretuning.models.ple import PLE
from nomoretuning.models.shared_bottom import SharedBottom
from nomoretuning.models.single import SingleScore, SingleTask

__all__ = ["MODELS", "MODEL_NAMES", "build_model", "model_arguments"]

MODELS: dict[str, type[MultiTaskModel]] = {
    "shared_bottom": SharedBottom,
    "omoe": OMoE,
    "mmoe": MMoE,
    "ple": PLE,
    "single_task": SingleTask,
    "single_score": SingleScore,
}
"""Model classes by registry name."""

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
"""The names :func:`build_model` accepts."""


def model_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments of model ``name`` with their defaults: its own, then the
    `ModelOptions` every model takes.

    Example:
        >>> arguments = model_arguments("mmoe")
        >>> arguments["num_experts"], arguments["embedding_dim"]
        (8, 16)
    """
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters.values()
    own = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return {**own, **ModelOptions.defaults()}


def build_model(
    name: str, features: FeatureConfig, tasks: Sequence[str], **kwargs: Any
) -> MultiTaskModel:
    """Builds model ``name`` (one of :data:`MODEL_NAMES`) with keyword arguments ``kwargs``.

    Raises:
        ConfigError: unknown name, unknown keyword argument, or a bad value (from the model); a
            ``ValueError``.

    Example:
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10),))
        >>> type(build_model("ple", cfg, ["click", "like"], expert_dims=(8,))).__name__
        'PLE'
        >>> build_model("mmoe", cfg, ["click"], experts=4)
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: build_model('mmoe'): unknown argument 'experts'; allowed: ['num_experts', 'expert_dims', 'gate_dims', 'tower_dims', 'embedding_dim', 'embedding_l2', 'embedding_init_std', 'activation', 'dropout', 'batch_norm']
    """  # noqa: E501
    allowed = list(model_arguments(name))
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(
                f"build_model({name!r}): unknown argument {key!r}; allowed: {allowed}"
            )
    return _lookup(name)(features, tasks, **kwargs)


def _lookup(name: str) -> type[MultiTaskModel]:
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {list(MODEL_NAMES)}")
    return MODELS[name]
