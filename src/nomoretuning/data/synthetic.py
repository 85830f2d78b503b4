"""Synthetic multi-task click logs with a known ground truth and a task-conflict knob (numpy only).

Generative model, for row r with user u, item i and dense features x ~ N(0, I):

    phi_r      = concat(U[u] * V[i], x)                 (U, V ~ N(0, 1): shared embedded ids)
    logit_k(r) = signal * <w_k, phi_r> + logit(positive_rate_k)
    label_k(r) ~ Bernoulli(sigmoid(logit_k(r)))

Task 1's weight w_1 is a random unit vector; task k > 1 has ``w_k = cos(a) w_1 + sin(a) q_k``
with ``a = conflict * 90 degrees`` and q_k unit vectors orthogonal to w_1 and to each other. The
coordinates of phi are uncorrelated with unit variance, so the correlation between task 1's and
task k's true logits is about ``cos(a)``: 1 at ``conflict=0`` (same task up to a bias), 0 at
``conflict=1`` (unrelated tasks that share the same inputs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from nomoretuning.checks import fraction, is_integer, positive_int, task_names
from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig, SparseField

__all__ = ["make_synthetic", "task_weights"]

_SPLITS = ("train", "valid", "test")


def task_weights(n_tasks: int, dim: int, conflict: float, rng: np.random.Generator) -> np.ndarray:
    """Unit weight vectors [n_tasks, dim]; row k > 0 is rotated by ``conflict * 90`` degrees
    away from row 0 (see the module docstring).

    Example:
        >>> w = task_weights(2, 6, 1.0, np.random.default_rng(0))
        >>> round(float(w[0] @ w[1]), 6), round(float(np.linalg.norm(w[1])), 6)
        (0.0, 1.0)
    """
    if n_tasks > dim:
        raise DataError(f"{n_tasks} tasks need dim + n_dense >= {n_tasks}, got {dim}")
    q, _ = np.linalg.qr(rng.standard_normal((dim, n_tasks)))
    angle = conflict * math.pi / 2
    w = np.empty((n_tasks, dim))
    w[0] = q[:, 0]
    for k in range(1, n_tasks):
        w[k] = math.cos(angle) * q[:, 0] + math.sin(angle) * q[:, k]
    return w


def make_synthetic(
    n_rows: int = 100_000,
    *,
    tasks: Sequence[str] = ("click", "like"),
    conflict: float = 0.0,
    n_users: int = 1000,
    n_items: int = 1000,
    dim: int = 8,
    n_dense: int = 4,
    signal: float = 2.0,
    positive_rate: float | Sequence[float] = 0.3,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> PreparedDataset:
    """Seeded synthetic multi-task click logs with known true probabilities.

    Schema: sparse ``user_id`` (vocab ``n_users + 1``) and ``item_id`` (``n_items + 1``), index
    = id + 1 (0 is the unused OOV row, as for real data); dense ``x0 .. x{n_dense-1}`` (already
    standard normal); one 0/1 label per task; groups = user ids.

    Args:
        n_rows: rows in all (1M take about a second).
        tasks: task names; task 1 is the reference the others are rotated away from.
        conflict: in [0, 1]; the angle between task 1's and every other task's true weight
            vector is ``conflict * 90`` degrees (corr of true logits ~ ``cos`` of it).
        n_users, n_items: numbers of ids drawn uniformly per row.
        dim: width of the true user/item embeddings.
        n_dense: number of dense features.
        signal: scale of the true logits (larger = more learnable).
        positive_rate: base rate(s) used as each task's bias ``logit(rate)``; the realised rate
            is pulled towards 0.5 by the noise in the logits.
        split: (train, valid, test) fractions.
        seed: seed of everything.

    Raises:
        DataError: an argument outside its documented range (e.g. ``conflict=1.5``).

    ``metadata`` holds the ground truth: ``true_logits`` and ``true_probabilities``
    (``{split: {task: FloatTensor[N]}}``, aligned with the split's rows), ``task_weights``
    (ndarray [T, dim + n_dense]), ``conflict`` and ``indices`` (row positions of each split).

    Example:
        >>> ds = make_synthetic(10_000, conflict=0.5, seed=1)
        >>> ds.tasks, len(ds.train), ds.features.num_sparse, ds.features.num_dense
        (('click', 'like'), 8000, 2, 4)
        >>> p = ds.metadata["true_probabilities"]["train"]["click"]
        >>> p.shape, bool(((p > 0) & (p < 1)).all())
        (torch.Size([8000]), True)
    """
    names = task_names((tasks,) if isinstance(tasks, str) else tasks, "tasks", error=DataError)
    fraction(conflict, "conflict", allow_one=True, error=DataError)
    for label, value in (("n_rows", n_rows), ("n_users", n_users), ("n_items", n_items)):
        positive_int(value, label, error=DataError)
    positive_int(dim, "dim", error=DataError)
    if not is_integer(n_dense) or n_dense < 0:
        raise DataError(f"n_dense must be an integer >= 0, got {n_dense!r}")
    model = _ClickModel(
        n_users, n_items, dim, n_dense, conflict, signal, _positive_rates(positive_rate, len(names))
    )
    fractions = check_fractions(split)
    logs = model.draw(n_rows, seed)
    index = dict(zip(_SPLITS, split_indices(n_rows, fractions, seed), strict=True))
    splits = {name: logs.split(rows, names) for name, rows in index.items()}
    features = FeatureConfig(
        sparse=(SparseField("user_id", n_users + 1), SparseField("item_id", n_items + 1)),
        dense=tuple(f"x{j}" for j in range(n_dense)),
    )
    return PreparedDataset(
        name="synthetic",
        tasks=names,
        features=features,
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=(
            f"synthetic click logs: {n_rows} rows, {n_users} users, {n_items} items, "
            f"conflict {conflict} ({conflict * 90:.1f} degrees), signal {signal}, seed {seed}"
        ),
        metadata={
            "true_logits": {s: logs.per_task(logs.logits, r, names) for s, r in index.items()},
            "true_probabilities": {
                s: logs.per_task(logs.probabilities, r, names) for s, r in index.items()
            },
            "task_weights": logs.weights,
            "conflict": conflict,
            "indices": index,
            "input_format": InputFormat("encoded", {"group": "user_id"}),
        },
    )


def _positive_rates(positive_rate: float | Sequence[float], n_tasks: int) -> tuple[float, ...]:
    """One base rate in (0, 1) per task (a single rate serves every task)."""
    rates = (
        [float(positive_rate)] * n_tasks
        if isinstance(positive_rate, int | float)
        else [float(r) for r in positive_rate]
    )
    if len(rates) != n_tasks:
        raise DataError(f"positive_rate must be one rate in (0, 1) per task, got {positive_rate!r}")
    return tuple(fraction(r, "positive_rate", allow_zero=False, error=DataError) for r in rates)


class _ClickLogs(NamedTuple):
    """Every row of the simulated logs, with the ground truth (columns of 2-D arrays = tasks)."""

    users: np.ndarray
    """int ``[N]`` user ids (the groups)."""
    sparse: np.ndarray
    """int64 ``[N, 2]``: user and item index (id + 1)."""
    dense: np.ndarray
    """float32 ``[N, n_dense]``."""
    logits: np.ndarray
    """float32 ``[N, T]`` true logits."""
    probabilities: np.ndarray
    """``[N, T]`` true probabilities."""
    labels: np.ndarray
    """float32 ``[N, T]`` 0/1 labels."""
    weights: np.ndarray
    """``[T, dim + n_dense]`` true task weights."""

    def split(self, rows: np.ndarray, tasks: Sequence[str]) -> TensorSplit:
        """The rows ``rows`` as a split, tasks in column order."""
        labels = {t: self.labels[rows, k] for k, t in enumerate(tasks)}
        return TensorSplit.from_numpy(self.sparse[rows], self.dense[rows], labels, self.users[rows])

    @staticmethod
    def per_task(values: np.ndarray, rows: np.ndarray, tasks: Sequence[str]) -> dict[str, Tensor]:
        """``{task: values[rows, k]}`` as tensors."""
        return {t: torch.from_numpy(values[rows, k]) for k, t in enumerate(tasks)}


@dataclass(frozen=True)
class _ClickModel:
    """The generative model of the module docstring, with checked sizes (one rate per task)."""

    n_users: int
    n_items: int
    dim: int
    n_dense: int
    conflict: float
    signal: float
    rates: tuple[float, ...]

    def draw(self, n_rows: int, seed: int) -> _ClickLogs:
        """``n_rows`` rows drawn from ``numpy.random.default_rng(seed)`` in a fixed order."""
        rng = np.random.default_rng(seed)
        U = rng.standard_normal((self.n_users, self.dim), dtype=np.float32)
        V = rng.standard_normal((self.n_items, self.dim), dtype=np.float32)
        weights = task_weights(len(self.rates), self.dim + self.n_dense, self.conflict, rng)
        users = rng.integers(0, self.n_users, n_rows)
        items = rng.integers(0, self.n_items, n_rows)
        dense = rng.standard_normal((n_rows, self.n_dense), dtype=np.float32)
        logits = self._logits(U[users] * V[items], dense, weights)
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        draws = rng.random((n_rows, len(self.rates)), dtype=np.float32)
        labels = (draws < probabilities).astype(np.float32)
        sparse = np.stack([users + 1, items + 1], axis=1).astype(np.int64)
        return _ClickLogs(users, sparse, dense, logits, probabilities, labels, weights)

    def _logits(
        self, interactions: np.ndarray, dense: np.ndarray, weights: np.ndarray
    ) -> np.ndarray:
        """float32 ``signal * <w_k, phi> + logit(rate_k)`` for every row and task."""
        w = weights.astype(np.float32)
        logits = interactions @ w[:, : self.dim].T + dense @ w[:, self.dim :].T
        logits *= np.float32(self.signal)
        logits += np.array([math.log(r / (1 - r)) for r in self.rates], dtype=np.float32)
        return logits
