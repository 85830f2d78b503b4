"""PLE: Progressive Layered Extraction (Tang et al., RecSys 2020), stacked CGC levels.

Level ``l`` (0-based, ``L = num_levels``) has, per task, ``num_specific_experts`` task experts and
``num_shared_experts`` shared experts (MLPs with ``expert_dims``), and gates (MLP ``gate_dims`` then
a linear softmax layer):

- task k's gate mixes task k's experts and the shared experts (``s + n`` weights);
- on every level but the last, a shared gate mixes *all* experts (``K*s + n`` weights), as in the
  paper; its output is the next level's shared input.

Level 0 reads the embedding output everywhere; level ``l > 0`` gives task k's experts and gate the
output of task k's gate at level ``l-1``, and the shared experts and shared gate the output of the
shared gate at level ``l-1``. Task k's tower reads task k's gate output at the last level. With
``num_levels=1`` this is CGC, the configuration STEM (and so the NMT paper) runs.

Which parameters are shared follows the gradient (see ``MultiTaskModel``): a task expert of a level
before the last feeds that level's shared gate, so every task's loss reaches it; it is *shared*.
Task k's parameters are its tower, its gates at the last two levels and its experts at the last
level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

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

__all__ = ["PLE"]


class _Level(nn.Module):
    """One CGC level: task experts, shared experts, task gates and (unless last) a shared gate."""

    def __init__(self, model: PLE, in_dim: int, last: bool) -> None:
        super().__init__()
        k, s, n = len(model.tasks), model.num_specific_experts, model.num_shared_experts
        dims = model.expert_dims

        def experts(count: int) -> nn.ModuleList:
            return nn.ModuleList(model._mlp(in_dim, dims) for _ in range(count))

        self.task_experts = nn.ModuleList(experts(s) for _ in range(k))
        self.shared_experts = experts(n)
        self.task_gates = nn.ModuleList(
            model._mlp(in_dim, model.gate_dims, out_dim=s + n) for _ in range(k)
        )
        self.shared_gate = None if last else model._mlp(in_dim, model.gate_dims, out_dim=k * s + n)

    def task_stack(self, k: int, x: Tensor) -> Tensor:
        """Task k's expert outputs on ``x``, stacked as ``[B, s, H]``."""
        experts = cast(nn.ModuleList, self.task_experts[k])
        return torch.stack([expert(x) for expert in experts], dim=1)

    def shared_stack(self, x: Tensor) -> Tensor:
        """The shared experts' outputs on ``x``, stacked as ``[B, n, H]``."""
        return torch.stack([expert(x) for expert in self.shared_experts], dim=1)


class PLE(MultiTaskModel):
    """Progressive Layered Extraction: ``num_levels`` CGC levels, then one tower per task.

    Shared and task parameters: see the module docstring.
    ``shared_representation``: the outputs of the last level's shared experts, stacked,
    ``[B, num_shared_experts, expert_dims[-1]]`` (the shared tensor the final task gates read).
    ``gate_weights``: ``"level{l}/{task}"`` -> ``[B, s + n]`` for every level and task, and
    ``"level{l}/shared"`` -> ``[B, K*s + n]`` for every level but the last (experts ordered task
    by task, then the shared ones).

    Args:
        features: the inputs.
        tasks: task names.
        num_levels: number of CGC levels (default 1, as STEM).
        num_specific_experts: experts per task and level (default 1).
        num_shared_experts: shared experts per level (default 1).
        expert_dims: hidden widths of each expert (at least one layer).
        gate_dims: hidden widths of each gate before its linear softmax layer (may be empty).
        tower_dims: hidden widths of each tower before its linear output (may be empty).
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = PLE(cfg, ["click", "like"], num_levels=2, expert_dims=(8,), gate_dims=())
        >>> out = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> sorted(model.gate_weights)
        ['level0/click', 'level0/like', 'level0/shared', 'level1/click', 'level1/like']
        >>> model.gate_weights["level0/shared"].shape, model.shared_representation.shape
        (torch.Size([2, 3]), torch.Size([2, 1, 8]))
    """

    def __init__(
        self,
        features: FeatureConfig,
        tasks: Sequence[str],
        *,
        num_levels: int = 1,
        num_specific_experts: int = 1,
        num_shared_experts: int = 1,
        expert_dims: Sequence[int] = (512, 512, 512),
        gate_dims: Sequence[int] = (128, 64),
        tower_dims: Sequence[int] = (128, 64),
        **options: Unpack[ModelOptionArguments],
    ) -> None:
        super().__init__(features, tasks, **options)
        name = type(self).__name__
        self.num_levels = positive_int(num_levels, f"{name}: num_levels")
        self.num_specific_experts = positive_int(
            num_specific_experts, f"{name}: num_specific_experts"
        )
        self.num_shared_experts = positive_int(num_shared_experts, f"{name}: num_shared_experts")
        self.expert_dims = check_dims(expert_dims, name, "expert_dims", allow_empty=False)
        self.gate_dims = check_dims(gate_dims, name, "gate_dims")
        self.tower_dims = check_dims(tower_dims, name, "tower_dims")
        self.embedding = self._embedding()
        width = self.expert_dims[-1]
        self.levels = nn.ModuleList(
            _Level(self, self.embedding.output_dim if d == 0 else width, d == self.num_levels - 1)
            for d in range(self.num_levels)
        )
        self.towers = nn.ModuleList(
            self._mlp(width, self.tower_dims, out_dim=1) for _ in self.tasks
        )

    def _has_gates(self) -> bool:
        return True

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        x = self.embedding(sparse, dense)
        task_inputs = [x] * len(self.tasks)
        shared_input = x
        gates: dict[str, Tensor] = {}
        shared_stack = x  # replaced at level 0
        for depth, level in enumerate(self.levels):
            assert isinstance(level, _Level)
            task_stacks = [level.task_stack(k, inp) for k, inp in enumerate(task_inputs)]
            shared_stack = level.shared_stack(shared_input)
            next_inputs: list[Tensor] = []
            for task, gate, inp, own in zip(
                self.tasks, level.task_gates, task_inputs, task_stacks, strict=True
            ):
                weights = torch.softmax(gate(inp), dim=-1)
                gates[f"level{depth}/{task}"] = weights
                next_inputs.append(mix_experts(weights, torch.cat([own, shared_stack], dim=1)))
            if level.shared_gate is not None:
                weights = torch.softmax(level.shared_gate(shared_input), dim=-1)
                gates[f"level{depth}/shared"] = weights
                shared_input = mix_experts(weights, torch.cat([*task_stacks, shared_stack], dim=1))
            task_inputs = next_inputs
        self._shared_rep = shared_stack
        self._gates = gates
        return {
            task: tower(inp).squeeze(-1)
            for task, tower, inp in zip(self.tasks, self.towers, task_inputs, strict=True)
        }

    def _task_modules(self, task: str) -> list[nn.Module]:
        i = self.tasks.index(task)
        last = self.num_levels - 1
        modules: list[nn.Module] = [self.towers[i]]
        for depth, level in enumerate(self.levels):
            assert isinstance(level, _Level)
            if depth >= last - 1:
                modules.append(level.task_gates[i])
            if depth == last:
                modules.append(level.task_experts[i])
        return modules
