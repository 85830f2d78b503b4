"""Shared-Bottom (Caruana, 1997): one shared MLP, one tower per task."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor, nn

from nomoretuning.models.base import MultiTaskModel
from nomoretuning.models.checks import check_dims
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.options import ModelOptionArguments

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["SharedBottom"]


class SharedBottom(MultiTaskModel):
    """Embeddings -> shared bottom MLP -> one tower MLP + linear output per task.

    Shared: the embeddings and the bottom. Task parameters: the task's tower.
    ``shared_representation``: the bottom output, ``[B, bottom_dims[-1]]``.

    Args:
        features: the inputs.
        tasks: task names.
        bottom_dims: hidden widths of the shared bottom (at least one layer).
        tower_dims: hidden widths of each tower before its linear output (may be empty).
        **options: the shared `ModelOptions` (embedding width, activation, dropout, ...).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField
        >>> cfg = FeatureConfig((SparseField("uid", 10), SparseField("item", 20)), ("age",))
        >>> model = SharedBottom(cfg, ["click", "like"], bottom_dims=(16,), tower_dims=(8,))
        >>> out = model(torch.tensor([[1, 2], [3, 4]]), torch.randn(2, 1))
        >>> {task: tuple(logits.shape) for task, logits in out.items()}
        {'click': (2,), 'like': (2,)}
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
        self.embedding = self._embedding()
        self.bottom = self._mlp(self.embedding.output_dim, self.bottom_dims)
        self.towers = nn.ModuleList(
            self._mlp(self.bottom.output_dim, self.tower_dims, out_dim=1) for _ in self.tasks
        )

    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        hidden = self.bottom(self.embedding(sparse, dense))
        self._shared_rep = hidden
        return {
            task: tower(hidden).squeeze(-1)
            for task, tower in zip(self.tasks, self.towers, strict=True)
        }

    def _task_modules(self, task: str) -> list[nn.Module]:
        return [self.towers[self.tasks.index(task)]]
