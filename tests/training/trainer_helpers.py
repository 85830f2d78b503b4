"""A toy two-task dataset and a tiny MMoE shared by the trainer's tests."""

from __future__ import annotations

import torch

from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.models import FeatureConfig, SparseField, build_model
from nomoretuning.training.trainer import TrainerConfig


def split(n: int, gen: torch.Generator) -> TensorSplit:
    sparse = torch.randint(0, 10, (n, 2), generator=gen)
    dense = torch.randn(n, 2, generator=gen)
    base = dense[:, 0] + 0.3 * (sparse[:, 0] % 3).float()
    like = (base + 0.5 * torch.randn(n, generator=gen) > 0).float()
    finish = (dense[:, 1] - 0.5 * base + 0.5 * torch.randn(n, generator=gen) > 0).float()
    return TensorSplit(sparse, dense, {"like": like, "finish": finish})


def toy_dataset() -> PreparedDataset:
    gen = torch.Generator().manual_seed(0)
    features = FeatureConfig((SparseField("a", 10), SparseField("b", 10)), ("x", "y"))
    return PreparedDataset(
        "toy", ("like", "finish"), features, split(640, gen), split(200, gen), split(200, gen)
    )


def toy_model(dataset: PreparedDataset, seed: int = 0, dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(
        "mmoe",
        dataset.features,
        dataset.tasks,
        num_experts=2,
        expert_dims=(8,),
        gate_dims=(),
        tower_dims=(4,),
        embedding_dim=4,
        dropout=dropout,
    )


def toy_config(**kwargs: object) -> TrainerConfig:
    values: dict[str, object] = {
        "batch_size": 64,
        "eval_every": 4,
        "patience": 2,
        "max_epochs": 3,
        "lr": 0.01,
        "eval_batch_size": 128,
        "progress": False,
    }
    values.update(kwargs)
    return TrainerConfig(**values)  # type: ignore[arg-type]
