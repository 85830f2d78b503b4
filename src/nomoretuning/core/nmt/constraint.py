"""One constraint ``L_j <= L_j* + eps_j`` of a stage: its slack, violation and relative excess.

The formulas live here once; NMT's dual step and the trainer's feasibility check both use them.

Example:
    >>> slack(2.0, 0.01, "relative"), slack(2.0, 0.01, "absolute")
    (0.02, 0.01)
    >>> round(slack(0.6, 0.01, "reducible", baseline=0.65), 6)  # 1 % of what was learned
    0.0005
    >>> violation(2.5, 2.0, 0.02)
    0.48
    >>> relative_to_bound(0.48, 2.0)
    0.24
"""

from __future__ import annotations

from typing import Literal

__all__ = ["TOLERANCE_MODES", "ToleranceMode", "relative_to_bound", "slack", "violation"]

ToleranceMode = Literal["reducible", "relative", "absolute"]
TOLERANCE_MODES: tuple[ToleranceMode, ...] = ("reducible", "relative", "absolute")


def slack(
    bound: float, tolerance: float, mode: ToleranceMode, baseline: float | None = None
) -> float:
    """The slack ``eps_j`` of a bound.

    - ``"relative"``: ``tolerance * |bound|``;
    - ``"absolute"``: ``tolerance``;
    - ``"reducible"``: ``tolerance * min(|bound|, baseline - bound)``, with ``baseline`` the loss
      of the best constant prediction: at most that share of the loss, and at most that share of
      what was learned (relative when the baseline is unknown or not above the bound).
    """
    if mode == "absolute":
        return tolerance
    learned = None if baseline is None else baseline - bound
    if mode == "reducible" and learned is not None and learned > 0:
        return tolerance * min(abs(bound), learned)
    return tolerance * abs(bound)


def violation(value: float, bound: float, slack: float) -> float:
    """``value - bound - slack`` in loss units: positive when the constraint is violated."""
    return value - bound - slack


def relative_to_bound(amount: float, bound: float) -> float:
    """``amount / |bound|`` (``amount`` itself for a zero bound): a loss difference without the
    loss's scale."""
    return amount / abs(bound) if bound != 0 else amount
