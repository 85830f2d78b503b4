"""Overhead of each loss combiner per training step, against equal weights, same model and batch.

One training step is what the trainer does: forward, per-task BCE, the combiner's loss, backward,
gradient clipping, Adam, then ``combiner.step(losses, closure)`` (FAMO's closure is one extra
forward without gradient). Every combiner trains a copy of the same MMoE on the same batch of the
real Census-Income data; NMT runs in its last stage (marital under income, after the joint start
and income's stage) with an active constraint (bound set below the current loss, so its
multiplier grows every step), i.e. the most expensive path. The steps are
timed round-robin (each turn runs every combiner) so that a change in the machine's load hits all
of them alike; the figure is the median over turns.

Targets (CPU): NMT <= 2 % over equal weights, FAMO <= 30 %, EMTL <= 50 %.

Usage:
    python benchmarks/bench_combiners.py                 # batch 4096, 1 thread
    python benchmarks/bench_combiners.py --threads 2 --batch-size 1024
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

import nomoretuning as nt
from nomoretuning.data import TensorSplit

TARGETS = {"nmt": 0.02, "famo": 0.30, "emtl": 0.50}


def make_step(
    name: str, build: Callable[[torch.nn.Module], nt.LossCombiner], data: Any, batch: Any
) -> tuple[Callable[[], None], nt.LossCombiner]:
    model = common.mmoe(data)
    combiner = build(model)
    params = list(model.parameters()) + list(combiner.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3)
    tasks = list(data.tasks)
    labels = {t: batch.labels[t] for t in tasks}

    def losses() -> dict[str, torch.Tensor]:
        out = model(batch.sparse, batch.dense)
        return {t: F.binary_cross_entropy_with_logits(out[t], labels[t]) for t in tasks}

    def closure() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return losses()

    def step() -> None:
        values = losses()
        total = combiner(values)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        combiner.step({t: v.detach() for t, v in values.items()}, closure=closure)

    if isinstance(combiner, nt.NMT):
        # Past the joint start and income's stage, into marital's under an active constraint: a
        # bound of "income" far below its loss now, so its multiplier grows every step.
        step()
        combiner.next_stage()  # the joint start records no bound
        step()
        with torch.no_grad():
            now = float(losses()[tasks[0]])
        combiner.next_stage(bound=now * 0.01)
        assert combiner.constrained_tasks == (tasks[0],), combiner.constrained_tasks
    for _ in range(3):  # warm-up (allocator, Adam state)
        step()
    return step, combiner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--census", type=Path, default=None, help="raw Census-Income file")
    parser.add_argument("--batch-size", type=common.positive_int, default=4096)
    parser.add_argument("--threads", type=common.positive_int, default=1)
    parser.add_argument("--rounds", type=common.positive_int, default=15, help="round-robin turns")
    parser.add_argument(
        "--repeat", type=common.positive_int, default=5, help="steps per combiner per turn"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    data = common.census(args.census)
    train = data.train
    assert isinstance(train, TensorSplit)
    batch = next(train.batches(args.batch_size, shuffle=True, generator=torch.Generator()))
    tasks = list(data.tasks)

    builders: dict[str, Callable[[torch.nn.Module], nt.LossCombiner]] = {
        "equal": lambda m: nt.EqualWeights(tasks),
        "nmt": lambda m: nt.NMT(tasks),
        "famo": lambda m: nt.FAMO(tasks),
        "emtl": lambda m: nt.EMTL(tasks, shared=lambda: m.shared_representation),
        "uncertainty": lambda m: nt.UncertaintyWeighting(tasks),
        "famo+nmt": lambda m: nt.NMT(tasks, combiner=lambda t: nt.FAMO(t)),
        "emtl+nmt": lambda m: nt.NMT(
            tasks, combiner=lambda t: nt.EMTL(t, shared=lambda: m.shared_representation)
        ),
    }
    steps: dict[str, Callable[[], None]] = {}
    combiners: dict[str, nt.LossCombiner] = {}
    for name, build in builders.items():
        steps[name], combiners[name] = make_step(name, build, data, batch)
    model_size = common.parameters(common.mmoe(data))

    print(common.machine(args.threads))
    print(
        f"data: Census-Income ({common.census_path(args.census)}), one batch of "
        f"{len(batch)} rows; MMoE {model_size:,} parameters; Adam, clip 10"
    )
    times = common.interleaved(steps, args.rounds, args.repeat)
    base = common.median(times["equal"])
    print(f"{'combiner':<12} {'ms/step':>9} {'vs equal':>9}  target")
    results: dict[str, float] = {}
    for name in builders:
        t = common.median(times[name])
        overhead = t / base - 1
        results[name] = overhead
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"<= {target:.0%}: {'met' if overhead <= target else 'MISSED'}"
        print(f"{name:<12} {t * 1e3:>9.2f} {overhead:>+9.1%}  {verdict}")
    nmt = combiners["nmt"]
    assert isinstance(nmt, nt.NMT)
    print(
        f"(NMT ran in stage {nmt.stage} with λ = {nmt.multipliers[tasks[0]]:.3g} on "
        f"{tasks[0]!r}; {args.rounds} turns x {args.repeat} steps each, medians)"
    )
    # The spread of the equal-weights baseline says how much of an overhead is noise.
    spread = (max(times["equal"]) - min(times["equal"])) / base
    print(f"noise: the equal-weights step varied by {spread:.1%} across turns (max-min/median)")


if __name__ == "__main__":
    common.run(main)
