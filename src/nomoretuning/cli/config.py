"""Run configurations: YAML files validated with pydantic, overridable with ``--set key=value``.

A config has these sections (every key optional but ``data.dataset``):

```yaml
output: runs/census-nmt        # the run directory (never overwritten unless overwrite: true)
seed: 0
data:    {dataset: census_income, path: null, tasks: [income, marital], options: {}}
#   data.streaming: true (or {piece_rows, shuffle_rows, lanes, prefetch, cache_rows}) reads a
#   table or tiktok log in pieces every epoch, for data larger than memory;
#   data.options.hash_buckets hashes the ids
model:   {name: mmoe, options: {}}
method:  {name: nmt, priorities: [income, marital], options: {}, inner: null}
trainer: {batch_size: 1024, lr: 0.001, max_epochs: 20, eval_every: null, patience: 1.0}
compare: {models: [...], methods: [...], seeds: [0, 1, 2, 3, 4]}   # for `nomoretuning compare`
#   compare.protocol: table1 (default: models x methods x seeds) or table3 (the paper's Taobao
#   learning-to-rank protocol on the single-score model, with compare.weights for its
#   weight-adjustment run, default pay 0.5 : relevance 0.5; see docs/ranking.md)
grid:    {points: 9}                                            # for `nomoretuning grid`
```

The ``trainer`` section takes every field of `nomoretuning.training.config.TrainerConfig` but
``seed`` (the run's seed is the top-level ``seed``), with the same defaults and its checks. Dataset
and method names come from `nomoretuning.cli.registry`.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from nomoretuning.cli.registry import (
    COMPARED_METHODS,
    DATASETS,
    DEFAULT_COMPARED_METHODS,
    INNER_METHODS,
    METHODS,
    method_label,
    parse_method_label,
)
from nomoretuning.errors import ConfigError
from nomoretuning.training.config import TrainerConfig

__all__ = [
    "TRAINER_OPTIONS",
    "CompareSection",
    "DataSection",
    "GridSection",
    "MethodSection",
    "ModelSection",
    "RunConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
    "trainer_options",
    "validate_config",
]

TRAINER_OPTIONS: tuple[str, ...] = tuple(
    name for name in TrainerConfig.option_names() if name != "seed"
)
"""The keys of the ``trainer`` section: every `TrainerConfig` field but ``seed``."""


def _must_be_one_of(value: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        raise ValueError(f"must be one of {', '.join(allowed)}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    dataset: str
    path: str | list[str] | None = None
    tasks: list[str] | None = None
    streaming: bool | dict[str, Any] = False
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        return _must_be_one_of(name, DATASETS)


class ModelSection(_Section):
    name: str = "mmoe"
    options: dict[str, Any] = Field(default_factory=dict)


class MethodSection(_Section):
    name: str = "nmt"
    priorities: list[str | list[str]] | None = None
    weights: dict[str, float] | None = None
    inner: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    inner_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_method(cls, name: str) -> str:
        return _must_be_one_of(name, METHODS)

    @field_validator("inner")
    @classmethod
    def _known_inner(cls, inner: str | None) -> str | None:
        return None if inner is None else _must_be_one_of(inner, INNER_METHODS)

    @property
    def label(self) -> str:
        """The method's name in reports (``famo+nmt`` for NMT with a FAMO inner combiner)."""
        return method_label(self.name, self.inner)

    def variant(self, label: str, tasks: Sequence[str]) -> MethodSection:
        """This section turned into the method ``label`` names (a `COMPARED_METHODS` entry).

        Options carry over, but NMT's options are dropped by the other methods; plain ``nmt``
        keeps this section's inner combiner; NMT's priorities default to ``tasks``.

        Example:
            >>> nmt = MethodSection(name="nmt", options={"tolerance": 0.02})
            >>> famo_nmt = nmt.variant("famo+nmt", ["ctr", "cvr"])
            >>> famo_nmt.label, famo_nmt.priorities, nmt.variant("equal", ["ctr"]).options
            ('famo+nmt', ['ctr', 'cvr'], {})
        """
        section = self.model_copy(deep=True)
        name, inner = parse_method_label(label)
        section.name = name
        if name != "nmt" or inner is not None:
            section.inner = inner
        if name == "nmt" and not section.priorities:
            section.priorities = list(tasks)
        if name != "nmt" and self.name == "nmt":
            section.options = {}
        return section


def _trainer_options_model() -> type[BaseModel]:
    """A pydantic model of the ``trainer`` section, field by field from `TrainerConfig`."""
    types = get_type_hints(TrainerConfig)
    defaults = {field.name: field.default for field in fields(TrainerConfig)}
    options: dict[str, Any] = {name: (types[name], defaults[name]) for name in TRAINER_OPTIONS}
    return create_model("TrainerOptions", __config__=ConfigDict(extra="forbid"), **options)


_TRAINER_OPTIONS_MODEL = _trainer_options_model()


