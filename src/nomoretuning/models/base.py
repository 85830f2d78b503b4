"""The base class of every model: input checks, task bookkeeping, shared/task parameters, L2.

A subclass builds its layers, implements ``_forward(sparse, dense) -> {task: logits [B]}`` (the
inputs are already checked; ``dense`` is cast to the parameters' dtype), records
``self._shared_rep`` (and ``self._gates`` if it has gates), and says which modules belong to one
task only in ``_task_modules(task)``. Everything else is shared.

Shared vs task parameters (the definition the tests check with gradients): a parameter is a *task
parameter* of task t if only task t's loss can give it a gradient; every other parameter is
*shared* (its gradient can come from more than one task). The two sets partition
``model.parameters()``.

The options shared by every model (embedding width, L2 and initialization, activation, dropout,
batch norm) are a `ModelOptions`, given as flat keyword arguments and kept in ``model.options``.

Embedding L2 (``regularization()``), with ``lambda = embedding_l2`` and ``e_{b,j}`` the vector
of field j looked up for row b in the last forward (every embedding table of the model, so
SingleTask counts each task's tables):

    regularization = lambda * (1 / B) * sum_b sum_j ||e_{b,j}||_2^2

A row that appears several times in the batch is counted each time (frequency-weighted L2), and
rows not in the batch are not penalized. It is differentiable and on the parameters' device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nomoretuning.models.checks import check_features, check_model_tasks
from nomoretuning.models.features import FeatureConfig
from nomoretuning.models.layers import MLP, FeatureEmbedding
from nomoretuning.models.options import ModelOptionArguments, ModelOptions

if TYPE_CHECKING:
    from typing import Unpack

__all__ = ["MultiTaskModel"]

_SPARSE_DTYPES = (torch.int64, torch.int32)


def _tracing() -> bool:
    """Whether the forward runs under ``torch.export`` / ``torch.jit.trace`` (an export), where a
    data-dependent check cannot run; the serving wrapper maps out-of-range ids to OOV instead."""
    return bool(torch.compiler.is_compiling() or torch.jit.is_tracing())


class MultiTaskModel(nn.Module):
    """Base of every model: ``model(sparse, dense) -> {task: logits [B]}``.

    Args:
        features: the input description (sparse fields, dense columns).
        tasks: task names, distinct, in the order the outputs are returned.
        **options: the `ModelOptions` (``embedding_dim``, ``embedding_l2``,
            ``embedding_init_std``, ``activation``, ``dropout``, ``batch_norm``).

    Attributes:
        tasks: the task names.
        features: the input description.
        options: the checked `ModelOptions`.
        embedding_l2: the L2 weight (``options.embedding_l2``).

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField, SharedBottom
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = SharedBottom(cfg, ["ctr"], bottom_dims=(8,), tower_dims=())
        >>> out = model(torch.tensor([[1], [2]]), torch.randn(2, 1))
        >>> out["ctr"].shape, model.shared_representation.shape
        (torch.Size([2]), torch.Size([2, 8]))
    """

    _vocab_sizes: Tensor

    def __init__(
        self,
        features: FeatureConfig,
        tasks: Sequence[str],
        **options: Unpack[ModelOptionArguments],
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.features = check_features(features, owner)
        self.tasks: tuple[str, ...] = check_model_tasks(tasks, owner)
        self.options = ModelOptions.checked(owner, **options)
        self.register_buffer(
            "_vocab_sizes",
            torch.tensor([f.vocab_size for f in self.features.sparse], dtype=torch.int64),
            persistent=False,
        )
        self._shared_rep: Tensor | None = None
        self._gates: dict[str, Tensor] | None = None

    @property
    def embedding_l2(self) -> float:
        """The weight of the embedding L2 (see the module docstring)."""
        return self.options.embedding_l2

    # ----------------------------------------------------------------- building helpers
    def _embedding(self) -> FeatureEmbedding:
        options = self.options
        return FeatureEmbedding(self.features, options.embedding_dim, options.embedding_init_std)

    def _mlp(self, in_dim: int, hidden_dims: Sequence[int], out_dim: int | None = None) -> MLP:
        options = self.options
        return MLP(
            in_dim,
            hidden_dims,
            out_dim=out_dim,
            activation=options.activation,
            dropout=options.dropout,
            batch_norm=options.batch_norm,
        )

    # ----------------------------------------------------------------- to implement
    def _forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def _task_modules(self, task: str) -> list[nn.Module]:
        """The modules whose parameters only ``task``'s loss can reach."""
        raise NotImplementedError

    # ----------------------------------------------------------------- public API
    def forward(self, sparse: Tensor, dense: Tensor) -> dict[str, Tensor]:
        """Checks the inputs and returns ``{task: logits [B]}`` (no sigmoid).

        Raises:
            ValueError: wrong type, shape, dtype or device of ``sparse``/``dense``, or an index
                outside a field's vocabulary.
        """
        self._check_inputs(sparse, dense)
        self._shared_rep = None
        self._gates = None
        for module in self.modules():
            if isinstance(module, FeatureEmbedding):
                module.clear()
        return self._forward(sparse, dense.to(self._param_dtype()))

    @property
    def shared_representation(self) -> Tensor:
        """The shared tensor of the last forward that feeds the task-specific parts (each model
        documents which one); it is part of the autograd graph, so ``torch.autograd.grad(loss,
        model.shared_representation)`` works.

        Raises:
            RuntimeError: before the first forward.
        """
        if self._shared_rep is None:
            raise RuntimeError(
                f"{type(self).__name__}.shared_representation is set by forward: call the model "
                "on a batch first"
            )
        return self._shared_rep

    @property
    def gate_weights(self) -> dict[str, Tensor]:
        """Gate weights (softmax, each row sums to 1) of the last forward, by gate name; empty for
        models without gates.

        Raises:
            RuntimeError: before the first forward of a model with gates.
        """
        if self._gates is None:
            if self._has_gates():
                raise RuntimeError(
                    f"{type(self).__name__}.gate_weights is set by forward: call the model on a "
                    "batch first"
                )
            return {}
        return dict(self._gates)

    def _has_gates(self) -> bool:
        return False

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """Parameters that only ``task``'s loss can reach (its tower, its gate, ...).

        Raises:
            ValueError: unknown task.
        """
        if task not in self.tasks:
            raise ValueError(
                f"{type(self).__name__}: unknown task {task!r}; tasks are {list(self.tasks)}"
            )
        seen: set[int] = set()
        params: list[nn.Parameter] = []
        for module in self._task_modules(task):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters whose gradient can come from more than one task (embeddings included):
        every parameter that is no task's, in ``parameters()`` order."""
        owned = {id(p) for task in self.tasks for p in self.task_parameters(task)}
        return [p for p in self.parameters() if id(p) not in owned]

    def regularization(self) -> Tensor:
        """Embedding L2 of the last forward: ``embedding_l2 * (1/B) * sum_b sum_j ||e_bj||^2``.

        Returns a 0-dim tensor: 0 when ``embedding_l2 == 0``, before any forward, or when the model
        has no sparse field.

        Example:
            >>> import torch
            >>> from nomoretuning.models import FeatureConfig, SparseField, SharedBottom
            >>> cfg = FeatureConfig((SparseField("uid", 10),))
            >>> model = SharedBottom(cfg, ["ctr"], embedding_l2=0.5, embedding_dim=2)
            >>> _ = torch.nn.init.ones_(model.embedding.tables[0].weight)
            >>> _ = model(torch.tensor([[1], [2], [3]]), torch.zeros(3, 0))
            >>> model.regularization()  # 0.5 * (3 rows * 2 ones) / 3
            tensor(1., grad_fn=<MulBackward0>)
        """
        zero = torch.zeros((), dtype=self._param_dtype(), device=self._vocab_sizes.device)
        if self.embedding_l2 == 0:
            return zero
        total: Tensor | None = None
        batch = 0
        for module in self.modules():
            if isinstance(module, FeatureEmbedding) and module._last is not None:
                sq = module.squared_norm()
                assert sq is not None
                batch = module._last.shape[0]
                total = sq if total is None else total + sq
        if total is None:
            return zero
        return total * (self.embedding_l2 / max(batch, 1))

    # ----------------------------------------------------------------- internals
    def _param_dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.get_default_dtype()

    def _check_inputs(self, sparse: object, dense: object) -> None:
        owner = f"{type(self).__name__}.forward"
        s, d = self.features.num_sparse, self.features.num_dense
        if not isinstance(sparse, Tensor):
            raise ValueError(f"{owner}: sparse must be a torch.Tensor, got {type(sparse).__name__}")
        if not isinstance(dense, Tensor):
            raise ValueError(f"{owner}: dense must be a torch.Tensor, got {type(dense).__name__}")
        if sparse.dim() != 2 or sparse.shape[1] != s:
            raise ValueError(
                f"{owner}: sparse must have shape [B, {s}] (one column per sparse field), got "
                f"{list(sparse.shape)}"
            )
        if dense.dim() != 2 or dense.shape[1] != d:
            raise ValueError(
                f"{owner}: dense must have shape [B, {d}] (one column per dense feature), got "
                f"{list(dense.shape)}"
            )
        if sparse.shape[0] != dense.shape[0]:
            raise ValueError(
                f"{owner}: sparse and dense must have the same batch size, got "
                f"{sparse.shape[0]} and {dense.shape[0]}"
            )
        if sparse.dtype not in _SPARSE_DTYPES:
            raise ValueError(
                f"{owner}: sparse must be an integer tensor (torch.int64 or torch.int32), got "
                f"{sparse.dtype}"
            )
        if not dense.is_floating_point():
            raise ValueError(f"{owner}: dense must be a floating-point tensor, got {dense.dtype}")
        device = self._vocab_sizes.device
        for name, tensor in (("sparse", sparse), ("dense", dense)):
            if tensor.device != device:
                raise ValueError(
                    f"{owner}: {name} is on {tensor.device} but the model is on {device}; move "
                    "one with .to(device)"
                )
        if s and sparse.numel() and not _tracing():
            bad = (sparse < 0) | (sparse >= self._vocab_sizes)
            if bool(bad.any()):
                row, col = (int(i) for i in bad.nonzero()[0])
                field = self.features.sparse[col]
                raise ValueError(
                    f"{owner}: sparse column {col} (field {field.name!r}) has index "
                    f"{int(sparse[row, col])} at row {row}; allowed 0..{field.vocab_size - 1}"
                )

    def __getstate__(self) -> dict[str, object]:
        # Cached forward tensors are non-leaf: deepcopy and pickle would fail on them.
        state = dict(self.__dict__)
        state["_shared_rep"] = None
        state["_gates"] = None
        return state
