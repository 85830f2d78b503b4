"""Small configurations and batches shared by the model tests."""

from __future__ import annotations

from typing import Any

import torch

from nomoretuning.models import FeatureConfig, MultiTaskModel, SparseField, build_model

FEATURES = FeatureConfig(
    sparse=(SparseField("user", 5), SparseField("item", 7)),
    dense=("x1", "x2"),
)
"""2 sparse fields (12 embedding rows in all) and 2 dense columns."""

TASKS = ("a", "b")
EMB = 3  # embedding dim: the model input is 2 * 3 + 2 = 8 wide

SMALL: dict[str, dict[str, Any]] = {
    "shared_bottom": {"bottom_dims": (6,), "tower_dims": (4,)},
    "omoe": {"num_experts": 3, "expert_dims": (6,), "gate_dims": (4,), "tower_dims": (4,)},
    "mmoe": {"num_experts": 3, "expert_dims": (6,), "gate_dims": (4,), "tower_dims": (4,)},
    "ple": {
        "num_levels": 2,
        "num_specific_experts": 1,
        "num_shared_experts": 2,
        "expert_dims": (6,),
        "gate_dims": (4,),
        "tower_dims": (4,),
    },
    "single_task": {"bottom_dims": (6,), "tower_dims": (4,)},
    "single_score": {"hidden_dims": (6, 4)},
}
"""A small configuration of every registered model."""


def small_model(
    name: str,
    tasks: tuple[str, ...] = TASKS,
    features: FeatureConfig = FEATURES,
    **overrides: Any,
) -> MultiTaskModel:
    kwargs = {"embedding_dim": EMB, **SMALL[name], **overrides}
    return build_model(name, features, tasks, **kwargs)


def batch(
    size: int = 8, features: FeatureConfig = FEATURES, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random valid (sparse, dense) batch."""
    gen = torch.Generator().manual_seed(seed)
    columns = [torch.randint(f.vocab_size, (size,), generator=gen) for f in features.sparse]
    sparse = torch.stack(columns, dim=1) if columns else torch.zeros(size, 0, dtype=torch.int64)
    dense = torch.randn(size, features.num_dense, generator=gen)
    return sparse, dense


def linear(n_in: int, n_out: int) -> int:
    """Parameters of nn.Linear(n_in, n_out) with bias."""
    return n_in * n_out + n_out
