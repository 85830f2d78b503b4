"""Multi-task recommendation models: Shared-Bottom, OMoE, MMoE, PLE, SingleTask, SingleScore.

Every model is built as ``Model(features, tasks, **options)`` and called as
``model(sparse [B, S] int64, dense [B, D] float) -> {task: logits [B]}``; it exposes
``shared_parameters()``, ``task_parameters(task)``, ``shared_representation`` and
``gate_weights`` (after a forward), ``regularization()`` (embedding L2) and ``tasks``.

Example:
    >>> import torch
    >>> from nomoretuning.models import FeatureConfig, SparseField, build_model
    >>> cfg = FeatureConfig((SparseField("uid", 100), SparseField("item", 50)), ("age",))
    >>> model = build_model("mmoe", cfg, ["click", "like"], num_experts=2, expert_dims=(16,))
    >>> out = model(torch.tensor([[3, 7], [9, 1]]), torch.randn(2, 1))
    >>> sorted(out), out["click"].shape
    (['click', 'like'], torch.Size([2]))
"""

from nomoretuning.models.base import MultiTaskModel
from nomoretuning.models.features import FeatureConfig, SparseField
from nomoretuning.models.layers import ACTIVATIONS, MLP, FeatureEmbedding, mix_experts
from nomoretuning.models.moe import MMoE, OMoE
from nomoretuning.models.options import ModelOptions
from nomoretuning.models.ple import PLE
from nomoretuning.models.registry import MODEL_NAMES, MODELS, build_model, model_arguments
from nomoretuning.models.shared_bottom import SharedBottom
from nomoretuning.models.single import SingleScore, SingleTask

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "MODEL_NAMES",
    "PLE",
    "FeatureConfig",
    "FeatureEmbedding",
    "MMoE",
    "ModelOptions",
    "MultiTaskModel",
    "OMoE",
    "SharedBottom",
    "SingleScore",
    "SingleTask",
    "SparseField",
    "build_model",
    "mix_experts",
    "model_arguments",
]
