"""Epochs over the same tensors: `TensorSplit.batches` vs a per-row Dataset + DataLoader.

Both sides shuffle, use batch size 1024 and yield the same structure (sparse, dense, labels dict,
groups). Data: the real Census-Income training split when the file is found (``--census PATH``,
the cache, or ``../shared/data`` beside the checkout), otherwise ``--rows`` synthetic rows.

Usage:
    python benchmarks/bench_batching.py                  # Census-Income if found
    python benchmarks/bench_batching.py --synthetic --rows 1000000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

from nomoretuning.data import TensorSplit, find_census_income, load_census_income, make_synthetic

SHARED_CENSUS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "census-income-kdd"
    / "census-income.test.gz"
)  # fmt: skip


class RowDataset(Dataset[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]]):
    """The per-row baseline: one ``__getitem__`` per row, batched by the default collate."""

    def __init__(self, split: TensorSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(
        self, i: int
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        s = self.split
        groups = s.groups[i] if s.groups is not None else torch.tensor(0)
        return s.sparse[i], s.dense[i], {k: v[i] for k, v in s.labels.items()}, groups


def time_tensor_split(split: TensorSplit, batch_size: int, epochs: int) -> tuple[float, int]:
    """Seconds and rows for `epochs` shuffled passes of `TensorSplit.batches`."""
    gen = torch.Generator().manual_seed(0)
    rows = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in split.batches(batch_size, shuffle=True, generator=gen):
            rows += len(batch)
    return time.perf_counter() - start, rows


def time_dataloader(split: TensorSplit, batch_size: int, epochs: int) -> tuple[float, int]:
    """Seconds and rows for `epochs` shuffled passes of a per-row Dataset + DataLoader."""
    loader = DataLoader(
        RowDataset(split),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        num_workers=0,
    )
    rows = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for sparse, _dense, _labels, _groups in loader:
            rows += int(sparse.shape[0])
    return time.perf_counter() - start, rows


def _data(args: argparse.Namespace) -> tuple[TensorSplit, str]:
    path = args.census
    if path is None and not args.synthetic:
        path = find_census_income() or (SHARED_CENSUS if SHARED_CENSUS.is_file() else None)
    if path is not None:
        ds = load_census_income(path)
        train = ds.train
        assert isinstance(train, TensorSplit)
        return train, f"Census-Income train split ({path})"
    synthetic = make_synthetic(args.rows, split=(1.0, 0.0, 0.0), seed=0)
    train = synthetic.train
    assert isinstance(train, TensorSplit)
    return train, f"{args.rows:,} synthetic rows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--census", type=Path, default=None, help="raw Census-Income file")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic rows")
    parser.add_argument(
        "--rows", type=common.positive_int, default=1_000_000, help="synthetic rows"
    )
    parser.add_argument("--batch-size", type=common.positive_int, default=1024)
    parser.add_argument(
        "--epochs", type=common.positive_int, default=20, help="epochs of TensorSplit.batches"
    )
    parser.add_argument("--loader-epochs", type=int, default=1, help="epochs of the DataLoader")
    args = parser.parse_args()

    torch.set_num_threads(1)
    split, what = _data(args)
    print(
        f"data: {what}: {len(split):,} rows, {split.sparse.shape[1]} sparse, "
        f"{split.dense.shape[1]} dense, tasks {', '.join(split.tasks)}"
    )
    print(f"batch size {args.batch_size}, shuffled, 1 torch thread, CPU")

    fast_s, fast_rows = time_tensor_split(split, args.batch_size, args.epochs)
    slow_s, slow_rows = time_dataloader(split, args.batch_size, args.loader_epochs)
    fast, slow = fast_rows / fast_s, slow_rows / slow_s
    print(
        f"TensorSplit.batches       : {fast:>14,.0f} rows/s  ({args.epochs} epochs, {fast_s:.2f} s)"
    )
    print(
        f"per-row Dataset+DataLoader: {slow:>14,.0f} rows/s  "
        f"({args.loader_epochs} epochs, {slow_s:.2f} s)"
    )
    print(f"ratio                     : {fast / slow:>14,.1f}x")


if __name__ == "__main__":
    common.run(main)
