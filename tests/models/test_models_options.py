"""ModelOptions: one set of shared options (defaults, checks) taken by every architecture."""

from __future__ import annotations

import pytest
from models_helpers import EMB, FEATURES, SMALL, TASKS, small_model

from nomoretuning.errors import ConfigError
from nomoretuning.models import MODEL_NAMES, MMoE, ModelOptions, model_arguments

STEM_DEFAULTS = {
    "embedding_dim": 16,
    "embedding_l2": 1e-6,
    "embedding_init_std": 1e-4,
    "activation": "relu",
    "dropout": 0.0,
    "batch_norm": False,
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_lists_the_shared_options_after_its_own(name: str) -> None:
    arguments = model_arguments(name)
    assert list(arguments)[: len(arguments) - 6] == [k for k in arguments if k not in STEM_DEFAULTS]
    assert {k: arguments[k] for k in list(arguments)[-6:]} == STEM_DEFAULTS
    assert set(SMALL[name]) <= set(arguments)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_flat_options_reach_the_model(name: str) -> None:
    model = small_model(name, dropout=0.25, activation="tanh", batch_norm=True)
    expected = ModelOptions(embedding_dim=EMB, dropout=0.25, activation="tanh", batch_norm=True)
    assert model.options == expected
    assert model.embedding_l2 == expected.embedding_l2


def test_direct_construction_takes_flat_options() -> None:
    model = MMoE(FEATURES, TASKS, num_experts=2, expert_dims=(4,), embedding_dim=8)
    assert model.options.embedding_dim == 8 and model.num_experts == 2
    with pytest.raises(TypeError, match="colour"):
        MMoE(FEATURES, TASKS, colour="red")  # type: ignore[call-arg]


def test_checked_converts_and_names_the_model() -> None:
    options = ModelOptions.checked("PLE", embedding_l2=0, dropout=0)
    assert (options.embedding_l2, options.dropout) == (0.0, 0.0)
    assert isinstance(options.embedding_l2, float)
    with pytest.raises(ConfigError, match=r"^PLE: embedding_init_std must be a finite number > 0"):
        ModelOptions.checked("PLE", embedding_init_std=-1.0)
