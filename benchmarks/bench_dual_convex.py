"""NMT's per-step regime on random convex lexicographic problems with known optima.

For every problem (2 and 3 levels, some constraints inactive), optimizer (SGD at two rates
relative to the curvature, Adam at two base rates with a decaying schedule), global loss scale
(x0.01, x1, x100) and tolerance (1 %, 10 %), NMT runs every stage with its DEFAULT dual rule,
multipliers updated every step from the (full-batch) losses, as in a user's own loop. Reported per
constrained stage: the worst distance of the iterate to the optimum over the last 10 % of the
stage's steps (a limit cycle shows here) and the relative error of each multiplier against its
KKT value. The optimum is that of the problem NMT holds: bounds as NMT recorded them, slack at
NMT's set point (``target * eps``), solved exactly (`nomoretuning.core.testing`).

    python benchmarks/bench_dual_convex.py          # 24 problems x 4 optimizers x 3 x 2
    python benchmarks/bench_dual_convex.py --quick  # 8 problems, loss scale x1 only

Also a scale-invariance check: each problem again with its top task's loss x10 and x0.1.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import nomoretuning as nt
from nomoretuning.core.testing import LexicographicProblem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

OPTIMIZERS = (("sgd", 0.1), ("sgd", 0.3), ("adam", 0.01), ("adam", 0.05))


@dataclass
class Outcome:
    worst: list[float]  # per constrained stage
    multiplier_error: list[float]  # worst relative error per constrained stage (active ones)
    inactive_multiplier: list[float]  # largest multiplier of an inactive constraint
    final: np.ndarray


class OracleNMT(nt.NMT):
    """NMT whose multipliers are held at given KKT values (``pin``): what the primal optimizer
    alone achieves; a run it cannot finish is the optimizer's failure, not the dual rule's."""

    pinned: typing.ClassVar[dict[str, float]] = {}

    def pin(self, values: dict[str, float]) -> None:
        self.pinned = dict(values)
        self._hold()

    def _hold(self) -> None:
        for task, value in self.pinned.items():
            self._state.duals[task].multiplier = value

    def _dual_update(self, values: Mapping[str, float], steps: int | None = None) -> None:
        self._hold()


def run(
    problem: LexicographicProblem,
    optimizer: tuple[str, float],
    tolerance: float,
    steps: int,
    nmt_options: dict[str, object] | None = None,
    oracle: bool = False,
) -> Outcome:
    """Trains every stage of ``problem`` with NMT (defaults unless ``nmt_options``); with
    ``oracle``, the multipliers of each constrained stage are held at their KKT values."""
    names = [f"t{i}" for i in range(problem.levels)]
    theta = torch.zeros(problem.centers.shape[1], dtype=torch.float64, requires_grad=True)
    kind = OracleNMT if oracle else nt.NMT
    nmt = kind(names, tolerance=tolerance, **(nmt_options or {}))  # type: ignore[arg-type]
    outcome = Outcome([], [], [], np.zeros(0))
    while not nmt.finished:  # the default schedule: a joint start, then one stage per level
        higher = list(nmt.constrained_tasks)
        level = len(higher) + 1  # the problem's stage: minimize task `level` under the higher
        if isinstance(nmt, OracleNMT) and higher:
            bounds = [nmt.bounds[n] for n in higher]
            slacks = [nmt.target * nmt.slack(n) for n in higher]
            _, kkt = problem.solve(level, bounds, slacks)
            nmt.pin(dict(zip(higher, kkt.tolist(), strict=True)))
        opt, decay = _optimizer(optimizer, [theta], problem)
        recent: list[np.ndarray] = []
        for step in range(steps):
            values = dict(zip(names, problem.losses(theta), strict=True))
            loss = nmt(values)
            opt.zero_grad()
            loss.backward()
            opt.step()
            nmt.step({k: v.detach() for k, v in values.items()})
            if isinstance(nmt, OracleNMT):
                nmt._hold()  # the first step of a stage sets up its multipliers afresh
            decay()
            if higher and step >= int(0.9 * steps):
                recent.append(theta.detach().numpy().copy())
        if higher:
            bounds = [nmt.bounds[n] for n in higher]
            slacks = [nmt.target * nmt.slack(n) for n in higher]
            optimum, kkt = problem.solve(level, bounds, slacks)
            outcome.worst.append(max(float(np.linalg.norm(x - optimum)) for x in recent))
            got = np.asarray([nmt.multipliers[n] for n in higher])
            active = kkt > 1e-9
            errors = np.abs(got - kkt)[active] / kkt[active]
            outcome.multiplier_error.append(float(errors.max()) if active.any() else 0.0)
            outcome.inactive_multiplier.append(
                float(got[~active].max()) if (~active).any() else 0.0
            )
        nmt.next_stage()
    outcome.final = theta.detach().numpy().copy()
    return outcome


def _optimizer(
    spec: tuple[str, float], params: list[torch.Tensor], problem: LexicographicProblem
) -> tuple[torch.optim.Optimizer, object]:
    name, rate = spec
    if name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=rate / problem.curvature())
        return opt, lambda: None
    opt = torch.optim.Adam(params, lr=rate)
    # Adam moves each coordinate by about lr per step; a decaying rate lets it settle.
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + t / 200.0))
    return opt, schedule.step


def problems(count: int, seed: int = 0) -> list[LexicographicProblem]:
    """Half with 2 levels, half with 3; every third with a singular top task."""
    return [
        LexicographicProblem.random(2 + i % 2, 3, seed * 1000 + i, singular_top=i % 3 == 0)
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--problems", type=common.positive_int, default=24, help="random problems per setting"
    )
    parser.add_argument("--steps", type=common.positive_int, default=6000, help="steps a stage")
    parser.add_argument(
        "--quick", action="store_true", help="8 problems (instead of --problems), loss scale x1"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    count = 8 if args.quick else args.problems
    scales = (1.0,) if args.quick else (0.01, 1.0, 100.0)
    rows = []
    slow = 0
    start = time.perf_counter()
    for index, problem in enumerate(problems(count)):
        for optimizer, scale, tolerance in itertools.product(OPTIMIZERS, scales, (0.01, 0.1)):
            scaled = LexicographicProblem(
                problem.hessians, problem.centers, problem.offsets, problem.scales * scale
            )
            reference = run(scaled, optimizer, tolerance, args.steps, oracle=True)
            if max(reference.worst) >= 1e-4:
                slow += 1  # the optimizer alone cannot reach the optimum: not the rule's test
                continue
            outcome = run(scaled, optimizer, tolerance, args.steps)
            rows.append((index, problem.levels, optimizer, scale, tolerance, outcome))
    print(
        f"{slow} runs left out: the optimizer with the KKT multipliers held fixed does not "
        "reach the optimum within the steps"
    )
    worst = [max(r[-1].worst) for r in rows]
    lam = [max(r[-1].multiplier_error) for r in rows]
    inactive = [max(r[-1].inactive_multiplier) for r in rows]
    print(
        f"{len(rows)} runs ({time.perf_counter() - start:.0f} s), NMT defaults, {args.steps} "
        "steps per stage"
    )
    print(
        f"  worst distance over the last 10 % of steps < 1e-3: {sum(w < 1e-3 for w in worst)}"
        f"/{len(rows)} (max {max(worst):.2e}, median {float(np.median(worst)):.2e})"
    )
    print(
        f"  multipliers within 1 % of KKT: {sum(e < 0.01 for e in lam)}/{len(rows)} "
        f"(max error {max(lam):.2e}); inactive multipliers < 1e-6: "
        f"{sum(m < 1e-6 for m in inactive)}/{len(rows)}"
    )
    failures = [r for r, w, e in zip(rows, worst, lam, strict=True) if w >= 1e-3 or e >= 0.01]
    for index, levels, optimizer, scale, tolerance, outcome in failures[:12]:
        print(
            f"  fails: problem {index} ({levels} levels) {optimizer} scale {scale} tolerance "
            f"{tolerance}: worst {outcome.worst}, multiplier error {outcome.multiplier_error}"
        )
    # Scale invariance: the top task's loss x10 and x0.1 give the same final point.
    spread = []
    for problem in problems(count):
        finals = [
            run(problem.rescaled(0, factor), ("adam", 0.05), 0.01, args.steps).final
            for factor in (1.0, 10.0, 0.1)
        ]
        spread.append(max(float(np.linalg.norm(f - finals[0])) for f in finals[1:]))
    print(
        f"  scale invariance (top loss x10, x0.1; Adam): largest change of the final point "
        f"{max(spread):.2e} (all < 1e-3: {all(s < 1e-3 for s in spread)})"
    )


if __name__ == "__main__":
    common.run(main)
