"""Convex lexicographic problems with known optima, to test NMT and its dual rules.

Each task's loss is a quadratic ``L_i(θ) = s_i (‖M_i (θ - c_i)‖² + o_i)``. A stage's constrained
problem, ``min L_k s.t. L_j <= b_j + eps_j (j < k)``, has a unique optimum, found here without
gradient descent: the dual function of a quadratic program is concave in the multipliers and its
maximizer follows from a few projected Newton steps (the primal minimizer is one linear solve for
given multipliers). `LexicographicProblem.solve` returns the optimum and its KKT multipliers, the
reference that NMT's iterates and multipliers are measured against.

Example:
    >>> import torch
    >>> problem = LexicographicProblem.random(levels=2, dim=3, seed=0)
    >>> theta, multipliers = problem.solve(stage=2, bounds=[problem.minimum(0)], slacks=[0.1])
    >>> losses = problem.losses(torch.as_tensor(theta))
    >>> bool(abs(float(losses[0]) - problem.minimum(0) - 0.1) < 1e-9)  # the constraint binds
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["LexicographicProblem"]


@dataclass(frozen=True)
class LexicographicProblem:
    """Quadratic task losses ``s_i (‖M_i (θ - c_i)‖² + o_i)``, tasks by priority (highest first).

    Attributes:
        hessians: ``M_iᵀ M_i``, shape ``[K, d, d]`` (the top task's may be singular).
        centers: ``c_i``, shape ``[K, d]``.
        offsets: ``o_i > 0``, the unscaled minimum of each loss.
        scales: ``s_i > 0``.
    """

    hessians: np.ndarray
    centers: np.ndarray
    offsets: np.ndarray
    scales: np.ndarray

    @classmethod
    def random(
        cls,
        levels: int,
        dim: int,
        seed: int,
        scale: float = 1.0,
        singular_top: bool = False,
    ) -> LexicographicProblem:
        """A random problem: conditioning in [0.5, 2]², centers in [-2, 2]^d, offsets in
        [0.5, 2], every loss times ``scale``; ``singular_top`` makes the top task ignore one
        direction (its optimum is then not unique)."""
        rng = np.random.default_rng(seed)
        hessians, centers = [], []
        for level in range(levels):
            q1, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
            singular = rng.uniform(0.5, 2.0, size=dim)
            if singular_top and level == 0:
                singular[-1] = 0.0
            m = q1 @ np.diag(singular)
            hessians.append(m @ m.T)
            centers.append(rng.uniform(-2.0, 2.0, size=dim))
        return cls(
            hessians=np.stack(hessians),
            centers=np.stack(centers),
            offsets=rng.uniform(0.5, 2.0, size=levels),
            scales=np.full(levels, float(scale)),
        )

    def rescaled(self, task: int, factor: float) -> LexicographicProblem:
        """The same problem with task ``task``'s loss multiplied by ``factor``."""
        scales = self.scales.copy()
        scales[task] *= factor
        return LexicographicProblem(self.hessians, self.centers, self.offsets, scales)

    @property
    def levels(self) -> int:
        return int(self.centers.shape[0])

    def minimum(self, task: int) -> float:
        """The unconstrained minimum of a task's loss, ``s_i o_i``."""
        return float(self.scales[task] * self.offsets[task])

    def curvature(self) -> float:
        """The largest eigenvalue of any task's Hessian (for choosing SGD's rate)."""
        return float(max(np.linalg.eigvalsh(2 * s * h).max() for s, h in self._scaled()))

    def losses(self, theta: Tensor) -> list[Tensor]:
        """Every task's loss at ``theta`` (differentiable)."""
        out = []
        for i in range(self.levels):
            hessian = torch.as_tensor(self.hessians[i], dtype=theta.dtype)
            diff = theta - torch.as_tensor(self.centers[i], dtype=theta.dtype)
            out.append(float(self.scales[i]) * (diff @ hessian @ diff + float(self.offsets[i])))
        return out

    def solve(
        self, stage: int, bounds: Sequence[float], slacks: Sequence[float], iterations: int = 200
    ) -> tuple[np.ndarray, np.ndarray]:
        """The optimum of stage ``stage`` (1-based: it minimizes task ``stage - 1`` subject to
        ``L_j <= bounds[j] + slacks[j]`` for every higher task j) and its KKT multipliers."""
        k = stage - 1
        limits = np.asarray(bounds, dtype=np.float64)[:k] + np.asarray(slacks, dtype=np.float64)[:k]
        lam = np.zeros(k)
        for _ in range(iterations):
            theta, grads, g = self._at(k, lam, limits)
            if k == 0:
                break
            # Newton on the concave dual: gradient g (the violations), Hessian -J A^-1 Jᵀ.
            system = self._system(k, lam)
            jac = np.stack(grads)
            hess = -jac @ np.linalg.solve(2 * system, jac.T)
            active = (lam > 0) | (g > 0)
            step = np.zeros(k)
            if active.any():
                sub = hess[np.ix_(active, active)] - 1e-14 * np.eye(int(active.sum()))
                step[active] = -np.linalg.solve(sub, g[active])
            new = np.maximum(lam + step, 0.0)
            if np.max(np.abs(new - lam)) < 1e-15 * (1 + np.max(lam)):
                lam = new
                break
            lam = new
        theta, _, _ = self._at(k, lam, limits)
        return theta, lam

    def conditioning(self, stage: int, bounds: Sequence[float], slacks: Sequence[float]) -> float:
        """How well the stage's multipliers are determined: the condition number of the dual
        Hessian over the active constraints at the optimum (1 for one constraint; large when two
        active constraints pull in almost the same direction, inf when one is active only just)."""
        k = stage - 1
        _, lam = self.solve(stage, bounds, slacks)
        limits = np.asarray(bounds, dtype=np.float64)[:k] + np.asarray(slacks, dtype=np.float64)[:k]
        _, grads, _ = self._at(k, lam, limits)
        active = lam > 1e-9
        if np.any((lam > 0) & (lam < 1e-6 * max(1.0, float(lam.max())))):
            return float("inf")
        if active.sum() <= 1:
            return 1.0
        jac = np.stack(grads)[active]
        hess = jac @ np.linalg.solve(2 * self._system(k, lam), jac.T)
        return float(np.linalg.cond(hess))

    # -------------------------------------------------------------------------------- helpers
    def _scaled(self) -> list[tuple[float, np.ndarray]]:
        return [(float(self.scales[i]), self.hessians[i]) for i in range(self.levels)]

    def _system(self, k: int, lam: np.ndarray) -> np.ndarray:
        system = self.scales[k] * self.hessians[k]
        for j in range(k):
            system = system + lam[j] * self.scales[j] * self.hessians[j]
        return system

    def _at(
        self, k: int, lam: np.ndarray, limits: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        rhs = self.scales[k] * self.hessians[k] @ self.centers[k]
        for j in range(k):
            rhs = rhs + lam[j] * self.scales[j] * self.hessians[j] @ self.centers[j]
        theta = np.linalg.solve(self._system(k, lam), rhs)
        grads, violations = [], []
        for j in range(k):
            diff = theta - self.centers[j]
            value = self.scales[j] * (diff @ self.hessians[j] @ diff + self.offsets[j])
            violations.append(value - limits[j])
            grads.append(2 * self.scales[j] * self.hessians[j] @ diff)
        return theta, grads, np.asarray(violations)
