"""Rules that decide when an NMT stage has converged and the next one should start.

A rule looks at the history of the stage objective (the training loss of the stage's task,
recorded at each ``NMT.step``) and the number of steps taken in the stage.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nomoretuning.checks import is_integer

__all__ = ["Plateau", "StageSwitch", "StepBudget"]


@runtime_checkable
class StageSwitch(Protocol):
    """Decides whether the running stage has converged."""

    @property
    def history_needed(self) -> int:
        """How many recent objective values the rule reads."""
        ...

    def should_switch(self, history: Sequence[float], steps_in_stage: int) -> bool:
        """``history``: the most recent stage-objective values, oldest first."""
        ...


@dataclass(frozen=True)
class StepBudget:
    """Switches after a fixed number of steps in each stage.

    Example:
        >>> from nomoretuning import StepBudget
        >>> StepBudget(3).should_switch([1.0, 0.9, 0.8], steps_in_stage=3)
        True
    """

    steps: int

    def __post_init__(self) -> None:
        if not is_integer(self.steps) or self.steps < 1:
            raise ValueError(f"StepBudget: steps must be a positive integer, got {self.steps!r}")

    @property
    def history_needed(self) -> int:
        return 1

    def should_switch(self, history: Sequence[float], steps_in_stage: int) -> bool:
        return steps_in_stage >= self.steps


@dataclass(frozen=True)
class Plateau:
    """Switches when the training loss stops improving (the relative plateau test of LMORL).

    With ``2 * window`` recent values, the stage has converged when the mean of the newer half
    improves on the mean of the older half by at most ``threshold`` (relative):
    ``(mean_old - mean_new) / |mean_new| <= threshold``. ``max_steps`` caps the stage length.

    Example:
        >>> from nomoretuning import Plateau
        >>> rule = Plateau(window=2, threshold=0.01)
        >>> rule.should_switch([1.0, 1.0, 1.0, 1.0], steps_in_stage=4)
        True
        >>> rule.should_switch([2.0, 2.0, 1.0, 1.0], steps_in_stage=4)
        False
    """

    window: int = 50
    threshold: float = 0.01
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if not is_integer(self.window) or self.window < 1:
            raise ValueError(f"Plateau: window must be a positive integer, got {self.window!r}")
        number = isinstance(self.threshold, numbers.Real) and not isinstance(self.threshold, bool)
        if not (number and 0 <= self.threshold < math.inf):
            raise ValueError(f"Plateau: threshold must be a number >= 0, got {self.threshold!r}")
        if self.max_steps is not None and (not is_integer(self.max_steps) or self.max_steps < 1):
            raise ValueError(
                f"Plateau: max_steps must be a positive integer, got {self.max_steps!r}"
            )

    @property
    def history_needed(self) -> int:
        return 2 * self.window

    def should_switch(self, history: Sequence[float], steps_in_stage: int) -> bool:
        if self.max_steps is not None and steps_in_stage >= self.max_steps:
            return True
        if len(history) < 2 * self.window:
            return False
        recent = list(history)[-2 * self.window :]
        old = sum(recent[: self.window]) / self.window
        new = sum(recent[self.window :]) / self.window
        scale = abs(new) if new != 0 else 1.0
        return (old - new) / scale <= self.threshold
