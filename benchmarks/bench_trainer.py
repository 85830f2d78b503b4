"""Trainer throughput against a bare PyTorch loop and against torch-rechub's MTLTrainer.

All three train the same MMoE (``common.MMOE``: 8 experts [128, 64], towers [16], embedding 16,
batch norm; about 0.62M parameters) on the same real Census-Income training split (79,810 rows),
batch 1024, Adam lr 1e-3, the mean of the two tasks' BCE, no gradient clipping, no L2:

- bare loop: the practical limit: one ``randperm`` per epoch, ``index_select`` batches from the
  same tensors, forward, loss, backward, Adam step; nothing else;
- nomoretuning's ``Trainer`` with equal weights (and with NMT), ``eval_every`` unset: per step it
  also checks the losses are finite, logs a history row (CSV) and runs the combiner's ``step``;
  training throughput counts training steps only (the time of its per-epoch evaluations and
  checkpoints is measured and reported beside it);
- torch-rechub 0.9.0's ``MTLTrainer.train_one_epoch`` with its own ``MMOE`` of the same layers,
  fed by its ``DataGenerator`` (a per-row dict Dataset + DataLoader), in its own virtual
  environment ``benchmarks/.venv-rechub`` (created on first use by ``setup_rechub.sh``: torch
  2.13.0 CPU, then torch-rechub 0.9.0). It is a peer, not a dependency of nomoretuning.

The measurements are interleaved (bare, trainer, NMT trainer, torch-rechub, then again) and each
figure is the median over rounds. Target: trainer >= 0.9x the bare loop.

Usage:
    python benchmarks/bench_trainer.py                   # 3 rounds of 2 epochs, 1 thread
    python benchmarks/bench_trainer.py --no-rechub       # skip torch-rechub
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

import nomoretuning as nt
from nomoretuning.data import PreparedDataset, TensorSplit
from nomoretuning.training.trainer import Trainer, TrainerConfig

HERE = Path(__file__).resolve().parent
RECHUB_VENV = HERE / ".venv-rechub"


def bare_loop(data: PreparedDataset, epochs: int, batch_size: int) -> float:
    """Seconds for ``epochs`` epochs of the minimal loop (after a 10-step warm-up)."""
    train = data.train
    assert isinstance(train, TensorSplit)
    model = common.mmoe(data)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tasks = list(data.tasks)
    sparse, dense, labels = train.sparse, train.dense, train.labels
    n = len(train)
    generator = torch.Generator().manual_seed(0)

    def epoch(limit: int | None = None) -> None:
        order = torch.randperm(n, generator=generator)
        for i, start in enumerate(range(0, n, batch_size)):
            if limit is not None and i >= limit:
                return
            index = order[start : start + batch_size]
            out = model(sparse.index_select(0, index), dense.index_select(0, index))
            loss = sum(
                F.binary_cross_entropy_with_logits(out[t], labels[t].index_select(0, index))
                for t in tasks
            ) / len(tasks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            optimizer.step()

    epoch(limit=10)
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    return time.perf_counter() - start


def trainer_run(
    data: PreparedDataset, epochs: int, batch_size: int, method: str, run_dir: Path
) -> dict[str, float]:
    """Seconds of training steps, of evaluation/checkpoints, and rows trained, in a Trainer."""
    tasks = list(data.tasks)
    combiner = nt.NMT(tasks) if method == "nmt" else nt.EqualWeights(tasks)
    config = TrainerConfig(
        batch_size=batch_size,
        lr=1e-3,
        grad_clip=None,
        max_epochs=epochs,
        patience=10_000,
        progress=False,
        device="cpu",
    )
    trainer = Trainer(common.mmoe(data), combiner, data, config, run_dir=run_dir, overwrite=True)
    side = {"s": 0.0}
    for name in ("_evaluate_and_select", "_save_last", "_end_stage", "_evaluate"):
        _timed(trainer, name, side)
    steps = {"n": 0}
    original = trainer._train_step

    def counted(batch: Any, bar: Any) -> None:
        steps["n"] += len(batch)
        original(batch, bar)

    trainer._train_step = counted  # type: ignore[method-assign]
    start = time.perf_counter()
    trainer.fit()
    total = time.perf_counter() - start
    return {"train_s": total - side["s"], "side_s": side["s"], "rows": steps["n"]}


def _timed(trainer: Trainer, name: str, sink: dict[str, float]) -> None:
    """Adds the time spent in ``trainer.name`` to ``sink["s"]`` (nested calls counted once)."""
    original = getattr(trainer, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        if sink.get("busy"):
            return original(*args, **kwargs)
        sink["busy"] = 1
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            sink["busy"] = 0
            sink["s"] += time.perf_counter() - start

    setattr(trainer, name, timed)


def export_for_rechub(data: PreparedDataset, path: Path) -> None:
    train, valid = data.train, data.valid
    assert isinstance(train, TensorSplit) and isinstance(valid, TensorSplit)
    tasks = list(data.tasks)

    def labels(split: TensorSplit) -> np.ndarray:
        return torch.stack([split.labels[t] for t in tasks], 1).numpy()

    np.savez(
        path,
        vocab=np.array([f.vocab_size for f in data.features.sparse]),
        train_sparse=train.sparse.numpy(),
        train_dense=train.dense.numpy(),
        train_labels=labels(train),
        valid_sparse=valid.sparse.numpy(),
        valid_dense=valid.dense.numpy(),
        valid_labels=labels(valid),
    )


def ensure_rechub() -> Path | None:
    python = RECHUB_VENV / "bin" / "python"
    if python.exists():
        return python
    print("torch-rechub: creating benchmarks/.venv-rechub (setup_rechub.sh) ...", flush=True)
    done = subprocess.run(["bash", str(HERE / "setup_rechub.sh")], check=False)
    return python if done.returncode == 0 and python.exists() else None


def rechub_run(python: Path, npz: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        str(python),
        str(HERE / "rechub_mmoe.py"),
        str(npz),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--experts",
        str(common.MMOE["num_experts"]),
        "--expert-dims",
        *map(str, common.MMOE["expert_dims"]),
        "--tower-dims",
        *map(str, common.MMOE["tower_dims"]),
        "--embedding-dim",
        str(common.MMOE["embedding_dim"]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"torch-rechub run failed: {done.stderr[-1500:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--census", type=Path, default=None, help="raw Census-Income file")
    parser.add_argument(
        "--epochs", type=common.positive_int, default=2, help="epochs per measurement"
    )
    parser.add_argument("--rounds", type=common.positive_int, default=3)
    parser.add_argument("--batch-size", type=common.positive_int, default=1024)
    parser.add_argument("--threads", type=common.positive_int, default=1)
    parser.add_argument("--no-rechub", action="store_true", help="skip torch-rechub")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    data = common.census(args.census)
    print(common.machine(args.threads))
    print(
        f"data: Census-Income train split, {len(data.train):,} rows "  # type: ignore[arg-type]
        f"({common.census_path(args.census)}); batch {args.batch_size}; "
        f"{args.epochs} epochs per measurement, {args.rounds} rounds, medians"
    )
    python = None if args.no_rechub else ensure_rechub()
    rates: dict[str, list[float]] = {"bare": [], "trainer": [], "trainer_nmt": [], "rechub": []}
    side: list[float] = []
    rechub_info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "census.npz"
        export_for_rechub(data, npz)
        rows = len(data.train) * args.epochs  # type: ignore[arg-type]
        for round_index in range(args.rounds):
            rates["bare"].append(rows / bare_loop(data, args.epochs, args.batch_size))
            run = trainer_run(data, args.epochs, args.batch_size, "equal", Path(tmp) / "run")
            rates["trainer"].append(run["rows"] / run["train_s"])
            side.append(run["side_s"])
            nmt = trainer_run(data, args.epochs, args.batch_size, "nmt", Path(tmp) / "nmt")
            rates["trainer_nmt"].append(nmt["rows"] / nmt["train_s"])
            if python is not None:
                rechub_info = rechub_run(python, npz, args)
                rates["rechub"].append(rechub_info["rows"] / rechub_info["train_s"][0])
            print(
                f"round {round_index + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in rates.items() if v)
                + " samples/s",
                flush=True,
            )
    bare = common.median(rates["bare"])
    model_size = common.parameters(common.mmoe(data))
    print(f"MMoE: nomoretuning {model_size:,} parameters", end="")
    if rechub_info:
        print(f", torch-rechub {rechub_info['parameters']:,} parameters", end="")
    print()
    print(f"{'loop':<34} {'samples/s':>11} {'vs bare':>8}")
    labels = {
        "bare": "bare PyTorch loop",
        "trainer": "nomoretuning Trainer (equal)",
        "trainer_nmt": "nomoretuning Trainer (NMT)",
        "rechub": f"torch-rechub {rechub_info.get('torch_rechub', '')} MTLTrainer",
    }
    for key, values in rates.items():
        if not values:
            continue
        rate = common.median(values)
        print(f"{labels[key]:<34} {rate:>11,.0f} {rate / bare:>7.2f}x")
    trainer = common.median(rates["trainer"])
    verdict = "met" if trainer / bare >= 0.9 else "MISSED"
    print(f"target trainer >= 0.9x bare loop: {trainer / bare:.2f}x, {verdict}")
    if rates["rechub"]:
        print(f"trainer vs torch-rechub: {trainer / common.median(rates['rechub']):.2f}x")
    elif args.no_rechub:
        print("torch-rechub: skipped (--no-rechub)")
    else:
        print("torch-rechub: not measured (benchmarks/.venv-rechub could not be created)")
    print(
        f"(the trainer also spent {common.median(side):.2f} s per measurement on its per-epoch "
        f"validation and checkpoints, not counted above)"
    )


if __name__ == "__main__":
    common.run(main)
