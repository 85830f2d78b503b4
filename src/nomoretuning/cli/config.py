"""Run configurations: YAML files validated with pydantic, overridable with ``--set key=value``.

A config has five sections (every key optional but ``data.dataset``):

```yaml
output: runs/census-nmt        # the run directory (never overwritten unless overwrite: true)
seed: 0
data:    {dataset: census_income, path: null, tasks: [income, marital], options: {}}
model:   {name: mmoe, options: {}}
method:  {name: nmt, priorities: [income, marital], options: {}, inner: null}
trainer: {batch_size: 1024, lr: 0.001, max_epochs: 10, eval_every: null, patience: 2}
compare: {models: [...], methods: [...], seeds: [0, 1, 2]}   # for `nomoretuning compare`
#   compare.protocol: table1 (default: models x methods x seeds) or table3 (the paper's Taobao
#   learning-to-rank protocol on the single-score model, with compare.weights for its
#   weight-adjustment run, default pay 0.5 : relevance 0.5; see docs/ranking.md)
grid:    {points: 9}                                            # for `nomoretuning grid`
```
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nomoretuning.errors import ConfigError

__all__ = [
    "DATASETS",
    "METHODS",
    "CompareSection",
    "DataSection",
    "GridSection",
    "MethodSection",
    "ModelSection",
    "RunConfig",
    "TrainerSection",
    "apply_overrides",
    "load_config",
]

DATASETS = (
    "census_income",
    "tiktok",
    "qk_video",
    "table",
    "synthetic",
    "lambdarank",
    "search_logs",
)
METHODS = ("single_task", "equal", "fixed", "uncertainty", "famo", "emtl", "nmt")
INNER_METHODS = ("equal", "famo", "emtl", "uncertainty")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Section):
    dataset: Literal[
        "census_income", "tiktok", "qk_video", "table", "synthetic", "lambdarank", "search_logs"
    ]
    path: str | list[str] | None = None
    tasks: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class ModelSection(_Section):
    name: str = "mmoe"
    options: dict[str, Any] = Field(default_factory=dict)


class MethodSection(_Section):
    name: Literal["single_task", "equal", "fixed", "uncertainty", "famo", "emtl", "nmt"] = "nmt"
    priorities: list[str | list[str]] | None = None
    weights: dict[str, float] | None = None
    inner: Literal["equal", "famo", "emtl", "uncertainty"] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    inner_options: dict[str, Any] = Field(default_factory=dict)


class TrainerSection(_Section):
    batch_size: int = 1024
    eval_batch_size: int = 16384
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0
    max_epochs: int = 10
    max_steps: int | None = None
    eval_every: int | None = None
    patience: int = 2
    selection: Literal["feasible_first", "objective"] = "feasible_first"
    feasibility_tolerance: float | None = None
    constraints: Literal["valid", "train"] = "valid"
    checkpoint_every: int | None = None
    device: str = "auto"
    progress: bool = True
    tensorboard: bool = False


class CompareSection(_Section):
    models: list[str] = Field(default_factory=lambda: ["shared_bottom", "omoe", "mmoe", "ple"])
    methods: list[str] = Field(
        default_factory=lambda: [
            "equal",
            "nmt",
            "single_task",
            "famo",
            "emtl",
            "famo+nmt",
            "emtl+nmt",
        ]
    )
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
        return seeds

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        allowed = {*METHODS, "famo+nmt", "emtl+nmt"}
        for method in methods:
            if method not in allowed:
                raise ValueError(f"unknown method {method!r}; allowed: {sorted(allowed)}")
        return methods


class GridSection(_Section):
    points: int = Field(default=9, ge=2, le=99)
    three_task_points: int = Field(default=4, ge=2, le=20)


class RunConfig(_Section):
    output: str | None = None
    overwrite: bool = False
    seed: int = 0
    data: DataSection
    model: ModelSection = Field(default_factory=ModelSection)
    method: MethodSection = Field(default_factory=MethodSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    compare: CompareSection = Field(default_factory=CompareSection)
    grid: GridSection = Field(default_factory=GridSection)


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
            raise ConfigError(f"--set {item!r}: value is not valid YAML ({error})") from None
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Reads and validates a YAML config; errors name the file and the key.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown key, wrong type or value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}") from None
    if raw is None:
        raise ConfigError(f"{path}: the config is empty; it needs at least data.dataset")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the config must be a mapping of sections, got {type(raw).__name__}"
        )
    return validate_config(apply_overrides(raw, overrides or []), source=str(path))


def validate_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validates a raw dict; the first error becomes a one-line ``ConfigError`` naming the key."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required key is missing"
        given = first.get("input")
        shown = "" if first["type"] in ("missing", "extra_forbidden") else f" (got {given!r})"
        raise ConfigError(f"{source}: {key}: {message}{shown}") from None


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML (saved in every run directory)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
