"""Building blocks: the feature embedding, the MLP, and the gated mixture of experts.

Initialization (the STEM / FuxiCTR convention, applied at construction so that a seed fixes it):
embedding tables ~ N(0, std=1e-4) (``init_std``), ``nn.Linear`` weights xavier-normal, biases 0,
batch norm at PyTorch's default (weight 1, bias 0).

Example:
    >>> import torch
    >>> from nomoretuning.models.features import FeatureConfig, SparseField
    >>> emb = FeatureEmbedding(FeatureConfig((SparseField("uid", 10),), ("age",)), dim=4)
    >>> mlp = MLP(emb.output_dim, (8,), out_dim=1)
    >>> x = emb(torch.tensor([[3], [7]]), torch.tensor([[0.5], [-1.0]]))
    >>> x.shape, mlp(x).shape
    (torch.Size([2, 5]), torch.Size([2, 1]))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nomoretuning.checks import one_of
from nomoretuning.models.features import FeatureConfig

__all__ = ["ACTIVATIONS", "MLP", "FeatureEmbedding", "make_activation", "mix_experts"]


_ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}

ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATION_MODULES)
"""Activation names accepted by every model (``"relu"`` is the default)."""


def make_activation(name: str) -> nn.Module:
    """Returns a fresh activation module by name (one of `ACTIVATIONS`).

    Example:
        >>> make_activation("relu")
        ReLU()
    """
    return _ACTIVATION_MODULES[one_of(name, "activation", ACTIVATIONS)]()


def _init_linear(layer: nn.Linear) -> nn.Linear:
    nn.init.xavier_normal_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """Hidden layers ``Linear -> [BatchNorm] -> activation -> [Dropout]``, then an optional plain
    ``Linear`` output layer (no activation) when ``out_dim`` is given.

    With no hidden layer and no ``out_dim`` it is the identity.

    Args:
        in_dim: input width.
        hidden_dims: widths of the hidden layers (may be empty).
        out_dim: width of the final linear layer, or ``None`` for none.
        activation: activation name.
        dropout: dropout rate after each hidden activation (0 = no dropout layer).
        batch_norm: batch norm after each hidden linear layer.

    Example:
        >>> import torch
        >>> MLP(6, (4, 3))(torch.zeros(2, 6)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        *,
        out_dim: int | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for hidden in hidden_dims:
            layers.append(_init_linear(nn.Linear(width, hidden)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        if out_dim is not None:
            layers.append(_init_linear(nn.Linear(width, out_dim)))
            width = out_dim
        self.layers = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.output_dim = width

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def mix_experts(weights: Tensor, experts: Tensor) -> Tensor:
    """Weighted sum of expert outputs: ``weights [B, E]``, ``experts [B, E, H]`` -> ``[B, H]``.

    Example:
        >>> import torch
        >>> mix_experts(torch.tensor([[0.25, 0.75]]), torch.tensor([[[4.0], [8.0]]]))
        tensor([[7.]])
    """
    return torch.bmm(weights.unsqueeze(1), experts).squeeze(1)


class FeatureEmbedding(nn.Module):
    """One ``nn.Embedding`` per sparse field; output = flattened embeddings ++ dense columns.

    The output is ``[B, S * dim + D]``: field j's embedding occupies columns ``j*dim:(j+1)*dim``
    and the dense features come last. The looked-up embeddings of the last forward are kept for
    :meth:`squared_norm`, which the models' L2 regularization uses.

    Inputs are assumed valid (the model checks them); see ``MultiTaskModel.forward``.

    Args:
        features: the input description.
        dim: embedding width.
        init_std: standard deviation of the N(0, std) initialization of the tables.

    Example:
        >>> import torch
        >>> from nomoretuning.models.features import FeatureConfig, SparseField
        >>> emb = FeatureEmbedding(FeatureConfig((SparseField("a", 5), SparseField("b", 3))), 2)
        >>> emb(torch.tensor([[0, 2]]), torch.zeros(1, 0)).shape
        torch.Size([1, 4])
    """

    def __init__(self, features: FeatureConfig, dim: int, init_std: float = 1e-4) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(f.vocab_size, dim) for f in features.sparse)
        for table in self.tables:
            assert isinstance(table, nn.Embedding)
            nn.init.normal_(table.weight, mean=0.0, std=init_std)
        self.dim = dim
        self.num_sparse = features.num_sparse
        self.num_dense = features.num_dense
        self.output_dim = features.num_sparse * dim + features.num_dense
        self._last: Tensor | None = None

    def forward(self, sparse: Tensor, dense: Tensor) -> Tensor:
        parts: list[Tensor] = [table(sparse[:, j]) for j, table in enumerate(self.tables)]
        if parts:
            embedded = torch.cat(parts, dim=1)
            self._last = embedded
            parts = [embedded]
        else:
            self._last = None
        if self.num_dense:
            parts.append(dense)
        return torch.cat(parts, dim=1)

    def squared_norm(self) -> Tensor | None:
        """Sum over the batch of the squared norms of the vectors looked up in the last forward
        (``sum_b sum_j ||e_{b,j}||^2``), or ``None`` when nothing was looked up.

        Example:
            >>> import torch
            >>> from nomoretuning.models.features import FeatureConfig, SparseField
            >>> emb = FeatureEmbedding(FeatureConfig((SparseField("a", 3),)), 2)
            >>> _ = nn.init.ones_(emb.tables[0].weight)
            >>> _ = emb(torch.tensor([[0], [1]]), torch.zeros(2, 0))
            >>> emb.squared_norm()
            tensor(4., grad_fn=<SumBackward0>)
        """
        if self._last is None:
            return None
        return self._last.pow(2).sum()

    def clear(self) -> None:
        """Forgets the looked-up embeddings of the last forward."""
        self._last = None

    def __getstate__(self) -> dict[str, object]:
        # The cached lookup is a non-leaf tensor: deepcopy and pickle would fail on it.
        state = dict(self.__dict__)
        state["_last"] = None
        return state
