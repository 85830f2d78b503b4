"""Mixture-of-experts models: OMoE (one gate for all tasks) and MMoE (one gate per task).

Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts"
(KDD 2018). Every expert is an MLP on the embedding output; a gate is an MLP (``gate_dims``) on the
same input followed by a linear layer to ``num_experts`` logits and a softmax; a task's tower sees
the gate-weighted sum of the expert outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nomoretuning.checks import positive_int
from nomoretuning.models.base import MultiTaskModel
from nomoretuning.models.checks import check_dims
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.layers import mix_experts
from nomoretuning.models.options import ModelOptionArguments

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["MMoE", "OMoE"]


class _MixtureOfExperts(MultiTaskModel):
    """Common construction of OMoE and MMoE: embeddings, experts, towers (gates in subclasses)."""

    def __init__(
        self,
        features: FeatureConfig,
        tasks: Sequence[str],
        *,
        num_experts: int = 8,
        expert_dims: Sequence[int] = (512, 512, 512),
        gate_dims: Sequence[int] = (128, 64),
        tower_dims: Sequence[int] = (128, 64),
        **options: Unpack[ModelOptionArguments],
    ) -> None:
        super().__init__(features, tasks, **options)
        name = type(self).__name__
        self.num_experts = positive_int(num_experts, f"{name}: num_experts")
        self.expert_dims = check_dims(expert_dims, name, "expert_dims", allow_empty=False)
        self.gate_dims = check_dims(gate_dims, name, "gate_dims")
        self.tower_dims = check_dims(tower_dims, name, "tower_dims")
        self.embedding = self._embedding()
        in_dim = self.embedding.output_dim
        self.experts = nn.ModuleList(
            self._mlp(in_dim, self.expert_dims) for _ in range(self.num_experts)
        )
        self.towers = nn.ModuleList(
            self._mlp(self.expert_dims[-1], self.tower_dims, out_dim=1) for _ in self.tasks
        )
        self._add_gates()

    def _add_gates(self) -> None:
        """Builds the gate(s); called once the experts and towers are built."""
        raise NotImplementedError

    def _gate(self) -> nn.Module:
        return self._mlp(self.embedding.output_dim, self.gate_dims, out_dim=self.num_experts)

    def _experts(self, x: Tensor) -> Tensor:
        """Expert outputs stacked as ``[B, num_experts, H]``."""
        return torch.stack([expert(x) for expert in self.experts], dim=1)

    def _has_gates(self) -> bool:
        return True


class OMoE(_MixtureOfExperts):
    """One-gate mixture of experts: a single gate mixes the experts for every task.

    Shared: embeddings, experts, the gate. Task parameters: the task's tower.
    ``shared_representation``: the gate-weighted mixture of the experts, ``[B, expert_dims[-1]]``
    (the one tensor every tower reads; all of a task's gradient into shared parameters flows through
    it, which the expert outputs alone would miss on the gate's path).
    ``gate_weights``: ``{task: [B, num_experts]}``, the same tensor under every task.

    Args:
        features: the inputs.
        tasks: task names.
        num_experts: number of experts (default 8, as STEM).
        expert_dims: hidden widths of each expert (at least one layer).
        gate_dims: hidden widths of the gate before its linear softmax layer (may be empty).
        tower_dims: hidden widths of each tower before its linear output (may be empty).
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = OMoE(cfg, ["click", "like"], num_experts=3, expert_dims=(8,), gate_dims=())
        >>> out = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> out["like"].shape, model.gate_weights["click"].shape
        (torch.Size([2]), torch.Size([2, 3]))
    """

    def _add_gates(self) -> None:
        self.gate = self._gate()

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        x = self.embedding(sparse, dense)
        weights = torch.softmax(self.gate(x), dim=-1)
        mixed = mix_experts(weights, self._experts(x))
        self._shared_rep = mixed
        self._gates = dict.fromkeys(self.tasks, weights)
        return {
            task: tower(mixed).squeeze(-1)
            for task, tower in zip(self.tasks, self.towers, strict=True)
        }

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[self.tasks.index(task)]]


class MMoE(_MixtureOfExperts):
    """Multi-gate mixture of experts: each task has its own gate over the shared experts.

    Shared: embeddings, experts. Task parameters: the task's gate and tower.
    ``shared_representation``: the expert outputs stacked, ``[B, num_experts, expert_dims[-1]]``.
    ``gate_weights``: ``{task: [B, num_experts]}``.

    Args:
        features: the inputs.
        tasks: task names.
        num_experts: number of experts (default 8, as STEM).
        expert_dims: hidden widths of each expert (at least one layer).
        gate_dims: hidden widths of each gate before its linear softmax layer (may be empty:
            the original MMoE gate is linear).
        tower_dims: hidden widths of each tower before its linear output (may be empty).
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = MMoE(cfg, ["click", "like"], num_experts=3, expert_dims=(8,), gate_dims=())
        >>> _ = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> model.shared_representation.shape
        torch.Size([2, 3, 8])
        >>> bool(torch.allclose(model.gate_weights["like"].sum(-1), torch.ones(2)))
        True
    """

    def _add_gates(self) -> None:
        self.gates = nn.ModuleList(self._gate() for _ in self.tasks)

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        x = self.embedding(sparse, dense)
        experts = self._experts(x)
        self._shared_rep = experts
        self._gates = {}
        out: dict[str, Tensor] = {}
        for task, gate, tower in zip(self.tasks, self.gates, self.towers, strict=True):
            weights = torch.softmax(gate(x), dim=-1)
            self._gates[task] = weights
            out[task] = tower(mix_experts(weights, experts)).squeeze(-1)
        return out

    def _task_modules(self, task: str) -> list[nn.Module]:
        i = self.tasks.index(task)
        return [self.gates[i], self.towers[i]]
