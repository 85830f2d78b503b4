"""Turns validated config sections into datasets, models and loss combiners."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

import nomoretuning as nt
from nomoretuning.cli.config import DataSection, MethodSection, ModelSection, RunConfig
from nomoretuning.cli.registry import DATASETS
from nomoretuning.core.base import LossCombiner
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError, NomoretuningError
from nomoretuning.training.config import TrainerConfig
from nomoretuning.training.objectives import Objective, objective_for

__all__ = [
    "build_combiner",
    "build_dataset",
    "build_model",
    "build_objective",
    "builder_parameters",
    "check_shared_options",
    "options_for",
    "pin_data_seed",
    "shared_model_options",
    "trainer_config",
]


def _call(factory: Callable[..., Any], where: str, *args: Any, **kwargs: Any) -> Any:
    """Calls a builder, turning a wrong keyword into a ConfigError naming the config key."""
    signature = inspect.signature(factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    if not accepts_any:
        for key in kwargs:
            if key not in signature.parameters:
                allowed = sorted(
                    name
                    for name, p in signature.parameters.items()
                    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                    and p.default is not p.empty
                )
                raise ConfigError(f"{where}.{key}: unknown option; allowed: {allowed}")
    try:
        return factory(*args, **kwargs)
    except ConfigError as error:  # a bad option value: say which config key holds it
        if str(error).startswith(where):
            raise
        raise ConfigError(f"{where}: {error}") from None
    except NomoretuningError:  # bad data: the message names the file
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def build_dataset(section: DataSection, seed: int) -> PreparedDataset:
    """Loads the dataset a config names (by path, or from the dataset cache)."""
    given = {
        "data.path": section.path,
        **{f"data.options.{k}": v for k, v in section.options.items()},
    }
    for key, value in given.items():  # an empty path would be the working folder
        if value == "" or (key == "data.path" and isinstance(value, str) and not value.strip()):
            raise ConfigError(f"{key}: {value!r} is blank; give a value, or leave it out")
    options = dict(section.options)
    builder = DATASETS[section.dataset].builder
    params = builder_parameters(section.dataset)
    if section.tasks is not None and "tasks" in params:  # else chosen from the loaded tasks
        options["tasks"] = section.tasks
    if _takes_seed(section.dataset) and "seed" not in options:
        options["seed"] = seed
    if section.path is not None:
        first = next(iter(params))
        options[first] = section.path
    if section.streaming is not False:
        if "streaming" not in params:
            streamed = [n for n in DATASETS if "streaming" in builder_parameters(n)]
            raise ConfigError(
                f"data.streaming: the {section.dataset} dataset is read into memory only; "
                f"stream one of: {', '.join(streamed)}"
            )
        options["streaming"] = section.streaming
    return _call(builder, "data.options", **options)


def pin_data_seed(config: RunConfig) -> None:
    """Writes the seed that splits the data into ``data.options.seed`` (where the dataset's builder
    takes one and the config leaves it unset), so that a protocol's runs, which train under
    seeds of their own on the one split, each record a config that reproduces them.

    Example:
        >>> from nomoretuning.cli.config import validate_config
        >>> config = validate_config({"seed": 3, "data": {"dataset": "synthetic"}})
        >>> pin_data_seed(config)
        >>> config.data.options["seed"]
        3
    """
    if _takes_seed(config.data.dataset):
        config.data.options.setdefault("seed", config.seed)


def _takes_seed(dataset: str) -> bool:
    """Whether the dataset's builder splits with a ``seed`` (the run's, unless options set it)."""
    return "seed" in builder_parameters(dataset)


def builder_parameters(dataset: str) -> Mapping[str, inspect.Parameter]:
    """The parameters of a dataset's builder: what ``data.options`` may set, with defaults.

    Example:
        >>> builder_parameters("synthetic")["seed"].default
        0
    """
    return inspect.signature(DATASETS[dataset].builder).parameters


def build_model(section: ModelSection, dataset: PreparedDataset, tasks: Sequence[str]) -> nn.Module:
    """Builds the architecture a config names for the dataset's features."""
    from nomoretuning.models import MODEL_NAMES
    from nomoretuning.models import build_model as registry_build

    if section.name not in MODEL_NAMES:
        raise ConfigError(
            f"model.name: unknown model {section.name!r}; allowed: {list(MODEL_NAMES)}"
        )
    try:
        return registry_build(section.name, dataset.features, list(tasks), **section.options)
    except TypeError as error:
        raise ConfigError(f"model.options: {error}") from None
    except ValueError as error:
        raise ConfigError(f"model.options: {error}") from None


