"""Config files: the ``trainer`` section is `TrainerConfig` (every option settable, same defaults,
its own checks), names are checked against the registry, errors are one line naming the key."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import CONFIGS, PACKAGED, write_config

from nomoretuning.cli.builders import trainer_config
from nomoretuning.cli.config import (
    TRAINER_OPTIONS,
    MethodSection,
    dump_config,
    load_config,
    validate_config,
)
from nomoretuning.cli.registry import COMPARED_METHODS, DATASETS, INNER_METHODS, METHODS
from nomoretuning.errors import ConfigError
from nomoretuning.training.config import TrainerConfig

SPECIAL = {"device": "cpu", "patience": 3, "constrained_patience": 2}
"""Non-default values of the options whose type gives no obvious other value (``patience`` and
``constrained_patience`` with ``patience_unit: evaluations``, the other unit, are whole
numbers)."""


def _another_value(field: dataclasses.Field[Any]) -> object:
    """A valid value of a `TrainerConfig` field that is not its default."""
    if field.name in SPECIAL:
        return SPECIAL[field.name]
    kind = typing.get_type_hints(TrainerConfig)[field.name]
    if typing.get_origin(kind) is typing.Literal:
        return next(v for v in typing.get_args(kind) if v != field.default)
    base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)  # X | None: X
    if base is bool:
        return not field.default
    if base is int:
        return 3 if field.default is None else field.default + 1
    if base is float:
        return 0.25 if field.default in (None, 0.0) else field.default / 2
    raise AssertionError(f"give trainer.{field.name} a non-default value in SPECIAL")


def test_every_trainer_option_is_settable_from_a_config(tmp_path: Path) -> None:
    settable = [f for f in dataclasses.fields(TrainerConfig) if f.name != "seed"]
    values = {f.name: _another_value(f) for f in settable}
    raw = {"seed": 7, "data": {"dataset": "synthetic"}, "trainer": values}
    config = load_config(write_config(tmp_path, raw))
    built = trainer_config(config)
    for field in settable:
        assert getattr(built, field.name) == values[field.name] != field.default, field.name
    assert built.seed == 7
    assert built.precision == "bf16"
    assert set(yaml.safe_load(dump_config(config))["trainer"]) == set(TRAINER_OPTIONS)


def test_the_trainer_section_has_the_defaults_of_trainer_config() -> None:
    config = validate_config({"data": {"dataset": "synthetic"}})
    assert set(TrainerConfig.option_names()) - set(TRAINER_OPTIONS) == {"seed"}
    assert list(config.trainer) == list(TRAINER_OPTIONS)
    assert trainer_config(config) == TrainerConfig()


def test_trainer_values_take_their_field_type() -> None:
    config = validate_config({"data": {"dataset": "synthetic"}, "trainer": {"lr": "1e-3"}})
    assert trainer_config(config).lr == 0.001  # YAML reads 1e-3 as a string


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"batch_size": 0}, "trainer.batch_size must be a positive integer, got 0"),
        ({"lr": "fast"}, "trainer.lr: Input should be a valid number"),
        ({"precision": "fp8"}, "trainer.precision: Input should be 'fp32', 'bf16' or 'fp16'"),
        ({"grad_clip": -1.0}, "trainer.grad_clip must be a finite number > 0, got -1.0"),
        ({"seed": 1}, "trainer.seed: unknown key"),
        ({"speed": 1}, "trainer.speed: unknown key"),
    ],
)
def test_a_bad_trainer_option_is_one_line_naming_the_file_and_key(
    tmp_path: Path, trainer: dict[str, object], message: str
) -> None:
    path = write_config(tmp_path, {"data": {"dataset": "synthetic"}, "trainer": trainer})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "key", "allowed"),
    [
        ({"data": {"dataset": "imagenet"}}, "data.dataset", DATASETS),
        ({"method": {"name": "pcgrad"}}, "method.name", METHODS),
        ({"method": {"inner": "pcgrad"}}, "method.inner", INNER_METHODS),
        ({"compare": {"methods": ["pcgrad+nmt"]}}, "compare.methods", COMPARED_METHODS),
    ],
)
def test_unknown_names_list_the_registry(
    section: dict[str, Any], key: str, allowed: tuple[str, ...]
) -> None:
    raw: dict[str, Any] = {"data": {"dataset": "synthetic"}, **section}
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, source="run.yaml")
    message = str(caught.value)
    assert message.startswith(f"run.yaml: {key}: ")
    assert ", ".join(allowed) in message
    assert "pcgrad" in message or "imagenet" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "path",
    sorted(CONFIGS.glob("*.yaml")) + sorted(PACKAGED.glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_configs_are_valid(path: Path) -> None:
    config = load_config(path)
    assert config.data.dataset in DATASETS
    assert trainer_config(config).seed == config.seed


def test_the_ranking_configs_run_their_protocols() -> None:
    assert load_config(CONFIGS / "ranking_lambdarank.yaml").data.dataset == "lambdarank"
    table3 = load_config(CONFIGS / "ranking_table3.yaml")
    assert table3.compare.protocol == "table3"
    assert table3.model.name == "single_score"


def test_method_variants_of_a_comparison() -> None:
    nmt = MethodSection(name="nmt", options={"tolerance": 0.02}, inner="emtl")
    assert nmt.variant("nmt", ["a", "b"]).label == "emtl+nmt"  # plain nmt keeps the inner
    famo = nmt.variant("famo+nmt", ["a", "b"])
    assert (famo.name, famo.inner, famo.options, famo.priorities) == (
        "nmt",
        "famo",
        {"tolerance": 0.02},
        ["a", "b"],
    )
    equal = nmt.variant("equal", ["a", "b"])
    assert (equal.name, equal.inner, equal.options, equal.priorities) == ("equal", None, {}, None)
    fixed = MethodSection(name="fixed", weights={"a": 1.0, "b": 2.0}).variant("fixed", ["a", "b"])
    assert fixed.weights == {"a": 1.0, "b": 2.0}
