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

import numpy as np
import torch

from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.models.features import FeatureConfig, SparseField

__all__ = ["make_synthetic", "task_weights"]


def task_weights(n_tasks: int, dim: int, conflict: float, rng: np.random.Generator) -> np.ndarray:
    """Unit weight vectors [n_tasks, dim]; row k > 0 is rotated by ``conflict * 90`` degrees
    away from row 0 (see the module docstring).

    Example:
        >>> w = task_weights(2, 6, 1.0, np.random.default_rng(0))
        >>> round(float(w[0] @ w[1]), 6), round(float(np.linalg.norm(w[1])), 6)
        (0.0, 1.0)
    """
    if n_tasks > dim:
        raise ValueError(f"{n_tasks} tasks need dim + n_dense >= {n_tasks}, got {dim}")
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
    names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"tasks must be distinct names, at least one, got {names!r}")
    if not 0.0 <= conflict <= 1.0:
        raise ValueError(f"conflict must be in [0, 1], got {conflict!r}")
    for label, value in (("n_rows", n_rows), ("n_users", n_users), ("n_items", n_items)):
        if value < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    if dim < 1 or n_dense < 0:
        raise ValueError(f"dim must be >= 1 and n_dense >= 0, got {dim}, {n_dense}")
    rates = (
        [float(positive_rate)] * len(names)
        if isinstance(positive_rate, int | float)
        else [float(r) for r in positive_rate]
    )
    if len(rates) != len(names) or not all(0.0 < r < 1.0 for r in rates):
        raise ValueError(
            f"positive_rate must be one rate in (0, 1) per task, got {positive_rate!r}"
        )
    fractions = check_fractions(split)

    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n_users, dim), dtype=np.float32)
    V = rng.standard_normal((n_items, dim), dtype=np.float32)
    weights = task_weights(len(names), dim + n_dense, conflict, rng)
    users = rng.integers(0, n_users, n_rows)
    items = rng.integers(0, n_items, n_rows)
    dense = rng.standard_normal((n_rows, n_dense), dtype=np.float32)
    w = weights.astype(np.float32)
    logits = (U[users] * V[items]) @ w[:, :dim].T + dense @ w[:, dim:].T
    logits *= np.float32(signal)
    logits += np.array([math.log(r / (1 - r)) for r in rates], dtype=np.float32)
    probs = 1.0 / (1.0 + np.exp(-logits))
    labels = (rng.random((n_rows, len(names)), dtype=np.float32) < probs).astype(np.float32)
    sparse = np.stack([users + 1, items + 1], axis=1).astype(np.int64)

    index = dict(
        zip(("train", "valid", "test"), split_indices(n_rows, fractions, seed), strict=True)
    )
    splits: dict[str, TensorSplit] = {}
    true_logits: dict[str, dict[str, torch.Tensor]] = {}
    true_probs: dict[str, dict[str, torch.Tensor]] = {}
    for name, idx in index.items():
        splits[name] = TensorSplit.from_numpy(
            sparse[idx],
            dense[idx],
            {t: labels[idx, k] for k, t in enumerate(names)},
            users[idx],
        )
        true_logits[name] = {t: torch.from_numpy(logits[idx, k]) for k, t in enumerate(names)}
        true_probs[name] = {t: torch.from_numpy(probs[idx, k]) for k, t in enumerate(names)}
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
            "true_logits": true_logits,
            "true_probabilities": true_probs,
            "task_weights": weights,
            "conflict": conflict,
            "indices": index,
        },
    )
