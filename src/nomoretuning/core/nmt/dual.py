"""Multiplier update rules of NMT's dual step: one small class per rule.

Each rule moves one constraint's multiplier from its *error*, the violation after NMT's
normalization and smoothing, and keeps whatever state it needs in that constraint's
`MultiplierState`. Multipliers stay >= 0 (projection).

Example:
    >>> state = MultiplierState()
    >>> ProjectedAscent(lr=2.0).update(state, 0.25)
    >>> state.multiplier
    0.5
    >>> PIController(lr=1.0, kp=1.0, ki=1.0).update(state, -0.1)
    >>> round(state.integral, 3), round(state.multiplier, 3)
    (0.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["DualRule", "MultiplierState", "PIController", "ProjectedAscent"]


@dataclass
class MultiplierState:
    """One constraint's dual state.

    Attributes:
        multiplier: ``lambda_j >= 0``.
        integral: the PI controller's integral term (kept >= 0).
        smoothed: the last (smoothed) error, None before the first update.
        violation: the last raw violation ``L_j - L_j* - eps_j`` in loss units.
    """

    multiplier: float = 0.0
    integral: float = 0.0
    smoothed: float | None = None
    violation: float | None = None


class DualRule(Protocol):
    """Moves ``state.multiplier`` from one error value."""

    def update(self, state: MultiplierState, error: float) -> None: ...


@dataclass(frozen=True)
class ProjectedAscent:
    """Projected gradient ascent: ``lambda <- max(0, lambda + lr * error)``."""

    lr: float

    def update(self, state: MultiplierState, error: float) -> None:
        state.multiplier = max(0.0, state.multiplier + self.lr * error)


@dataclass(frozen=True)
class PIController:
    """A PI controller on the error: ``I <- max(0, I + lr*ki*error)``,
    ``lambda = max(0, I + lr*kp*error)``; the proportional term damps plain ascent's oscillation
    (Stooke et al. 2020; Sohrabi et al. 2024)."""

    lr: float
    kp: float
    ki: float

    def update(self, state: MultiplierState, error: float) -> None:
        state.integral = max(0.0, state.integral + self.lr * self.ki * error)
        state.multiplier = max(0.0, state.integral + self.lr * self.kp * error)
