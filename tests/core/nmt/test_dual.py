"""The multiplier update rules (`nomoretuning.core.nmt.dual`) and DESIGN.md's dual traps."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
import torch
from nmt_helpers import NMT, in_stage_two, scalar

from nomoretuning.core.nmt.dual import (
    MultiplicativeAscent,
    MultiplierState,
    PIController,
    ProjectedAscent,
    ScaledAscent,
    build_rule,
)
from nomoretuning.errors import ConfigError


# ------------------------------------------------------------------- the default rule
def test_the_default_rule_is_multiplicative_ascent() -> None:
    assert isinstance(NMT(["a", "b"]).rule, MultiplicativeAscent)
    assert NMT(["a", "b"], dual="scaled").rule == ScaledAscent()


def test_scaled_ascent_by_hand() -> None:
    rule = ScaledAscent(rate=0.1, max_error=10.0)
    state = rule.start(0.0, scale=4.0)
    rule.update(state, violation=0.3, slack=0.1, bound=1.0)  # e = 3
    assert state.integral == pytest.approx(0.3)
    assert state.multiplier == pytest.approx(4.0 * 0.3)
    rule.update(state, violation=5.0, slack=0.1, bound=1.0)  # e = 50, clipped to 10
    assert state.integral == pytest.approx(0.3 + 1.0)
    rule.update(state, violation=-50.0, slack=0.1, bound=1.0, steps=3)  # e = -10, 3 steps
    assert state.multiplier == 0.0  # projected


def test_one_update_for_n_steps_moves_like_n_updates_of_one_step() -> None:
    rule = ScaledAscent(rate=0.01)
    once, often = rule.start(0.0, 2.0), rule.start(0.0, 2.0)
    rule.update(once, 0.05, slack=0.1, bound=1.0, steps=20)
    for _ in range(20):
        rule.update(often, 0.05, slack=0.1, bound=1.0)
    assert once.multiplier == pytest.approx(often.multiplier)
    capped = rule.start(0.0, 2.0)
    rule.update(capped, 0.05, slack=0.1, bound=1.0, steps=10_000)  # one rare update: capped
    assert capped.integral == pytest.approx(rule.rate * rule.max_steps * 0.5)


def test_the_multiplier_grows_while_violated_and_returns_to_zero_once_slack() -> None:
    nmt = in_stage_two(tolerance=0.01)
    history = []
    for _ in range(50):  # violated: 1.5 > 1.0 + target * 0.01
        nmt.step({"top": scalar(1.5), "low": scalar(0.3)})
        history.append(nmt.multipliers["top"])
    assert all(b > a for a, b in itertools.pairwise(history))
    assert nmt.violations["top"] == pytest.approx(0.49)  # reported in loss units, to the bound
    for _ in range(500):  # slack: 0.5 < 1.0
        nmt.step({"top": scalar(0.5), "low": scalar(0.3)})
    assert nmt.multipliers["top"] == 0.0


def test_the_multiplier_is_in_units_of_the_loss_ratio() -> None:
    # The stage objective's loss at the stage's first step over the bound is the multiplier's
    # unit: scaling a task's loss scales lambda as it scales lambda*.
    finals = []
    for factor in (1.0, 10.0):
        nmt = NMT(["top", "low"], tolerance=0.1)
        nmt.next_stage(bound=1.0 * factor)
        for _ in range(30):
            nmt.step({"top": scalar(1.2 * factor), "low": scalar(2.0)})
        finals.append(nmt.multipliers["top"])
    assert finals[0] == pytest.approx(10.0 * finals[1])


# ------------------------------------------------------------------------- the traps
def test_the_dual_step_uses_the_violation_not_the_autograd_derivative() -> None:
    # d L~ / d lambda = (g - L~)/(1 + lambda) is negative here although the constraint is violated.
    lam = torch.zeros((), requires_grad=True)
    low, top = 2.0, 1.05
    rescaled = (low + lam * (top - 1.0)) / (1 + lam)
    (autograd_direction,) = torch.autograd.grad(rescaled, lam)
    assert float(autograd_direction) < 0
    for dual in ("scaled", "ascent"):
        nmt = in_stage_two(tolerance=0.0, dual=dual, dual_lr=1.0)
        nmt.step({"top": scalar(top), "low": scalar(low)})
        assert nmt.multipliers["top"] > 0


def test_zero_tolerance_with_noisy_losses_drifts_and_the_default_does_not() -> None:
    # At the optimum the mini-batch violation is zero-mean noise: with eps = 0 the paper's
    # projected ascent is a reflected random walk whose multiplier keeps growing (~ sqrt(steps));
    # a tolerance with the set point inside it keeps it at zero.
    rng = random.Random(0)
    noise = [rng.gauss(0.0, 0.005) for _ in range(20000)]
    drifting = in_stage_two(tolerance=0.0, dual="ascent", dual_lr=1.0)
    ascent = in_stage_two(tolerance=0.01, dual="ascent", dual_lr=1.0)
    default = in_stage_two()
    trajectory = []
    for i, e in enumerate(noise):
        losses = {"top": scalar(1.0 + e), "low": scalar(0.5)}
        for nmt in (drifting, ascent, default):
            nmt.step(losses)
        if (i + 1) % 5000 == 0:
            trajectory.append(drifting.multipliers["top"])
    assert trajectory[-1] > 0.2
    assert trajectory[-1] > trajectory[0]
    assert ascent.multipliers["top"] < 0.01
    assert default.multipliers["top"] < 0.05  # at the set point the noise nets to zero


def test_relative_violation_divides_by_the_bound_and_raw_does_not() -> None:
    relative = NMT(["top", "low"], tolerance=0.0, dual="ascent", dual_lr=1.0)
    raw = NMT(["top", "low"], tolerance=0.0, dual="ascent", dual_lr=1.0, violation="raw")
    for nmt in (relative, raw):
        nmt.next_stage(bound=2.0)
        nmt.step({"top": scalar(2.5), "low": scalar(0.0)})
    assert relative.multipliers["top"] == pytest.approx(0.25)
    assert raw.multipliers["top"] == pytest.approx(0.5)
    assert relative.violations["top"] == pytest.approx(0.5)  # reported in loss units


def test_smoothing_averages_the_violation() -> None:
    nmt = in_stage_two(tolerance=0.0, smoothing=0.5, dual="ascent", dual_lr=1.0)
    nmt.step({"top": scalar(1.2), "low": scalar(0.0)})  # first violation taken as is
    nmt.step({"top": scalar(1.0), "low": scalar(0.0)})  # EMA: 0.5 * 0.2 + 0.5 * 0
    assert nmt.multipliers["top"] == pytest.approx(0.2 + 0.1)


def test_a_step_without_a_dual_update_leaves_the_multipliers_to_held_out_losses() -> None:
    nmt = NMT(["top", "low"], dual="ascent", dual_lr=1.0, tolerance=0.0)
    nmt.next_stage(bound=1.0)
    for _ in range(3):
        nmt.step({"top": scalar(3.0), "low": scalar(0.0)}, update_dual=False)
    assert nmt.multipliers["top"] == 0.0
    nmt.update_multipliers({"top": 1.5})
    assert nmt.multipliers["top"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="missing loss of constrained task 'top'"):
        nmt.update_multipliers({"low": 1.0})
    with pytest.raises(ValueError, match="the loss of task 'top' must be a finite number"):
        nmt.update_multipliers({"top": float("nan")})
    with pytest.raises(ValueError, match=r"must be a finite scalar, got shape \(2,\)"):
        nmt.update_multipliers({"top": torch.tensor([1.0, 2.0])})
    for bad in (np.array([1.0, 2.0]), [1.0], None, "1.0"):
        with pytest.raises(ValueError, match="the loss of task 'top' must be a finite number"):
            nmt.update_multipliers({"top": bad})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown task 'tpo'"):
        nmt.update_multipliers({"tpo": 1.0, "top": 1.0})
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        nmt.update_multipliers({"top": 1.0}, steps=0)


def test_held_out_updates_integrate_the_steps_since_the_last_one() -> None:
    every, often = NMT(["top", "low"]), NMT(["top", "low"])
    for nmt in (every, often):
        nmt.next_stage(bound=1.0)
    losses = {"top": scalar(1.003), "low": scalar(2.0)}
    for _ in range(20):
        every.step(losses)
        often.step(losses, update_dual=False)
    often.update_multipliers({"top": 1.003})  # one update standing for the 20 steps
    assert often.multipliers["top"] == pytest.approx(every.multipliers["top"])


def test_the_other_rules_by_hand() -> None:
    state = MultiplierState()
    ProjectedAscent(lr=2.0, relative=False).update(state, 0.25, slack=0.1, bound=1.0)
    assert state.multiplier == 0.5
    pi = PIController(lr=1.0, kp=2.0, ki=1.0, relative=False)
    state = pi.start(0.0)
    pi.update(state, 0.1, slack=0.0, bound=1.0)
    assert (state.integral, state.multiplier) == pytest.approx((0.1, 0.3))
    mult = MultiplicativeAscent(rate=0.5, floor=1.0)
    state = mult.start(0.0)
    mult.update(state, 0.3, slack=0.2, bound=1.0)
    assert state.multiplier == pytest.approx(torch.tensor(0.75).exp().item() - 1)


def test_multiplicative_ascent_by_hand() -> None:
    rule = MultiplicativeAscent(rate=0.1, floor=0.01, max_error=10.0)
    state = rule.start(0.0, scale=4.0)
    rule.update(state, violation=0.3, slack=0.1, bound=1.0)  # e = 3: mu + f = f * exp(0.3)
    assert state.multiplier == pytest.approx(4.0 * 0.01 * math.expm1(0.3))
    high = rule.start(2.0, scale=4.0)  # mu = 0.5, far above the floor: a factor per step
    rule.update(high, violation=0.1, slack=0.1, bound=1.0, steps=2)  # e = 1, two steps
    assert high.multiplier == pytest.approx(4.0 * ((0.5 + 0.01) * math.exp(0.2) - 0.01))
    rule.update(high, violation=5.0, slack=0.1, bound=1.0)  # e = 50, clipped to 10
    assert high.multiplier == pytest.approx(4.0 * ((0.5 + 0.01) * math.exp(1.2) - 0.01))
    for _ in range(5):  # slack: back to exactly 0 (projected), and it leaves 0 when violated
        rule.update(high, violation=-50.0, slack=0.1, bound=1.0, steps=50)
    assert high.multiplier == 0.0
    rule.update(high, violation=0.1, slack=0.1, bound=1.0)
    assert high.multiplier > 0.0


def test_multiplicative_ascent_reaches_a_large_multiplier_in_log_time() -> None:
    # A multiplier 100x larger takes log(100) / (rate * e) more steps, not 100x as many.
    rule = MultiplicativeAscent(rate=0.01)
    steps_to: dict[float, int] = {}
    state = rule.start(0.0)
    for step in range(1, 20_000):
        rule.update(state, violation=1.0, slack=1.0, bound=1.0)  # e = 1
        for target in (1.0, 100.0):
            if target not in steps_to and state.multiplier >= target:
                steps_to[target] = step
        if 100.0 in steps_to:
            break
    assert steps_to[100.0] - steps_to[1.0] == pytest.approx(math.log(100) / 0.01, rel=0.01)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dual": "adam"}, "dual must be one of"),
        ({"dual": object()}, "a rule with start"),
        ({"dual": "ascent", "dual_lr": 0.0}, "dual_lr must be a finite number > 0"),
        ({"dual": "pi", "pi_gains": (1.0, -1.0)}, "pi_gains"),
        ({"dual": "ascent", "smoothing": 1.0}, r"smoothing must be a number in \[0, 1\)"),
        ({"dual": "ascent", "violation": "scaled"}, "violation must be one of"),
    ],
)
def test_bad_rule_arguments(kwargs: dict[str, object], message: str) -> None:
    dual = kwargs.pop("dual")
    with pytest.raises(ConfigError, match=message):
        build_rule(
            dual,  # type: ignore[arg-type]
            kwargs.get("dual_lr"),  # type: ignore[arg-type]
            kwargs.get("pi_gains", (1.0, 1.0)),  # type: ignore[arg-type]
            kwargs.get("smoothing", 0.0),  # type: ignore[arg-type]
            kwargs.get("violation", "relative"),  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigError, match="rate"):
        ScaledAscent(rate=0.0)


def test_multiplicative_ascent_does_not_wind_up_while_the_primal_catches_up() -> None:
    # A violation of 10+ slacks held for 2,000 steps: lambda stops at max_multiplier instead of
    # growing by exp(0.1) per step, so it comes back within a few hundred steps once the
    # constraint is met.
    rule = MultiplicativeAscent()
    state = rule.start(0.0, scale=2.0)
    for _ in range(2000):
        rule.update(state, violation=1.0, slack=0.01, bound=1.0)
    assert state.multiplier == pytest.approx(rule.max_multiplier)
    steps = 0
    while state.multiplier > 1.0:
        rule.update(state, violation=-1.0, slack=0.01, bound=1.0)  # e = -10 (clipped)
        steps += 1
    assert steps < 100


@pytest.mark.parametrize("dual", ["multiplicative", "scaled", "ascent", "pi"])
def test_a_held_out_update_before_the_first_step_keeps_its_multiplier(dual: str) -> None:
    """The first step sets the multipliers' unit; one already moved keeps its value."""
    nmt = NMT(["top", "low"], dual=dual)
    nmt.next_stage(bound=1.0)
    for _ in range(30):  # held out, before any primal step: in the unit 1
        nmt.update_multipliers({"top": 1.5}, steps=1)
    before = nmt.multipliers["top"]
    assert before > 0
    nmt.step({"top": scalar(1.0), "low": scalar(5.0)}, update_dual=False)  # unit 5 from here
    at_set_point = 1.0 + nmt.target * nmt.slack("top")  # an update that moves nothing
    nmt.update_multipliers({"top": at_set_point}, steps=1)
    assert nmt.multipliers["top"] == pytest.approx(before)
