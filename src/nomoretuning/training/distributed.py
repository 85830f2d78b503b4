"""Data-parallel helpers for the trainer: process group, sharding, all-reduce, gather.

Everything here is a no-op (or the identity) in a single process, so the trainer calls these
helpers unconditionally. Under ``torchrun`` (or any launcher that sets ``WORLD_SIZE``/``RANK``)
``init_from_env`` starts the process group; the trainer then

- splits every *global* batch across the ranks (``shard_batches``): every rank draws the same
  seeded permutation of the training split, and rank r takes its contiguous share of each batch of
  ``batch_size`` rows, so the global batch, and the epoch, are those of a single process;
- averages the per-task losses over the ranks weighted by rows (``all_reduce_losses``), so the
  combiner's state (NMT's multipliers and bounds, FAMO's logits) is updated from identical values on
  every rank;
- evaluates each rank's contiguous share of a split and gathers the predictions
  (``gather_arrays``) so that metrics are computed on the whole split;
- writes files on rank 0 only (``is_main_process``) and broadcasts rank 0's decisions
  (``run_on_main``).

Example (one process: world size 1, nothing to reduce):
    >>> import torch
    >>> world_size(), rank(), is_main_process()
    (1, 0, True)
    >>> shard_range(10, rank=1, world=3)
    (4, 7)
    >>> losses = {"a": torch.tensor(0.5)}
    >>> all_reduce_losses(losses, rows=8)["a"]
    tensor(0.5000)
"""

from __future__ import annotations

import datetime
import gc
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from nomoretuning.data.batching import Batch, TensorSplit
from nomoretuning.data.streaming import StreamingSplit
from nomoretuning.errors import ConfigError

__all__ = [
    "all_gather_objects",
    "all_reduce_losses",
    "all_reduce_means",
    "all_reduce_sum",
    "barrier",
    "batches_per_epoch",
    "broadcast_object",
    "destroy",
    "gather_arrays",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "rank",
    "run_on_main",
    "shard_batches",
    "shard_range",
    "slice_batch",
    "world_size",
]

T = TypeVar("T")


