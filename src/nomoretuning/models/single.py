"""Baselines without task-specific sharing: SingleTask (nothing shared) and SingleScore (everything
shared, one logit for every task, for learning to rank)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from nomoretuning.checks import positive_number
from nomoretuning.models.base import MultiTaskModel
from nomoretuning.models.checks import check_dims
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.options import ModelOptionArguments

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["SingleScore", "SingleTask"]


class _TaskNetwork(nn.Module):
    """One task's own embeddings, bottom MLP and tower (a one-task Shared-Bottom)."""

    def __init__(self, model: SingleTask) -> None:
        super().__init__()
        self.embedding = model._embedding()
        self.bottom = model._mlp(self.embedding.output_dim, model.bottom_dims)
        self.tower = model._mlp(self.bottom.output_dim, model.tower_dims, out_dim=1)

    def hidden(self, sparse: Tensor, dense: Tensor) -> Tensor:
        """The bottom output ``[B, H]``."""
        return self.bottom(self.embedding(sparse, dense))

    def logits(self, hidden: Tensor) -> Tensor:
        """The tower's logits ``[B]`` from the bottom output."""
        return self.tower(hidden).squeeze(-1)


class SingleTask(MultiTaskModel):
    """The single-task baseline: an independent network per task (own embeddings, bottom MLP and
    tower, i.e. a one-task :class:`SharedBottom` each); nothing is shared.

    ``shared_parameters()`` is empty; ``task_parameters(t)`` is all of task t's network.
    ``shared_representation``: nothing is shared, so this is the stack of every task's bottom
    output, ``[B, K, bottom_dims[-1]]`` (slot k is task k's); a task's loss only reaches its own
    slot, so per-task gradient norms against it are still each task's own. (Because the towers
    read the stack, task A's backward sends exact zeros, not ``None``, into task B's network.)
    ``regularization()`` sums the L2 of every task's embeddings.

    Args:
        features: the inputs.
        tasks: task names.
        bottom_dims: hidden widths of each task's bottom (at least one layer).
        tower_dims: hidden widths of each task's tower before its linear output (may be empty).
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = SingleTask(cfg, ["click", "like"], bottom_dims=(8,), tower_dims=())
        >>> out = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> out["click"].shape, model.shared_parameters()
        (torch.Size([2]), [])
    """

    def __init__(
        self,
        features: FeatureConfig,
        tasks: Sequence[str],
        *,
        bottom_dims: Sequence[int] = (512, 512, 512),
        tower_dims: Sequence[int] = (128, 64),
        **options: Unpack[ModelOptionArguments],
    ) -> None:
        super().__init__(features, tasks, **options)
        name = type(self).__name__
        self.bottom_dims = check_dims(bottom_dims, name, "bottom_dims", allow_empty=False)
        self.tower_dims = check_dims(tower_dims, name, "tower_dims")
        self.networks = nn.ModuleList(_TaskNetwork(self) for _ in self.tasks)

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        networks = cast(list[_TaskNetwork], list(self.networks))
        stacked = torch.stack([net.hidden(sparse, dense) for net in networks], dim=1)
        self._shared_rep = stacked
        return {
            task: net.logits(stacked[:, k])
            for k, (task, net) in enumerate(zip(self.tasks, networks, strict=True))
        }

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.networks[self.tasks.index(task)]]


class SingleScore(MultiTaskModel):
    """One score for every task (learning to rank): embeddings -> MLP -> one linear logit, returned
    under every task key (the same tensor object).

    Every parameter is shared; ``task_parameters(t)`` is empty.
    ``shared_representation``: the last hidden layer, ``[B, hidden_dims[-1]]`` (the embedding
    output when ``hidden_dims`` is empty).

    Args:
        features: the inputs.
        tasks: task names (the keys of the output; the logits are identical).
        hidden_dims: hidden widths (may be empty: a linear model). The default is the
            Shared-Bottom stack followed by one tower, ``(512, 512, 512, 128, 64)``.
        input_noise: standard deviation of the Gaussian noise added to the dense inputs in
            training mode only (a regularizer of neural rankers on standardized LETOR features,
            Qin et al., ICLR 2021); ``0`` (default) adds none. Evaluation is never noisy.
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("query", 10),), ("bm25",))
        >>> model = SingleScore(cfg, ["click", "purchase"], hidden_dims=(8,))
        >>> out = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> out["click"] is out["purchase"], out["click"].shape
        (True, torch.Size([2]))
    """

    def __init__(
        self,
        features: FeatureConfig,
        tasks: Sequence[str],
        *,
        hidden_dims: Sequence[int] = (512, 512, 512, 128, 64),
        input_noise: float = 0.0,
        **options: Unpack[ModelOptionArguments],
    ) -> None:
        super().__init__(features, tasks, **options)
        name = type(self).__name__
        self.hidden_dims = check_dims(hidden_dims, name, "hidden_dims")
        self.input_noise = positive_number(input_noise, f"{name}: input_noise", allow_zero=True)
        self.embedding = self._embedding()
        self.hidden = self._mlp(self.embedding.output_dim, self.hidden_dims)
        self.output = self._mlp(self.hidden.output_dim, (), out_dim=1)

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        if self.training and self.input_noise > 0 and dense.shape[-1] > 0:
            dense = dense + self.input_noise * torch.randn_like(dense)
        hidden = self.hidden(self.embedding(sparse, dense))
        self._shared_rep = hidden
        score = self.output(hidden).squeeze(-1)
        return dict.fromkeys(self.tasks, score)

    def _task_modules(self, task: str) -> list[nn.Module]:
        return []
