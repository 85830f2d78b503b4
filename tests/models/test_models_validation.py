"""Bad arguments raise ConfigError, bad inputs ValueError (ConfigError is one), each with a
one-line message naming the value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from models_helpers import FEATURES, SMALL, TASKS, batch, small_model

from nomoretuning.errors import ConfigError
from nomoretuning.models import (
    MODEL_NAMES,
    FeatureConfig,
    SparseField,
    build_model,
    model_arguments,
)


def _raises(match: str, error: type[ValueError] = ConfigError) -> Any:
    return pytest.raises(error, match=match)


def _one_line(error: pytest.ExceptionInfo[ValueError]) -> None:
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------- construction
BAD_TASKS = [
    ([], "at least one task"),
    ((), "at least one task"),
    ("ab", "got the string 'ab'"),
    (["a", "a"], "task 'a' appears more than once"),
    (["a", ""], "non-empty strings, got ''"),
    (["a", 3], "non-empty strings, got 3"),
    (None, "sequence of task names, got NoneType"),
]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(("tasks", "match"), BAD_TASKS)
def test_bad_tasks(name: str, tasks: Any, match: str) -> None:
    with _raises(match) as error:
        build_model(name, FEATURES, tasks)
    _one_line(error)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_features(name: str) -> None:
    with _raises("features must be a nomoretuning.models.FeatureConfig, got dict"):
        build_model(name, {"sparse": ()}, TASKS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: SparseField("user", 2.5), "'user': vocab_size must be an integer, got 2.5"),
        (lambda: SparseField("user", True), "vocab_size must be an integer, got True"),
        (lambda: SparseField("", 3), "name must be a non-empty string, got ''"),
        (lambda: FeatureConfig((), "age"), "dense must be a sequence, got the single 'age'"),
        (lambda: FeatureConfig(SparseField("u", 3)), "sparse must be a sequence"),
        (lambda: FeatureConfig(("u",)), "sparse holds SparseField, got 'u'"),
        (lambda: FeatureConfig((), ("age", 3)), "dense column names are strings, got 3"),
    ],
)
def test_bad_feature_descriptions(build: Any, match: str) -> None:
    with _raises(match) as error:
        build()
    _one_line(error)


def test_feature_descriptions_take_lists_and_numpy_sizes() -> None:
    features = FeatureConfig([SparseField("u", np.int64(3))], ["age"])
    assert features.sparse == (SparseField("u", 3),) and features.dense == ("age",)
    assert type(features.sparse[0].vocab_size) is int


COMMON_BAD = [
    ("embedding_dim", 0, "embedding_dim must be a positive integer, got 0"),
    ("embedding_dim", -2, "embedding_dim must be a positive integer, got -2"),
    ("embedding_dim", 2.5, "embedding_dim must be a positive integer, got 2.5"),
    ("embedding_dim", True, "embedding_dim must be a positive integer, got True"),
    ("embedding_l2", -1e-6, r"embedding_l2 must be a finite number >= 0, got -1e-06"),
    ("embedding_l2", float("nan"), "embedding_l2 must be a finite number >= 0, got nan"),
    ("embedding_init_std", 0.0, "embedding_init_std must be a finite number > 0, got 0.0"),
    ("dropout", 1.0, r"dropout must be a number in \[0, 1\), got 1.0"),
    ("dropout", -0.1, r"dropout must be a number in \[0, 1\), got -0.1"),
    ("activation", "sigmoid", r"activation must be one of \['relu', .*\], got 'sigmoid'"),
    ("batch_norm", "yes", "batch_norm must be True or False, got 'yes'"),
]


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(("key", "value", "match"), COMMON_BAD)
def test_bad_common_options(name: str, key: str, value: Any, match: str) -> None:
    with _raises(match) as error:
        small_model(name, **{key: value})
    _one_line(error)


def _dims_cases() -> list[tuple[str, str, Any, str]]:
    cases: list[tuple[str, str, Any, str]] = []
    for name in MODEL_NAMES:
        for key in SMALL[name]:
            if not key.endswith("_dims"):
                continue
            cases.append((name, key, (4, 0), rf"{key} must hold positive ints .* 0 in \(4, 0\)"))
            cases.append((name, key, (4, -3), f"{key} must hold positive ints"))
            cases.append((name, key, (4.0,), f"{key} must hold positive ints"))
            cases.append((name, key, "64", f"{key} must be a list of positive ints"))
            cases.append((name, key, 64, f"{key} must be a list of positive ints"))
            if key in ("bottom_dims", "expert_dims"):
                cases.append((name, key, (), f"{key} must list at least one layer width"))
    return cases


@pytest.mark.parametrize(("name", "key", "value", "match"), _dims_cases())
def test_bad_layer_widths(name: str, key: str, value: Any, match: str) -> None:
    with _raises(match) as error:
        small_model(name, **{key: value})
    _one_line(error)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("omoe", "num_experts"),
        ("mmoe", "num_experts"),
        ("ple", "num_levels"),
        ("ple", "num_specific_experts"),
        ("ple", "num_shared_experts"),
    ],
)
@pytest.mark.parametrize("value", [0, -1, 1.0, None])
def test_bad_counts(name: str, key: str, value: Any) -> None:
    with _raises(f"{key} must be a positive integer, got {value}") as error:
        small_model(name, **{key: value})
    _one_line(error)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_empty_tower_and_gate_widths_are_allowed(name: str) -> None:
    overrides = {k: () for k in SMALL[name] if k in ("tower_dims", "gate_dims", "hidden_dims")}
    model = small_model(name, **overrides)
    assert model(*batch(2))["a"].shape == (2,)


# ------------------------------------------------------------------------------- registry
def test_unknown_model_name() -> None:
    with _raises(r"unknown model 'mmoe2'; allowed: \['shared_bottom', 'omoe', 'mmoe'"):
        build_model("mmoe2", FEATURES, TASKS)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_unknown_keyword_argument(name: str) -> None:
    with _raises(rf"build_model\('{name}'\): unknown argument 'colour'; allowed: \[") as error:
        build_model(name, FEATURES, TASKS, colour="red")
    _one_line(error)


def test_registry_names_and_arguments() -> None:
    assert MODEL_NAMES == ("shared_bottom", "omoe", "mmoe", "ple", "single_task", "single_score")
    assert model_arguments("ple")["num_levels"] == 1
    assert model_arguments("mmoe")["num_experts"] == 8


# ------------------------------------------------------------------------------- forward
def _bad_inputs() -> list[tuple[str, Any, Any, str]]:
    sparse, dense = batch(4)
    return [
        ("sparse-not-tensor", sparse.tolist(), dense, "sparse must be a torch.Tensor, got list"),
        ("dense-not-tensor", sparse, None, "dense must be a torch.Tensor, got NoneType"),
        ("sparse-1d", sparse[:, 0], dense, r"sparse must have shape \[B, 2\] .* got \[4\]"),
        ("sparse-3-cols", torch.cat([sparse, sparse[:, :1]], 1), dense, r"got \[4, 3\]"),
        ("dense-1-col", sparse, dense[:, :1], r"dense must have shape \[B, 2\] .* got \[4, 1\]"),
        ("dense-3d", sparse, dense[:, :, None], r"dense must have shape \[B, 2\]"),
        ("batch-mismatch", sparse, dense[:3], "same batch size, got 4 and 3"),
        (
            "sparse-float",
            sparse.float(),
            dense,
            "integer tensor .*got torch.float32",
        ),
        ("sparse-int16", sparse.short(), dense, "got torch.int16"),
        (
            "dense-int",
            sparse,
            dense.long(),
            "dense must be a floating-point tensor, got",
        ),
        (
            "index-too-large",
            torch.tensor([[0, 1], [4, 7], [0, 0], [1, 1]]),
            dense,
            r"sparse column 1 \(field 'item'\) has index 7 at row 1; allowed 0..6",
        ),
        (
            "index-negative",
            torch.tensor([[0, 1], [1, 1], [-1, 0], [1, 1]]),
            dense,
            r"sparse column 0 \(field 'user'\) has index -1 at row 2; allowed 0..4",
        ),
    ]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(
    ("sparse", "dense", "match"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_forward_inputs(name: str, sparse: Any, dense: Any, match: str) -> None:
    model = small_model(name)
    with _raises(match, ValueError) as error:
        model(sparse, dense)
    _one_line(error)
    assert f"{type(model).__name__}.forward" in str(error.value)


def test_device_mismatch_is_reported() -> None:
    model = small_model("mmoe").to("meta")
    sparse, dense = batch(2)
    with _raises(
        r"sparse is on cpu but the model is on meta; move one with .to\(device\)", ValueError
    ):
        model(sparse, dense)


def test_empty_batch() -> None:
    features = FeatureConfig(dense=("x1",))
    model = small_model("mmoe", features=features)
    out = model(torch.zeros(0, 0, dtype=torch.int64), torch.zeros(0, 1))
    assert out["a"].shape == (0,)
