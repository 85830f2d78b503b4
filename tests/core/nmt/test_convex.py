"""NMT on small convex lexicographic problems whose constrained optimum is known in closed form."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import nomoretuning as nt

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
) -> None:
    opt, decay = _optimizer(opt_name, params)
    for _ in range(steps):
        values = losses()
        loss = nmt(values)
        opt.zero_grad()
        loss.backward()
        opt.step()
        nmt.step(values)
        decay()


# --------------------------------------------------------------------------- two levels
# L1 = |θ - a|² + 1 (minimum L1* = 1 at a), L2 = |θ - b|².  With relative tolerance ρ the stage-2
# problem is  min |θ-b|²  s.t. |θ-a|² <= ρ, solved by θ* = a + √ρ (b-a)/|b-a| with the KKT
# multiplier λ* = |b-a|/√ρ - 1 (from 2(θ-b) + 2λ(θ-a) = 0).
A = torch.tensor([0.0, 0.0], dtype=torch.float64)
B = torch.tensor([3.0, 4.0], dtype=torch.float64)
RHO = 0.25


def _two_level() -> tuple[Tensor, Losses]:
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        theta.copy_(torch.tensor([-1.0, 2.0]))

    def losses() -> dict[str, Tensor]:
        return {"primary": ((theta - A) ** 2).sum() + 1, "secondary": ((theta - B) ** 2).sum()}

    return theta, losses


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("explicit_bound", [True, False])
def test_two_levels_reach_the_constrained_optimum(opt_name: str, explicit_bound: bool) -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(["primary", "secondary"], tolerance=RHO, dual_lr=1.0)
    _train_stage(nmt, losses, [theta], opt_name, 3000)
    assert torch.allclose(theta.detach(), A, atol=1e-3)
    nmt.next_stage(bound=1.0 if explicit_bound else None)
    assert nmt.bounds["primary"] == pytest.approx(1.0, abs=1e-4)
    assert nmt.stage == 2 and nmt.task == "secondary"
    _train_stage(nmt, losses, [theta], opt_name, 3000)

    gap = float((B - A).norm())
    expected = A + math.sqrt(RHO) * (B - A) / gap
    assert float((theta.detach() - expected).norm()) < 1e-3
    assert float(losses()["primary"].detach()) <= nmt.bounds["primary"] * (1 + RHO) + 1e-3
    assert nmt.multipliers["primary"] == pytest.approx(gap / math.sqrt(RHO) - 1, rel=1e-2)
    nmt.next_stage()
    assert nmt.finished
    assert nmt.bounds["secondary"] == pytest.approx(float(((expected - B) ** 2).sum()), rel=1e-3)


def test_absolute_tolerance_gives_the_same_optimum() -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(["primary", "secondary"], tolerance=RHO, tolerance_mode="absolute", dual_lr=1.0)
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    nmt.next_stage(bound=1.0)
    assert nmt.slacks == {"primary": RHO}
    _train_stage(nmt, losses, [theta], "sgd", 3000)
    assert torch.allclose(theta.detach(), torch.tensor([0.3, 0.4], dtype=torch.float64), atol=1e-3)


def test_pi_controller_reaches_the_same_optimum() -> None:
    theta, losses = _two_level()
    nmt = nt.NMT(
        ["primary", "secondary"], tolerance=RHO, dual="pi", pi_gains=(1.0, 1.0), dual_lr=1.0
    )
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    nmt.next_stage(bound=1.0)
    _train_stage(nmt, losses, [theta], "sgd", 3000)
    assert torch.allclose(theta.detach(), torch.tensor([0.3, 0.4], dtype=torch.float64), atol=1e-3)
    assert nmt.multipliers["primary"] == pytest.approx(9.0, rel=1e-2)


# ------------------------------------------------------------------------- three levels
# θ = (x, y, z).  L1 = (x-1)² + 1;  L2 = (x-3)² + (y-1)² + 1;  L3 = (y-3)² + (z-2)².
# Stage 2: x = 1+√ρ, y = 1, L2* = (x-3)² + 1, λ1 = (3-x)/(x-1).
# Stage 3: x stays (L1 binds), (y-1)² <= ρ L2*  ->  y = 1 + √(ρ L2*), z = 2,
#          λ2 = (3-y)/(y-1) (from dL/dy), λ1 = λ2 (3-x)/(x-1) (from dL/dx).
def _three_level_solution(rho: float) -> dict[str, float]:
    x = 1 + math.sqrt(rho)
    l2 = (x - 3) ** 2 + 1
    y = 1 + math.sqrt(rho * l2)
    lam2 = (3 - y) / (y - 1)
    return {
        "x": x,
        "y": y,
        "z": 2.0,
        "L2*": l2,
        "stage2_lambda1": (3 - x) / (x - 1),
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


# Plain projected ascent with two active constraints runs into the oscillation of
# gradient descent-ascent (DESIGN.md trap 3); the PI controller damps it.
PI = {"dual": "pi", "dual_lr": 0.1, "pi_gains": (10.0, 1.0)}


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_three_levels_reach_the_lexicographic_optimum(opt_name: str) -> None:
    theta, losses = _three_level_losses()
    sol = _three_level_solution(RHO)
    nmt = nt.NMT(["pay", "amount", "relevance"], tolerance=RHO, **PI)  # type: ignore[arg-type]
    _train_stage(nmt, losses, [theta], opt_name, 2000)
    nmt.next_stage()
    _train_stage(nmt, losses, [theta], opt_name, 4000)
    assert float(theta.detach()[0]) == pytest.approx(sol["x"], abs=1e-3)
    assert float(theta.detach()[1]) == pytest.approx(1.0, abs=1e-3)
    assert nmt.multipliers["pay"] == pytest.approx(sol["stage2_lambda1"], rel=2e-2)
    nmt.next_stage()
    assert nmt.bounds["amount"] == pytest.approx(sol["L2*"], rel=1e-3)
    assert set(nmt.multipliers) == {"pay", "amount"}
    _train_stage(nmt, losses, [theta], opt_name, 6000)
    got = theta.detach()
    assert float(got[0]) == pytest.approx(sol["x"], abs=2e-3)
    assert float(got[1]) == pytest.approx(sol["y"], abs=2e-3)
    assert float(got[2]) == pytest.approx(sol["z"], abs=2e-3)
    final = losses()
    assert float(final["pay"].detach()) <= nmt.bounds["pay"] * (1 + RHO) + 1e-3
    assert float(final["amount"].detach()) <= nmt.bounds["amount"] * (1 + RHO) + 1e-3
    assert nmt.multipliers["amount"] == pytest.approx(sol["lambda2"], rel=3e-2)
    assert nmt.multipliers["pay"] == pytest.approx(sol["lambda1"], rel=3e-2)


def test_plain_ascent_oscillates_on_three_levels_where_pi_settles() -> None:
    sol = _three_level_solution(RHO)
    spreads = {}
    raw = {"violation": "raw"}
    for name, kwargs in {"ascent": {**raw, "dual_lr": 1.0}, "pi": {**PI, **raw}}.items():
        theta, losses = _three_level_losses()
        nmt = nt.NMT(["pay", "amount", "relevance"], tolerance=RHO, **kwargs)  # type: ignore[arg-type]
        _train_stage(nmt, losses, [theta], "sgd", 1000)
        nmt.next_stage(bound=1.0)
        _train_stage(nmt, losses, [theta], "sgd", 2000)
        nmt.next_stage(bound=sol["L2*"])
        _train_stage(nmt, losses, [theta], "sgd", 6000)
        xs = []
        opt = torch.optim.SGD([theta], lr=0.05)
        for _ in range(2000):
            values = losses()
            opt.zero_grad()
            nmt(values).backward()
            opt.step()
            nmt.step(values)
            xs.append(float(theta.detach()[0]))
        spreads[name] = max(xs) - min(xs)
    assert spreads["ascent"] > 0.1  # a limit cycle around x* = 1.5
    assert spreads["pi"] < 1e-4


def test_shared_level_keeps_each_task_under_its_own_bound() -> None:
    # Level 1 holds two tasks on separate coordinates; level 2 pulls both away.
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def losses() -> dict[str, Tensor]:
        x, y = theta
        return {
            "ctr": (x - 1) ** 2 + 1,
            "cvr": (y + 1) ** 2 + 2,
            "gmv": (x - 4) ** 2 + (y - 3) ** 2,
        }

    nmt = nt.NMT(
        [["ctr", "cvr"], "gmv"], tolerance=RHO, level_weights={"ctr": 3.0, "cvr": 1.0}, dual_lr=1.0
    )
    assert nmt.task == "ctr+cvr"
    assert nmt.term_weights == {"ctr": 0.75, "cvr": 0.25}
    _train_stage(nmt, losses, [theta], "sgd", 2000)
    with pytest.raises(ValueError, match="dict per task"):
        nmt.next_stage(bound=1.0)
    nmt.next_stage(bound={"ctr": 1.0, "cvr": 2.0})
    assert nmt.constrained_tasks == ("ctr", "cvr")
    _train_stage(nmt, losses, [theta], "sgd", 4000)
    # Each constraint binds separately: (x-1)² = ρ·1 and (y+1)² = ρ·2.
    assert float(theta.detach()[0]) == pytest.approx(1 + math.sqrt(RHO), abs=1e-3)
    assert float(theta.detach()[1]) == pytest.approx(-1 + math.sqrt(2 * RHO), abs=1e-3)