def _plain(
    name: str,
    tasks: Sequence[str],
    options: dict[str, Any],
    model: nn.Module,
    where: str,
    weights: dict[str, float] | None = None,
) -> LossCombiner:
    if name == "equal":
        return _call(nt.EqualWeights, where, tasks, **options)
    if name == "fixed":
        if not weights:
            raise ConfigError("method.weights: the fixed method needs a weight per task")
        unknown = [t for t in weights if t not in tasks]
        missing = [t for t in tasks if t not in weights]
        if unknown or missing:
            raise ConfigError(
                f"method.weights: must name exactly the tasks {list(tasks)}, got {sorted(weights)}"
            )
        return _call(nt.FixedWeights, where, weights)
    if name == "uncertainty":
        return _call(nt.UncertaintyWeighting, where, tasks, **options)
    if name == "famo":
        return _call(nt.FAMO, where, tasks, **options)
    if name == "emtl":

        def shared() -> torch.Tensor:
            representation = model.shared_representation
            assert isinstance(representation, torch.Tensor)
            return representation

        return _call(nt.EMTL, where, tasks, shared=shared, **options)
    raise ConfigError(f"method.name: {name!r} is not a loss combiner")


def build_combiner(section: MethodSection, tasks: Sequence[str], model: nn.Module) -> LossCombiner:
    """Builds the loss combiner of a config; NMT composes with ``method.inner``."""
    if section.name == "single_task":
        if len(tasks) != 1:
            raise ConfigError("method single_task trains one task at a time; set data.tasks")
        return nt.EqualWeights(tasks)
    if section.name != "nmt":
        if section.inner is not None:
            raise ConfigError("method.inner: only the nmt method composes with an inner method")
        return _plain(
            section.name, tasks, section.options, model, "method.options", section.weights
        )
    priorities: list[Any] = list(section.priorities) if section.priorities else list(tasks)
    named = [t for level in priorities for t in ([level] if isinstance(level, str) else level)]
    if sorted(named) != sorted(tasks):
        raise ConfigError(
            f"method.priorities: must order exactly the tasks {list(tasks)}, got {priorities}"
        )
    inner_name = section.inner or "equal"
    inner_options = dict(section.inner_options)

    def factory(terms: Sequence[str]) -> LossCombiner:
        return _plain(inner_name, terms, inner_options, model, "method.inner_options")

    factory(tuple(named))  # validate the inner options once, now
    options = dict(section.options)
    for key in ("switch", "combiner"):
        if key in options:
            raise ConfigError(f"method.options.{key}: not settable from a config")
    return _call(nt.NMT, "method.options", priorities, combiner=factory, **options)


def build_objective(dataset: PreparedDataset, tasks: Sequence[str]) -> Objective:
    """Binary cross-entropy by default; ranking datasets bring their own objective."""
    return objective_for(dataset, tasks)


def trainer_config(config: RunConfig, *, progress: bool | None = None) -> TrainerConfig:
    """The run's `TrainerConfig`: the ``trainer`` section with the config's ``seed``.

    ``progress`` overrides ``trainer.progress`` (protocols running many runs turn bars off).

    Example:
        >>> from nomoretuning.cli.config import validate_config
        >>> config = validate_config({"seed": 3, "data": {"dataset": "synthetic"}})
        >>> trained = trainer_config(config, progress=False)
        >>> trained.seed, trained.progress, trained.batch_size
        (3, False, 1024)
    """
    options = dict(config.trainer)
    if progress is not None:
        options["progress"] = progress
    return TrainerConfig(seed=config.seed, **options)


def options_for(model: str, options: dict[str, Any]) -> dict[str, Any]:
    """The model options an architecture accepts (compare shares one option set among them)."""
    from nomoretuning.models import MODEL_NAMES, model_arguments

    if model not in MODEL_NAMES:
        raise ConfigError(f"compare.models: unknown model {model!r}; allowed: {list(MODEL_NAMES)}")
    accepted = model_arguments(model)
    return {k: v for k, v in options.items() if k in accepted}


def check_shared_options(models: Sequence[str], options: dict[str, Any]) -> None:
    """Rejects a ``model.options`` key that no compared architecture takes (a typo)."""
    from nomoretuning.models import model_arguments

    known = {k for m in [*models, "single_task"] for k in model_arguments(m)}
    for key in options:
        if key not in known:
            raise ConfigError(f"model.options.{key}: no compared architecture takes this option")


def shared_model_options(config: RunConfig) -> dict[str, Any]:
    """``model.options`` for one run of ``model.name``: as written, unless the config also has a
    ``compare`` section, whose architectures share one option set (the packaged demo configs
    give ``bottom_dims`` for single-task training beside MMoE's options); then the options
    ``model.name`` takes, once every key is known to some compared architecture.

    Example:
        >>> from nomoretuning.cli.config import validate_config
        >>> config = validate_config({"data": {"dataset": "synthetic"},
        ...     "model": {"name": "mmoe", "options": {"num_experts": 2, "bottom_dims": [8]}},
        ...     "compare": {"models": ["mmoe"]}})
        >>> shared_model_options(config)
        {'num_experts': 2}

    Raises:
        ConfigError: a key no compared architecture takes (a typo).
    """
    from nomoretuning.models import MODEL_NAMES

    options = dict(config.model.options)
    if "compare" not in config.model_fields_set or config.model.name not in MODEL_NAMES:
        return options  # an unknown model.name gets build_model's own error
    models = [m for m in config.compare.models if m in MODEL_NAMES]
    check_shared_options([*models, config.model.name], options)
    return options_for(config.model.name, options)
