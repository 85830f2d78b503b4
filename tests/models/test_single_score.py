"""SingleScore's Gaussian input noise: added to the dense inputs in training mode only, exactly
``input_noise * torch.randn_like(dense)`` from torch's seeded generator; off by default."""

from __future__ import annotations

import pytest
import torch
from models_helpers import FEATURES, batch, small_model

from nomoretuning.errors import ConfigError
from nomoretuning.models import FeatureConfig, SingleScore, build_model, model_arguments
from nomoretuning.serving.run_files import ModelSpec

DENSE = FeatureConfig(dense=("x1", "x2", "x3"))


def test_off_by_default_training_output_equals_evaluation() -> None:
    assert model_arguments("single_score")["input_noise"] == 0.0
    torch.manual_seed(0)
    model = small_model("single_score")
    assert isinstance(model, SingleScore) and model.input_noise == 0.0
    sparse, dense = batch()
    model.train()
    trained = model(sparse, dense)["a"]
    model.eval()
    assert torch.equal(trained, model(sparse, dense)["a"])


def test_training_adds_exactly_the_seeded_noise_to_the_dense_inputs() -> None:
    torch.manual_seed(0)
    model = build_model("single_score", DENSE, ["relevance"], hidden_dims=(), input_noise=0.5)
    dense = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    sparse = torch.zeros(6, 0, dtype=torch.int64)
    model.train()
    torch.manual_seed(7)
    noisy = model(sparse, dense)["relevance"]
    torch.manual_seed(7)
    expected_input = dense + 0.5 * torch.randn_like(dense)
    model.eval()
    assert torch.equal(noisy, model(sparse, expected_input)["relevance"])
    # evaluation is never noisy, and the same seed gives the same noise
    assert torch.equal(model(sparse, dense)["relevance"], model(sparse, dense)["relevance"])
    assert not torch.equal(noisy, model(sparse, dense)["relevance"])
    model.train()
    torch.manual_seed(7)
    assert torch.equal(model(sparse, dense)["relevance"], noisy)


def test_the_noise_is_added_to_the_dense_inputs_only() -> None:
    torch.manual_seed(0)
    model = small_model("single_score", input_noise=1.0)
    sparse, _ = batch()
    no_dense = torch.zeros(8, 2)
    model.train()
    torch.manual_seed(3)
    out = model(sparse, no_dense)["a"]
    torch.manual_seed(3)
    noise = torch.randn_like(no_dense)
    model.eval()
    assert torch.equal(out, model(sparse, no_dense + noise)["a"])
    sparse_only = FeatureConfig(sparse=FEATURES.sparse)
    torch.manual_seed(0)
    model = build_model("single_score", sparse_only, ["a"], hidden_dims=(4,), input_noise=1.0)
    model.train()
    assert model(sparse, torch.zeros(8, 0))["a"].shape == (8,)  # nothing to perturb


def test_the_option_is_checked_and_saved_with_the_model_spec() -> None:
    with pytest.raises(ConfigError, match="SingleScore: input_noise must be a finite number >= 0"):
        build_model("single_score", DENSE, ["a"], input_noise=-0.1)
    spec = ModelSpec("single_score", {"hidden_dims": [4], "input_noise": 0.2}, ("a",), DENSE)
    model = spec.build()
    assert isinstance(model, SingleScore) and model.input_noise == 0.2