# ----------------------------------------------------------------------------- process group
def is_distributed() -> bool:
    """True inside an initialized process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``, set by torchrun; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the process that writes files and prints."""
    return rank() == 0


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Starts the process group from torchrun's environment (``WORLD_SIZE``, ``RANK``, ...).

    Does nothing and returns False when ``WORLD_SIZE`` is unset or 1, or when a group already
    exists (then returns whether it has more than one process). The backend defaults to NCCL when
    CUDA is available and gloo otherwise; on CUDA each process is bound to GPU ``LOCAL_RANK``.

    Example:
        >>> init_from_env()  # not under torchrun
        False
    """
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_available():
        raise ConfigError(
            "WORLD_SIZE > 1 but this torch build has no torch.distributed; "
            "run a single process or install a torch build with distributed support"
        )
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE is set but {missing[0]} is not: launch with torchrun "
            "(e.g. torchrun --nproc_per_node 2 -m nomoretuning train CONFIG)"
        )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(
        backend or ("nccl" if cuda else "gloo"), timeout=datetime.timedelta(seconds=timeout_s)
    )
    return is_distributed()


def destroy() -> None:
    """Ends the process group if one was started (safe to call in a single process), then
    collects the garbage: a DDP model left in a reference cycle keeps the group alive past
    `destroy_process_group`, and a gloo group freed only in the interpreter's teardown can abort
    the process at exit ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def barrier() -> None:
    """Waits for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


# ------------------------------------------------------------------------------ collectives
def _collective_device() -> torch.device:
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: Tensor) -> Tensor:
    """Sum of ``values`` over the ranks (a new tensor on ``values``' device)."""
    if not is_distributed():
        return values.clone()
    reduced = values.detach().to(_collective_device(), copy=True)
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced.to(values.device)


def all_reduce_losses(
    losses: Mapping[str, Tensor], rows: int, extra: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Per-task losses of the global batch: the mean over ranks weighted by each rank's rows.

    ``losses`` are batch means over this rank's ``rows`` rows (ignored when ``rows == 0``);
    ``extra`` scalars (e.g. a regularizer, also a mean over rows) are reduced the same way and
    returned beside them. The result is detached, in the dtype of each input, identical on every
    rank. In a single process the inputs come back detached and unchanged.
    """
    return all_reduce_means({**losses, **(extra or {})}, rows)[0]


def all_reduce_means(values: Mapping[str, Tensor], rows: int) -> tuple[dict[str, Tensor], int]:
    """Row-weighted means over the ranks of per-rank means, and the global row count.

    One all-reduce of ``len(values) + 1`` float64 numbers. Example (one process):
        >>> all_reduce_means({"a": torch.tensor(2.0)}, rows=3)
        ({'a': tensor(2.)}, 3)
    """
    if not is_distributed():
        return {k: v.detach() for k, v in values.items()}, rows
    keys = list(values)
    weighted = torch.zeros(len(keys) + 1, dtype=torch.float64)
    if rows > 0:
        weighted[:-1] = torch.stack([values[k].detach().double().cpu() for k in keys]) * rows
    weighted[-1] = rows
    total = all_reduce_sum(weighted)
    count = round(float(total[-1]))
    if count <= 0:
        raise RuntimeError("all_reduce_means: the global batch has no rows")
    means = {
        k: (total[i] / count).to(dtype=values[k].dtype, device=values[k].device)
        for i, k in enumerate(keys)
    }
    return means, count


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (pickled; the identity in a single process)."""
    if not is_distributed():
        return obj
    box: list[Any] = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return cast(T, box[0])


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def run_on_main(fn: Callable[[], T], error: Callable[[str], Exception]) -> T:
    """Runs ``fn`` on rank 0 and hands its result (or its failure) to every rank.

    If ``fn`` raises on rank 0, rank 0 re-raises it and every other rank raises ``error(message)``
    with the same one-line message, so no rank is left waiting in a collective.
    """
    if not is_distributed():
        return fn()
    result: Any = None
    failure: BaseException | None = None
    message: str | None = None
    if is_main_process():
        try:
            result = fn()
        except Exception as exc:  # broadcast, then re-raise below
            failure, message = exc, str(exc)
    outcome = broadcast_object((message, result))
    if failure is not None:
        raise failure
    if outcome[0] is not None:
        raise error(outcome[0])
    return cast(T, outcome[1])


def gather_arrays(
    arrays: Mapping[str, np.ndarray | None], to_main_only: bool = False
) -> dict[str, np.ndarray | None]:
    """Concatenates each rank's 1-D arrays in rank order (``None`` entries are skipped).

    Every rank gets the result, or only rank 0 with ``to_main_only`` (the others get an empty
    dict).

    Example:
        >>> gather_arrays({"x": np.arange(3)})["x"]
        array([0, 1, 2])
    """
    if not is_distributed():
        return dict(arrays)
    if to_main_only:
        parts: list[Any] = [None] * world_size() if is_main_process() else []
        dist.gather_object(dict(arrays), parts if is_main_process() else None, dst=0)
        if not is_main_process():
            return {}
    else:
        parts = all_gather_objects(dict(arrays))
    out: dict[str, np.ndarray | None] = {}
    for key in arrays:
        present = [p[key] for p in parts if p[key] is not None]
        out[key] = np.concatenate(present) if present else None
    return out


# -------------------------------------------------------------------------------- sharding
def shard_range(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of rank ``rank`` when ``n`` rows are split in ``world`` contiguous,
    near-equal parts (the first ``n % world`` parts hold one row more).

    Example:
        >>> [shard_range(5, r, 2) for r in range(2)]
        [(0, 3), (3, 5)]
    """
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    """Rows ``[start, stop)`` of a batch (views)."""
    return Batch(
        sparse=batch.sparse[start:stop],
        dense=batch.dense[start:stop],
        labels={k: v[start:stop] for k, v in batch.labels.items()},
        groups=None if batch.groups is None else batch.groups[start:stop],
    )


def _group_cuts(groups: Tensor, world: int) -> list[int]:
    """Cut points (``world + 1`` of them) near an even split that never cut a group in two."""
    n = int(groups.shape[0])
    change = (groups[1:] != groups[:-1]).nonzero().view(-1) + 1
    boundaries = np.concatenate([[0], change.cpu().numpy(), [n]])
    cuts = [0]
    for r in range(1, world):
        target = shard_range(n, r, world)[0]
        pick = int(boundaries[np.abs(boundaries - target).argmin()])
        cuts.append(max(pick, cuts[-1]))
    cuts.append(n)
    return cuts


def batches_per_epoch(split: Any, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``split`` (its own count when it has one).

    Example:
        >>> batches_per_epoch(range(10), 4)
        3
    """
    count = getattr(split, "num_batches", None)
    return int(count(batch_size)) if callable(count) else math.ceil(len(split) / batch_size)


def shard_batches(
    split: object,
    batch_size: int,
    generator: torch.Generator,
    rank: int,
    world: int,
    start: int = 0,
) -> Iterator[Batch]:
    """This rank's share of each shuffled global batch of ``batch_size`` rows (in one process,
    ``world == 1``, every batch whole), from global batch ``start`` on (a resumed epoch).

    Every rank draws the same permutation from ``generator`` (seeded identically), so the global
    batches are exactly those of ``split.batches(batch_size, shuffle=True, generator=generator)``
    in one process; rank r takes rows ``shard_range(len(batch), r, world)`` of each (some ranks get
    an empty share when a batch has fewer rows than ranks). For a plain `TensorSplit` only this
    rank's rows are gathered. A `StreamingSplit` deals its pieces to lanes and reads only this
    rank's (its batches are the same as one process's with as many lanes). Other splits (e.g. a
    `GroupedSplit`, whose batches keep groups whole) are batched as they do themselves, and each
    batch is cut at the group boundaries nearest to an even split.

    Example:
        >>> split = TensorSplit(torch.arange(10).view(10, 1), torch.zeros(10, 0),
        ...                     {"y": torch.zeros(10)})
        >>> parts = [[b.sparse.view(-1).tolist() for b in shard_batches(
        ...     split, 4, torch.Generator().manual_seed(0), r, 2)] for r in range(2)]
        >>> whole = [b.sparse.view(-1).tolist() for b in split.batches(
        ...     4, shuffle=True, generator=torch.Generator().manual_seed(0))]
        >>> [a + b for a, b in zip(*parts)] == whole
        True
    """
    if isinstance(split, StreamingSplit):
        yield from split.batches(
            batch_size, shuffle=True, generator=generator, start=start, rank=rank, world=world
        )
        return
    if type(split) is TensorSplit:
        n = len(split)
        if n == 0:
            return
        order = torch.randperm(n, generator=generator, device=generator.device).to(split.device)
        for begin in range(start * batch_size, n, batch_size):
            size = min(batch_size, n - begin)
            lo, hi = shard_range(size, rank, world)
            yield split.batch(order[begin + lo : begin + hi])
        return
    batches = split.batches(batch_size, shuffle=True, generator=generator)  # type: ignore[attr-defined]
    for batch in itertools.islice(batches, start, None):
        if world == 1:
            yield batch
            continue
        if batch.groups is not None and getattr(split, "group_sizes", None) is not None:
            cuts = _group_cuts(batch.groups, world)
            lo, hi = cuts[rank], cuts[rank + 1]
        else:
            lo, hi = shard_range(len(batch), rank, world)
        yield slice_batch(batch, lo, hi)