def trainer_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``trainer`` section with every option: values converted to the types of the
    `TrainerConfig` fields (YAML's ``1e-3`` is a string), unknown keys rejected, defaults filled
    in, and the values checked by `TrainerConfig` itself.

    Example:
        >>> trainer_options({"lr": "1e-3"})["lr"], trainer_options({})["precision"]
        (0.001, 'fp32')
        >>> trainer_options({"batch_size": 0})
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: trainer.batch_size must be a positive integer, got 0
    """
    try:
        typed = _TRAINER_OPTIONS_MODEL.model_validate(dict(options))
    except ValidationError as error:
        raise ConfigError(_describe(error, within="trainer")) from None
    checked = TrainerConfig(**typed.model_dump())
    return {name: getattr(checked, name) for name in TRAINER_OPTIONS}


class CompareSection(_Section):
    models: list[str] = Field(default_factory=lambda: ["shared_bottom", "omoe", "mmoe", "ple"])
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPARED_METHODS))
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    protocol: Literal["table1", "table3"] = "table1"
    weights: dict[str, float] | None = None

    @field_validator("weights")
    @classmethod
    def _positive_weights(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is not None:
            bad = {t: w for t, w in weights.items() if not w > 0}
            if not weights or bad:
                raise ValueError(f"weights must be > 0 for every task named, got {weights}")
        return weights

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds: list[int]) -> list[int]:
        if not seeds:
            raise ValueError("needs at least one seed")
        bad = [seed for seed in seeds if not 0 <= seed < 2**63]
        if bad:
            raise ValueError(f"seeds must be in [0, 2**63), got {bad[0]}")
        return seeds

    @field_validator("models", "methods", "seeds")
    @classmethod
    def _each_once(cls, values: list[Any]) -> list[Any]:
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:  # two runs would share one run directory
            raise ValueError(f"{twice[0]!r} is listed twice in {values}")
        return values

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        for method in methods:
            if method not in COMPARED_METHODS:
                raise ValueError(
                    f"unknown method {method!r}; must be one of {', '.join(COMPARED_METHODS)}"
                )
        return methods


class GridSection(_Section):
    points: int = Field(default=9, ge=2, le=99)
    three_task_points: int = Field(default=4, ge=2, le=20)


class RunConfig(_Section):
    output: str | None = None
    overwrite: bool = False
    seed: int = Field(default=0, ge=0, lt=2**63)
    data: DataSection
    model: ModelSection = Field(default_factory=ModelSection)
    method: MethodSection = Field(default_factory=MethodSection)
    trainer: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    """Every `TRAINER_OPTIONS` key (see `trainer_options`); `TrainerConfig` is its typed form."""
    compare: CompareSection = Field(default_factory=CompareSection)
    grid: GridSection = Field(default_factory=GridSection)

    @field_validator("trainer")
    @classmethod
    def _trainer_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        return trainer_options(options)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Applies ``key.sub=value`` overrides (values parsed as YAML) to a raw config dict.

    Example:
        >>> apply_overrides({"trainer": {"lr": 0.1}}, ["trainer.lr=0.01", "seed=3"])
        {'trainer': {'lr': 0.01}, 'seed': 3}
    """
    result = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set trainer.lr=0.01")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {item!r}: empty key part in {key!r}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or "unreadable"
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({problem})") from None
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the last would win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Reads and validates a YAML config; errors name the file and the key.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown key, wrong type or value.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(
            f"{path} is a folder; give a YAML config file (a run's: {path}/config.yaml)"
        )
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a config is a YAML file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None)
        detail = f": {problem}" if problem and "twice" in problem else ""
        raise ConfigError(f"{path}: invalid YAML{where}{detail}") from None
    if raw is None:
        raise ConfigError(f"{path}: the config is empty; it needs at least data.dataset")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of sections, got {type(raw).__name__}"
        )
    return validate_config(apply_overrides(raw, overrides or []), source=str(path))


def validate_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validates a raw dict; the first error becomes a one-line ``ConfigError`` naming the key.

    Example:
        >>> validate_config({"data": {"dataset": "imagenet"}}, source="run.yaml")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: run.yaml: data.dataset: must be one of census_income, \
tiktok, qk_video, table, synthetic, lambdarank, letor, ranking_table, search_logs (got 'imagenet')
    """
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error)}") from None


def _describe(error: ValidationError, within: str = "") -> str:
    """The first error of a validation in one line: the key, what is wrong, the value given."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised by a check that names its key itself
        return str(cause)
    parts = [str(part) for part in first["loc"]]
    key = ".".join([within, *parts] if within else parts) or "(top level)"
    if first["type"] == "extra_forbidden":
        if len(parts) == 2 and parts[0] == "data":  # a builder's option one level too high
            return f"{key}: unknown key; a dataset's own options go under data.options.{parts[1]}"
        return f"{key}: unknown key"
    if first["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(cause) if isinstance(cause, ValueError) else first["msg"]
    return f"{key}: {message} (got {first.get('input')!r})"


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (saved in every run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
