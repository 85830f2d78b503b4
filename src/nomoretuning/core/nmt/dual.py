"""Multiplier update rules of NMT's dual step: one small class per rule.

A rule moves one constraint's multiplier from an observation of that constraint: the raw
violation ``g = L_j - L_j* - eps_j`` (loss units), the slack ``eps_j``, the bound ``L_j*`` and the
number of primal steps since the constraint's previous dual step (``steps``: 1 when the
multipliers are updated every step, more when they are updated from held-out losses every few
steps). It keeps whatever state it needs in that constraint's `MultiplierState`. Multipliers stay
>= 0 (projection).

- `ScaledAscent` (``"scaled"``): projected ascent on a unitless, bounded error,
  ``mu <- max(0, mu + rate * steps * e)`` with ``e = g / eps`` (the violation in units of the
  slack) clipped to ``[-10, 10]``, and ``lambda = scale * mu`` where ``scale`` is the stage
  objective's loss over the bound: a task's loss scale, the tolerance and the update cadence
  (the integral runs over primal steps) do not change the dynamics of ``mu``.
- `MultiplicativeAscent` (NMT's default, ``"multiplicative"``): the same natural units, with
  ``mu`` moving by a *factor* per step, ``mu + floor <- (mu + floor) * exp(rate * steps * e)``:
  in the log domain the loop gain does not depend on how large the multiplier must become.
- `ProjectedAscent`: the paper's rule, ``lambda <- max(0, lambda + lr * g')`` with ``g'`` the
  violation relative to the bound (or raw), optionally smoothed.
- `PIController`: a PI controller on the same error, for damping plain ascent's oscillation.

Example:
    >>> state = MultiplierState()
    >>> ProjectedAscent(lr=2.0, relative=False).update(state, 0.25, slack=0.1, bound=1.0)
    >>> state.multiplier
    0.5
    >>> rule = MultiplicativeAscent(rate=0.5, floor=1.0)
    >>> fresh = rule.start(0.0)
    >>> rule.update(fresh, 0.3, slack=0.2, bound=1.0)  # e = 0.3 / 0.2 = 1.5
    >>> round(fresh.multiplier, 4)  # (0 + 1) * exp(0.5 * 1.5) - 1
    1.117
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, is_dataclass
from typing import Protocol, runtime_checkable

from nomoretuning import checks
from nomoretuning.core.nmt import constraint
from nomoretuning.errors import ConfigError

__all__ = [
    "DUAL_RULES",
    "DualRule",
    "MultiplicativeAscent",
    "MultiplierState",
    "PIController",
    "ProjectedAscent",
    "ScaledAscent",
    "build_rule",
    "describe_rule",
]

DUAL_RULES = ("multiplicative", "scaled", "ascent", "pi")
"""The rules `build_rule` knows by name (``NMT(dual=...)``); the first is the default."""


@dataclass
class MultiplierState:
    """One constraint's dual state.

    Attributes:
        multiplier: ``lambda_j >= 0``.
        integral: the integral term of the rule (PI: in multiplier units; multiplicative: the log
            of ``lambda + floor`` over ``floor``), kept >= 0.
        smoothed: the last (smoothed) error, None before the first update.
        violation: the last raw violation ``L_j - L_j* - eps_j`` in loss units.
        scale: the multiplier's natural unit, ``|L_k| / |L_j*|`` (the stage objective's loss at
            the stage's first step over the bound), for `ScaledAscent`; None until known.
    """

    multiplier: float = 0.0
    integral: float = 0.0
    smoothed: float | None = None
    violation: float | None = None
    scale: float | None = None


@runtime_checkable
class DualRule(Protocol):
    """Moves ``state.multiplier`` from one observation of its constraint."""

    def start(self, multiplier: float, scale: float | None = None) -> MultiplierState:
        """The state of a constraint whose stage starts with ``multiplier`` (``scale``: see
        `MultiplierState.scale`, None until the stage's first step)."""
        ...

    def update(
        self, state: MultiplierState, violation: float, slack: float, bound: float, steps: int = 1
    ) -> None: ...


def _smoothed(state: MultiplierState, error: float, smoothing: float) -> float:
    if smoothing > 0 and state.smoothed is not None:
        error = smoothing * state.smoothed + (1 - smoothing) * error
    state.smoothed = error
    return error


def _observed_error(
    state: MultiplierState, violation: float, bound: float, relative: bool, smoothing: float
) -> float:
    """The error of the additive rules: the violation relative to the bound (or raw),
    smoothed."""
    error = constraint.relative_to_bound(violation, bound) if relative else violation
    return _smoothed(state, error, smoothing)


def _start_at(multiplier: float, scale: float | None) -> MultiplierState:
    """The state of an additive rule whose integral is the multiplier itself."""
    return MultiplierState(multiplier, integral=multiplier, scale=scale)


@dataclass(frozen=True)
class MultiplicativeAscent:
    """Log-domain ascent in natural units: `ScaledAscent` with a factor per step.

    ``mu + floor <- (mu + floor) * exp(rate * steps * e)`` and ``lambda = scale * mu``, with ``e``
    the violation in units of the slack clipped to ``[-max_error, max_error]`` and ``scale`` as
    in `ScaledAscent`. Above ``floor`` the multiplier moves by a factor per step, so the time it
    takes to reach ``mu*`` grows with ``log(mu*)``, not with ``mu*``, and the loop gain
    ``d e / d log(lambda)`` does not depend on how large ``lambda*`` is (it grows as the tolerance
    shrinks); below ``floor`` the step is additive, so ``mu`` returns to exactly 0 and leaves it.

    Args:
        rate: change of ``log(mu + floor)`` per primal step at a violation of one slack.
        floor: the scale of ``mu`` below which the update is additive.
        max_error: the error's clip, in slacks.
        max_steps: the most primal steps one update integrates.
        max_multiplier: the largest ``lambda`` (anti-windup: while the primal catches up with a
            large violation, ``lambda`` stops growing once the constraint holds all but
            ``1 / (1 + lambda)`` of the step's weight, instead of growing exponentially).
    """

    rate: float = 0.01
    floor: float = 1e-3
    max_error: float = 10.0
    max_steps: int = 50
    max_multiplier: float = 1000.0

    def __post_init__(self) -> None:
        checks.positive_number(self.rate, "MultiplicativeAscent: rate")
        checks.positive_number(self.floor, "MultiplicativeAscent: floor")
        checks.positive_number(self.max_error, "MultiplicativeAscent: max_error")
        checks.positive_int(self.max_steps, "MultiplicativeAscent: max_steps")
        checks.positive_number(self.max_multiplier, "MultiplicativeAscent: max_multiplier")

    def start(self, multiplier: float, scale: float | None = None) -> MultiplierState:
        mu = _natural(multiplier, scale)
        return MultiplierState(multiplier, math.log1p(mu / self.floor), scale=scale)

    def update(
        self, state: MultiplierState, violation: float, slack: float, bound: float, steps: int = 1
    ) -> None:
        error = _slack_error(violation, slack, -self.max_error, self.max_error)
        state.smoothed = error
        span = _span(steps, self.max_steps)
        state.integral = max(0.0, state.integral + self.rate * span * error)
        scale = _unit(state)
        # Anti-windup: beyond max_multiplier the constraint already has all but 1/(1 + lambda)
        # of the step's weight, so a larger lambda changes nothing but the time to come back.
        state.integral = min(state.integral, math.log1p(self.max_multiplier / scale / self.floor))
        state.multiplier = scale * self.floor * math.expm1(state.integral)


def _natural(multiplier: float, scale: float | None) -> float:
    """``mu``: a multiplier in units of the stage's ``scale`` (``lambda = scale * mu``)."""
    return multiplier / scale if scale else multiplier


def _unit(state: MultiplierState) -> float:
    """The multiplier's unit: ``lambda = unit * mu``."""
    return 1.0 if state.scale is None else state.scale


def _span(steps: int, max_steps: int) -> int:
    """The primal steps one update integrates: at least 1, at most ``max_steps``."""
    return min(max(int(steps), 1), max_steps)


def _slack_error(violation: float, slack: float, low: float, high: float) -> float:
    """The violation in units of the slack, clipped to ``[low, high]`` (its sign without slack)."""
    if slack > 0:
        return min(max(violation / slack, low), high)
    return float((violation > 0) - (violation < 0))


@dataclass(frozen=True)
class ScaledAscent:
    """Projected ascent in natural units, integrated over primal steps.

    ``mu <- max(0, mu + rate * steps * e)`` and ``lambda = scale * mu``, with ``e`` the
    violation in units of the slack clipped to ``[-max_error, max_error]`` and ``scale`` the
    stage objective's loss over the bound (`MultiplierState.scale`). Multiplying a task's loss by
    ``c`` multiplies ``lambda*`` by ``1/c`` or ``c`` and the scale alike, so ``mu`` and its
    dynamics do not change; ``e`` does not depend on the loss scale or the tolerance; and the
    integral runs over primal steps, so one update every ``n`` steps moves ``mu`` as ``n`` updates
    every step would (``steps`` capped at ``max_steps``).

    Args:
        rate: change of ``mu`` per primal step at a violation of one slack.
        max_error: the error's clip, in slacks.
        max_steps: the most primal steps one update integrates.
    """

    rate: float = 0.01
    max_error: float = 10.0
    max_steps: int = 50

    def __post_init__(self) -> None:
        checks.positive_number(self.rate, "ScaledAscent: rate")
        checks.positive_number(self.max_error, "ScaledAscent: max_error")
        checks.positive_int(self.max_steps, "ScaledAscent: max_steps")

    def start(self, multiplier: float, scale: float | None = None) -> MultiplierState:
        return MultiplierState(multiplier, integral=_natural(multiplier, scale), scale=scale)

    def update(
        self, state: MultiplierState, violation: float, slack: float, bound: float, steps: int = 1
    ) -> None:
        error = _slack_error(violation, slack, -self.max_error, self.max_error)
        state.smoothed = error
        span = _span(steps, self.max_steps)
        state.integral = max(0.0, state.integral + self.rate * span * error)
        state.multiplier = _unit(state) * state.integral


@dataclass(frozen=True)
class ProjectedAscent:
    """Projected gradient ascent ``lambda <- max(0, lambda + lr * error)`` (the paper's rule).

    Args:
        lr: the step size.
        relative: divide the violation by ``|L_j*|`` (scale-free rate) or use it raw.
        smoothing: EMA coefficient in [0, 1) of the error (0: none).
    """

    lr: float = 100.0
    relative: bool = True
    smoothing: float = 0.0

    def start(self, multiplier: float, scale: float | None = None) -> MultiplierState:
        return _start_at(multiplier, scale)

    def update(
        self, state: MultiplierState, violation: float, slack: float, bound: float, steps: int = 1
    ) -> None:
        error = _observed_error(state, violation, bound, self.relative, self.smoothing)
        state.multiplier = max(0.0, state.multiplier + self.lr * error)


@dataclass(frozen=True)
class PIController:
    """A PI controller on the (relative or raw, optionally smoothed) violation:
    ``I <- max(0, I + lr*ki*error)``, ``lambda = max(0, I + lr*kp*error)``; the proportional term
    damps plain ascent's oscillation (Stooke et al. 2020; Sohrabi et al. 2024)."""

    lr: float
    kp: float
    ki: float
    relative: bool = True
    smoothing: float = 0.0

    def start(self, multiplier: float, scale: float | None = None) -> MultiplierState:
        return _start_at(multiplier, scale)

    def update(
        self, state: MultiplierState, violation: float, slack: float, bound: float, steps: int = 1
    ) -> None:
        error = _observed_error(state, violation, bound, self.relative, self.smoothing)
        state.integral = max(0.0, state.integral + self.lr * self.ki * error)
        state.multiplier = max(0.0, state.integral + self.lr * self.kp * error)


def build_rule(
    dual: str | DualRule,
    lr: float | None,
    pi_gains: tuple[float, float],
    smoothing: float,
    violation: str,
) -> DualRule:
    """The rule ``NMT(dual=...)`` names (a rule object is used as is).

    ``lr`` is the rule's rate (None: its default: 0.01 for ``"scaled"`` and
    ``"multiplicative"``, 100 for ``"ascent"`` and ``"pi"``); ``pi_gains``, ``smoothing`` and
    ``violation`` configure ``"ascent"`` and ``"pi"``.

    Example:
        >>> build_rule("pi", 0.1, (10.0, 1.0), 0.0, "raw")
        PIController(lr=0.1, kp=10.0, ki=1.0, relative=False, smoothing=0.0)
    """
    if not isinstance(dual, str):
        if not callable(getattr(dual, "update", None)) or not callable(
            getattr(dual, "start", None)
        ):
            raise ConfigError(
                f"NMT: dual must be one of {list(DUAL_RULES)} or a rule with start() and "
                f"update(), got {dual!r}"
            )
        return dual
    name = checks.one_of(dual, "NMT: dual", DUAL_RULES)
    relative = checks.one_of(violation, "NMT: violation", ("relative", "raw")) == "relative"
    smoothing = checks.fraction(smoothing, "NMT: smoothing")
    pair = isinstance(pi_gains, tuple | list) and len(pi_gains) == 2
    if not pair or not all(
        isinstance(g, numbers.Real) and not isinstance(g, bool) and 0 <= g < math.inf
        for g in pi_gains
    ):
        raise ConfigError(f"NMT: pi_gains must be two numbers >= 0 (kp, ki), got {pi_gains!r}")
    if lr is not None:
        checks.positive_number(lr, "NMT: dual_lr")
    if name == "scaled":
        return ScaledAscent() if lr is None else ScaledAscent(rate=lr)
    if name == "multiplicative":
        return MultiplicativeAscent() if lr is None else MultiplicativeAscent(rate=lr)
    rate = checks.positive_number(100.0 if lr is None else lr, "NMT: dual_lr")
    if name == "ascent":
        return ProjectedAscent(rate, relative=relative, smoothing=smoothing)
    return PIController(
        rate, kp=float(pi_gains[0]), ki=float(pi_gains[1]), relative=relative, smoothing=smoothing
    )


def describe_rule(rule: DualRule) -> str:
    """The rule and its settings, as a saved state records them (the class name of a rule that
    is no dataclass).

    Example:
        >>> describe_rule(build_rule("scaled", None, (10.0, 1.0), 0.0, "relative"))
        'ScaledAscent(rate=0.01, max_error=10.0, max_steps=50)'
    """
    return repr(rule) if is_dataclass(rule) else type(rule).__qualname__
