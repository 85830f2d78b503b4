"""NMT's per-step regime on convex lexicographic problems whose constrained optimum is known.

The multipliers are updated every step from the full-batch losses, as in a user's own loop, with
NMT's DEFAULT dual rule. NMT holds each constraint at its set point ``L_j* + target * eps_j``;
the optimum of that problem is known in closed form (the first tests) or solved exactly
(`nomoretuning.core.testing`, the random problems). The iterate must end within 1e-3 of the
optimum over the whole last 10 % of a stage's steps (a limit cycle fails), and the multipliers
within 1 % of their KKT values. The wider matrix (more problems, loss scales x0.01 / x100, more
optimizer rates) is `benchmarks/bench_dual_convex.py`.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

import nomoretuning as nt
from nomoretuning.core.testing import LexicographicProblem

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import bench_dual_convex as matrix

Losses = Callable[[], dict[str, Tensor]]


def _optimizer(name: str, params: list[Tensor]) -> tuple[torch.optim.Optimizer, Callable[[], None]]:
    if name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=0.05)
        return opt, lambda: None
    opt = torch.optim.Adam(params, lr=0.05)
    # Adam moves each coordinate by about lr per step; a decaying rate lets it settle.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + t / 200.0))
    return opt, sched.step


def _train_stage(
    nmt: nt.NMT, losses: Losses, params: list[Tensor], opt_name: str, steps: int
) -> list[np.ndarray]:
    """Trains one stage; returns the iterates of its last 10 % of steps."""
    opt, decay = _optimizer(opt_name, params)
    last = []
    for step in range(steps):
        values = losses()
        loss = nmt(values)
        opt.zero_grad()
        loss.backward()
        opt.step()
        nmt.step({k: v.detach() for k, v in values.items()})
        decay()
        if step >= 0.9 * steps:
            last.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy())
    return last


def _worst(last: list[np.ndarray], optimum: np.ndarray) -> float:
    return max(float(np.linalg.norm(x - optimum)) for x in last)


def _through_the_joint_start(
    nmt: nt.NMT, losses: Losses, params: list[Tensor], opt_name: str, steps: int = 1000
) -> None:
    """The default schedule's first stage: every task together, no constraint (its bounds are
    replaced by each level's own stage)."""
    assert nmt.stage_tasks == nmt.tasks and nmt.constrained_tasks == ()
    _train_stage(nmt, losses, params, opt_name, steps)
    nmt.next_stage()


# --------------------------------------------------------------------------- two levels
# L1 = |θ - a|² + 1 (minimum L1* = 1 at a), L2 = |θ - b|².  NMT holds L1 at 1 + ρ' with
# ρ' = target·ρ (relative tolerance ρ): min |θ-b|² s.t. |θ-a|² <= ρ' is solved by
# θ* = a + √ρ' (b-a)/|b-a| with the KKT multiplier λ* = |b-a|/√ρ' - 1.
A = torch.tensor([0.0, 0.0], dtype=torch.float64)
B = torch.tensor([3.0, 4.0], dtype=torch.float64)
RHO = 0.25


