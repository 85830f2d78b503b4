"""One constraint ``L_j <= L_j* + eps_j`` of a stage: its slack, violation and relative excess.

The formulas live here once; NMT's dual step and the trainer's feasibility check both use them.

Example:
    >>> slack(2.0, 0.01, "relative"), slack(2.0, 0.01, "absolute")
    (0.02, 0.01)
    >>> violation(2.5, 2.0, 0.02)
    0.48
    >>> relative_to_bound(0.48, 2.0)
    0.24
"""

from __future__ import annotations

from typing import Literal

__all__ = ["TOLERANCE_MODES", "ToleranceMode", "relative_to_bound", "slack", "violation"]

ToleranceMode = Literal["relative", "absolute"]
TOLERANCE_MODES: tuple[ToleranceMode, ...] = ("relative", "absolute")


def slack(bound: float, tolerance: float, mode: ToleranceMode) -> float:
    """The slack ``eps_j`` of a bound: ``tolerance * |bound|`` (relative) or ``tolerance``."""
    if mode == "absolute":
        return tolerance
    return tolerance * abs(bound)


def violation(value: float, bound: float, slack: float) -> float:
    """``value - bound - slack`` in loss units: positive when the constraint is violated."""
    return value - bound - slack


def relative_to_bound(amount: float, bound: float) -> float:
    """``amount / |bound|`` (``amount`` itself for a zero bound): a loss difference without the
    loss's scale."""
    return amount / abs(bound) if bound != 0 else amount