def _two_level() -> tuple[Tensor, Losses]:
    theta = torch.tensor([-1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def losses() -> dict[str, Tensor]:
        return {"primary": ((theta - A) ** 2).sum() + 1, "secondary": ((theta - B) ** 2).sum()}

    return theta, losses


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("explicit_bound", [True, False])
def test_two_levels_reach_the_constrained_optimum(opt_name: str, explicit_bound: bool) -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(["primary", "secondary"], tolerance=RHO)
    _through_the_joint_start(nmt, losses, [theta], opt_name)
    _train_stage(nmt, losses, [theta], opt_name, 3000)
    assert torch.allclose(theta.detach(), A, atol=1e-3)
    nmt.next_stage(bound=1.0 if explicit_bound else None)
    assert nmt.bounds["primary"] == pytest.approx(1.0, abs=1e-4)
    assert nmt.task == "secondary" and nmt.constrained_tasks == ("primary",)
    last = _train_stage(nmt, losses, [theta], opt_name, 4000)

    rho = nmt.target * RHO
    gap = float((B - A).norm())
    expected = A + math.sqrt(rho) * (B - A) / gap
    assert _worst(last, expected.numpy()) < 1e-3
    assert float(losses()["primary"].detach()) <= nmt.bounds["primary"] * (1 + RHO)
    assert nmt.multipliers["primary"] == pytest.approx(gap / math.sqrt(rho) - 1, rel=1e-2)
    nmt.next_stage()
    assert nmt.finished
    assert nmt.bounds["secondary"] == pytest.approx(float(((expected - B) ** 2).sum()), rel=1e-3)


def test_absolute_tolerance_gives_its_optimum() -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(["primary", "secondary"], tolerance=RHO, tolerance_mode="absolute")
    _through_the_joint_start(nmt, losses, [theta], "sgd")
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    nmt.next_stage(bound=1.0)
    assert nmt.slacks == {"primary": RHO}
    last = _train_stage(nmt, losses, [theta], "sgd", 4000)
    expected = A + math.sqrt(nmt.target * RHO) * (B - A) / float((B - A).norm())
    assert _worst(last, expected.numpy()) < 1e-3


def test_the_pi_controller_reaches_the_same_optimum() -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(["primary", "secondary"], tolerance=RHO, dual="pi", dual_lr=1.0, target=1.0)
    _through_the_joint_start(nmt, losses, [theta], "sgd")
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    nmt.next_stage(bound=1.0)
    last = _train_stage(nmt, losses, [theta], "sgd", 3000)
    assert _worst(last, np.array([0.3, 0.4])) < 1e-3
    assert nmt.multipliers["primary"] == pytest.approx(9.0, rel=1e-2)


# ------------------------------------------------------------------------- three levels
# θ = (x, y, z).  L1 = (x-1)² + 1;  L2 = (x-3)² + (y-1)² + 1;  L3 = (y-3)² + (z-2)².
# With the set point ρ' = target·ρ and amount's stage spending the share s of pay's slack
# (1/2 by default: `slack_share`, 1 without spread_slack): stage 2: x = 1+√(sρ'), y = 1,
# L2* = (x-3)² + 1, λ1 = (3-x)/(x-1). Stage 3 may spend all of pay's slack, and L3 does not
# depend on x, so x rises to its own bound 1+√ρ' (lowering L2 leaves y more room):
# (y-1)² = (1+ρ') L2* - 1 - (x-3)², z = 2, λ2 = (3-y)/(y-1) (from dL/dy),
# λ1 = λ2 (3-x)/(x-1) (from dL/dx).
def _three_level_solution(rho: float, share: float) -> dict[str, float]:
    x2 = 1 + math.sqrt(share * rho)
    l2 = (x2 - 3) ** 2 + 1
    x = 1 + math.sqrt(rho)
    y = 1 + math.sqrt((1 + rho) * l2 - 1 - (x - 3) ** 2)
    lam2 = (3 - y) / (y - 1)
    return {
        "x2": x2,
        "x": x,
        "y": y,
        "z": 2.0,
        "L2*": l2,
        "stage2_lambda1": (3 - x2) / (x2 - 1),
        "lambda2": lam2,
        "lambda1": lam2 * (3 - x) / (x - 1),
    }


def _three_level_losses() -> tuple[Tensor, Losses]:
    theta = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)

    def losses() -> dict[str, Tensor]:
        x, y, z = theta
        return {
            "pay": (x - 1) ** 2 + 1,
            "amount": (x - 3) ** 2 + (y - 1) ** 2 + 1,
            "relevance": (y - 3) ** 2 + (z - 2) ** 2,
        }

    return theta, losses


@pytest.mark.parametrize(("opt_name", "spread"), [("sgd", True), ("adam", True), ("sgd", False)])
def test_three_levels_reach_the_lexicographic_optimum(opt_name: str, spread: bool) -> None:
    theta, losses = _three_level_losses()
    nmt = nt.NMT(["pay", "amount", "relevance"], tolerance=RHO, spread_slack=spread)
    sol = _three_level_solution(nmt.target * RHO, share=0.5 if spread else 1.0)
    _through_the_joint_start(nmt, losses, [theta], opt_name)
    _train_stage(nmt, losses, [theta], opt_name, 2000)
    nmt.next_stage()
    last = _train_stage(nmt, losses, [theta], opt_name, 4000)
    assert float(theta.detach()[0]) == pytest.approx(sol["x2"], abs=1e-3)
    assert float(theta.detach()[1]) == pytest.approx(1.0, abs=1e-3)
    assert nmt.multipliers["pay"] == pytest.approx(sol["stage2_lambda1"], rel=1e-2)
    nmt.next_stage()
    assert nmt.bounds["amount"] == pytest.approx(sol["L2*"], rel=1e-3)
    assert set(nmt.multipliers) == {"pay", "amount"}
    last = _train_stage(nmt, losses, [theta], opt_name, 6000)
    assert _worst(last, np.array([sol["x"], sol["y"], sol["z"]])) < 1e-3
    assert nmt.multipliers["amount"] == pytest.approx(sol["lambda2"], rel=1e-2)
    assert nmt.multipliers["pay"] == pytest.approx(sol["lambda1"], rel=1e-2)


def test_plain_ascent_oscillates_on_three_levels_where_pi_settles() -> None:
    # DESIGN.md trap 3: gradient descent-ascent with two active constraints runs into a limit
    # cycle; a PI controller damps it.
    sol = _three_level_solution(RHO, share=1.0)
    spreads = {}
    fixed = {"violation": "raw", "target": 1.0, "spread_slack": False}  # the paper's NMT
    rules = {
        "ascent": {**fixed, "dual": "ascent", "dual_lr": 1.0},
        "pi": {**fixed, "dual": "pi", "dual_lr": 0.1, "pi_gains": (10.0, 1.0)},
    }
    for name, kwargs in rules.items():
        theta, losses = _three_level_losses()
        nmt = nt.NMT(["pay", "amount", "relevance"], tolerance=RHO, **kwargs)  # type: ignore[arg-type]
        _through_the_joint_start(nmt, losses, [theta], "sgd")
        _train_stage(nmt, losses, [theta], "sgd", 1000)
        nmt.next_stage(bound=1.0)
        _train_stage(nmt, losses, [theta], "sgd", 2000)
        nmt.next_stage(bound=sol["L2*"])
        _train_stage(nmt, losses, [theta], "sgd", 6000)
        last = _train_stage(nmt, losses, [theta], "sgd", 2000)
        xs = [x[0] for x in last]
        spreads[name] = max(xs) - min(xs)
    assert spreads["ascent"] > 0.02  # a limit cycle around x* = 1.5
    assert spreads["pi"] < 1e-4


def test_a_shared_level_keeps_each_task_under_its_own_bound() -> None:
    # Level 1 holds two tasks on separate coordinates; level 2 pulls both away.
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def losses() -> dict[str, Tensor]:
        x, y = theta
        return {
            "ctr": (x - 1) ** 2 + 1,
            "cvr": (y + 1) ** 2 + 2,
            "gmv": (x - 4) ** 2 + (y - 3) ** 2,
        }

    nmt = nt.NMT([["ctr", "cvr"], "gmv"], tolerance=RHO, level_weights={"ctr": 3.0, "cvr": 1.0})
    _through_the_joint_start(nmt, losses, [theta], "sgd")
    assert nmt.task == "ctr+cvr"
    assert nmt.term_weights == {"ctr": 0.75, "cvr": 0.25}
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    with pytest.raises(ValueError, match="dict per task"):
        nmt.next_stage(bound=1.0)
    nmt.next_stage(bound={"ctr": 1.0, "cvr": 2.0})
    assert nmt.constrained_tasks == ("ctr", "cvr")
    last = _train_stage(nmt, losses, [theta], "sgd", 5000)
    # Each constraint binds separately at its set point: (x-1)² = ρ'·1 and (y+1)² = ρ'·2.
    rho = nmt.target * RHO
    assert _worst(last, np.array([1 + math.sqrt(rho), -1 + math.sqrt(2 * rho)])) < 1e-3


# ---------------------------------------------------------------------- random problems
def _well_posed(count: int) -> list[LexicographicProblem]:
    """Random problems whose multipliers are well determined (conditioning <= 100 at the first
    constrained stage); ill-posed ones have multipliers no method can pin to 1 %."""
    chosen: list[LexicographicProblem] = []
    seed = 500
    while len(chosen) < count:
        problem = LexicographicProblem.random(2 + len(chosen) % 2, 3, seed)
        seed += 1
        bounds = [problem.minimum(i) for i in range(problem.levels)]
        if problem.conditioning(2, bounds, [0.005 * b for b in bounds]) <= 100:
            chosen.append(problem)
    return chosen


def _without_conflict(problem: LexicographicProblem) -> LexicographicProblem:
    """The same problem with task 2 centred where task 1 is: its constraint is inactive."""
    centers = problem.centers.copy()
    centers[1] = centers[0]
    return LexicographicProblem(problem.hessians, centers, problem.offsets, problem.scales)


PROBLEMS = [*_well_posed(4), _without_conflict(_well_posed(1)[0])]


@pytest.mark.parametrize(
    ("index", "optimizer", "tolerance", "scale", "steps"),
    [
        # Every factor at each of its levels at least once (problems 0 and 2: two levels,
        # 1 and 3: three, 4: an inactive constraint); the loss scale x0.01 / x1 / x100.
        (0, ("sgd", 0.3), 0.01, 0.01, 6000),
        (0, ("adam", 0.05), 0.1, 100.0, 3000),
        (1, ("adam", 0.05), 0.1, 100.0, 3000),
        (2, ("adam", 0.05), 0.01, 1.0, 6000),
        (2, ("sgd", 0.3), 0.1, 100.0, 3000),
        (3, ("sgd", 0.3), 0.1, 0.01, 3000),
        (4, ("sgd", 0.3), 0.01, 100.0, 6000),
        (4, ("adam", 0.05), 0.1, 0.01, 3000),
        (1, ("sgd", 0.3), 0.01, 1.0, 10000),
        (3, ("adam", 0.05), 0.01, 1.0, 10000),
    ],
)
def test_random_problems_reach_their_optimum_without_a_limit_cycle(
    index: int, optimizer: tuple[str, float], tolerance: float, scale: float, steps: int
) -> None:
    base = PROBLEMS[index]
    problem = LexicographicProblem(base.hessians, base.centers, base.offsets, base.scales * scale)
    outcome = matrix.run(problem, optimizer, tolerance, steps=steps)
    assert max(outcome.worst) < 1e-3
    assert max(outcome.multiplier_error) < 0.01
    assert max(outcome.inactive_multiplier) < 1e-6


@functools.cache
def _final_point(
    task: int | None, factor: float, tolerance: float, optimizer: tuple[str, float], steps: int
) -> np.ndarray:
    problem = PROBLEMS[2] if task is None else PROBLEMS[2].rescaled(task, factor)
    return matrix.run(problem, optimizer, tolerance, steps=steps).final


@pytest.mark.parametrize(
    ("task", "factor", "tolerance", "optimizer", "steps"),
    [
        (0, 10.0, 0.1, ("sgd", 0.3), 4000),
        (1, 0.1, 0.1, ("sgd", 0.3), 4000),
        (0, 0.1, 0.01, ("adam", 0.05), 8000),
        (1, 10.0, 0.01, ("adam", 0.05), 8000),
    ],
)
def test_scaling_one_task_gives_the_same_final_point(
    task: int, factor: float, tolerance: float, optimizer: tuple[str, float], steps: int
) -> None:
    reference = _final_point(None, 1.0, tolerance, optimizer, steps)
    final = _final_point(task, factor, tolerance, optimizer, steps)
    assert float(np.linalg.norm(final - reference)) < 1e-3
