"""`StreamingSplit`: one split of a stream, batched from pieces read as they are needed.

An epoch with ``shuffle=True`` is planned from the generator alone:

1. The split's pieces are put in a random order and dealt to ``lanes`` (one per data-parallel
   rank; one in a single process unless `StreamOptions.lanes` says otherwise).
2. Each lane reads its pieces in windows of about ``shuffle_rows / lanes`` rows (the shuffle
   buffer), permutes each window's rows, and cuts the concatenation of its windows into local
   batches (``batch_size / lanes`` rows each; global batch ``g`` is every lane's batch ``g``).
3. With one lane the epoch has ``ceil(rows / batch_size)`` batches (the last one partial); with
   several, every lane yields the same number of full batches, as many as the lane dealt the
   smallest pieces could fill (the rows beyond it, about a piece per lane, wait for the next
   epoch's order).

Memory is one window per lane (two with ``prefetch``: the next is read in a thread while the
current one is trained on), whatever the number of rows. Batch
``g`` of an epoch is found without reading the windows before it (the window sizes are known),
so a resumed run continues exactly (``start``). The same ``lanes`` give the same batches in one
process as across ``lanes`` ranks.

With ``shuffle=False`` the split's rows come in file order (evaluation, measurements); a split of
at most ``cache_rows`` rows is kept after that first pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from nomoretuning.checks import positive_int
from nomoretuning.data.batching import Batch
from nomoretuning.data.pieces import Piece
from nomoretuning.data.streaming.encoding import EncodedRows, PieceEncoder
from nomoretuning.errors import DataError

__all__ = ["StreamOptions", "StreamingSplit"]


@dataclass(frozen=True)
class StreamOptions:
    """How a stream is read.

    Args:
        piece_rows: rows of a piece of a text file (Parquet pieces are row groups).
        shuffle_rows: rows of the shuffle buffer (all lanes together).
        lanes: how many interleaved sub-streams make an epoch (None: the number of
            data-parallel ranks). Set it to a run's rank count to reproduce that run in one
            process.
        prefetch: read each window in a thread while the one before it is trained on (memory:
            two windows).
        cache_rows: a split of at most this many rows is kept, encoded, after its first pass in
            file order (validation and test are then read once, not at every evaluation).
    """

    piece_rows: int = 65_536
    shuffle_rows: int = 1_048_576
    lanes: int | None = None
    prefetch: bool = True
    cache_rows: int = 1_048_576

    def __post_init__(self) -> None:
        positive_int(self.piece_rows, "piece_rows", error=DataError)
        positive_int(self.shuffle_rows, "shuffle_rows", error=DataError)
        if self.cache_rows < 0:
            raise DataError(f"cache_rows must be >= 0, got {self.cache_rows}")
        if self.lanes is not None:
            positive_int(self.lanes, "lanes", error=DataError)


@dataclass(frozen=True)
class _Lane:
    windows: list[list[int]]  # piece numbers (into the split's pieces) of each window
    sizes: np.ndarray  # rows of each window
    batch: int  # rows of a local batch


class StreamingSplit:
    """A split read from files every epoch (see the module docstring).

    Args:
        encoder: reads and encodes pieces.
        pieces: the pieces holding rows of this split, in file order.
        rows: this split's rows in each piece.
        code: the split (0 train, 1 valid, 2 test).
        options: how the stream is read.
    """

    def __init__(
        self,
        encoder: PieceEncoder,
        pieces: Sequence[Piece],
        rows: Sequence[int],
        code: int,
        options: StreamOptions,
    ) -> None:
        keep = [i for i, n in enumerate(rows) if n > 0]
        self.encoder = encoder
        self.pieces = [pieces[i] for i in keep]
        self.rows = np.asarray([rows[i] for i in keep], dtype=np.int64)
        self.code = code
        self.options = options
        self._bounds: list[tuple[int, int] | None] = [None] * len(self.pieces)
        self._cached: list[EncodedRows] | None = None

    def subset(self, rows: slice) -> StreamingSplit:
        """Rows ``rows.start .. rows.stop - 1`` of the split in file order (a contiguous share,
        e.g. one data-parallel rank's for evaluation)."""
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError("StreamingSplit.subset takes a contiguous slice")
        ends = np.cumsum(self.rows)
        begins = ends - self.rows
        part = StreamingSplit(self.encoder, [], [], self.code, self.options)
        for i, piece in enumerate(self.pieces):
            lo, hi = max(start, int(begins[i])), min(stop, int(ends[i]))
            if lo >= hi:
                continue
            offset = int(begins[i]) - (self._bounds[i] or (0, 0))[0]
            part.pieces.append(piece)
            part._bounds.append((lo - offset, hi - offset))
        part.rows = np.asarray([hi - lo for lo, hi in part._bounds], dtype=np.int64)  # type: ignore[misc]
        return part

    def _encode(self, number: int) -> EncodedRows:
        """The split's rows of piece ``number`` (within the subset's bounds)."""
        rows = self.encoder.encode(self.pieces[number], self.code)
        bounds = self._bounds[number]
        return rows if bounds is None else rows.take(slice(*bounds))

    def __len__(self) -> int:
        return int(self.rows.sum())

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.encoder.schema.labels)

    def lanes(self, world: int | None = None) -> int:
        """The lanes of an epoch: `StreamOptions.lanes`, else the data-parallel world size."""
        if self.options.lanes is not None:
            return self.options.lanes
        return world if world is not None else _world_size()

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per shuffled epoch (every rank yields this many)."""
        positive_int(batch_size, "batch_size", error=DataError)
        lanes = self.lanes()
        if lanes == 1 and drop_last:
            return len(self) // batch_size
        return self._epoch_batches(batch_size, lanes)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        start: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> Iterator[Batch]:
        """One epoch of batches (this rank's lanes of each global batch), from batch ``start``."""
        positive_int(batch_size, "batch_size", error=DataError)
        if not shuffle:
            yield from self._in_order(batch_size, drop_last)
            return
        lanes = self.lanes(world)
        if lanes % world:
            raise DataError(
                f"streaming: lanes={lanes} cannot be dealt to {world} ranks; use a multiple of "
                "the rank count (or leave lanes unset)"
            )
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        plan, total = self._plan(batch_size, lanes, seed)
        if lanes == 1 and drop_last:
            total = len(self) // batch_size
        streams = [self._lane(plan[lane], seed, lane, start) for lane in range(rank, lanes, world)]
        for _ in range(start, total):
            yield EncodedRows.concat([next(s) for s in streams]).batch()

    # ------------------------------------------------------------------------ the plan
    def _plan(self, batch_size: int, lanes: int, seed: int) -> tuple[list[_Lane], int]:
        """Each lane's windows and local batch size, and the global batches of the epoch."""
        order = np.random.default_rng([seed, 0]).permutation(len(self.pieces))
        window_rows = max(1, self.options.shuffle_rows // lanes)
        base, extra = divmod(batch_size, lanes)
        plan = []
        for lane in range(lanes):
            windows: list[list[int]] = [[]]
            sizes = [0]
            for piece in order[lane::lanes]:
                if sizes[-1] >= window_rows:
                    windows.append([])
                    sizes.append(0)
                windows[-1].append(int(piece))
                sizes[-1] += int(self.rows[piece])
            plan.append(_Lane(windows, np.asarray(sizes, np.int64), base + (lane < extra)))
        return plan, self._epoch_batches(batch_size, lanes)

    def _epoch_batches(self, batch_size: int, lanes: int) -> int:
        """Global batches per epoch. With several lanes: as many as the lane dealt the smallest
        pieces could fill, so the count is the same whatever the order the pieces are dealt in."""
        if lanes == 1:
            return -(-len(self) // batch_size)
        if batch_size < lanes:
            raise DataError(
                f"streaming: batch_size {batch_size} is smaller than the {lanes} lanes; use a "
                "batch size of at least one row per rank"
            )
        smallest = np.sort(self.rows)[: len(self.rows) // lanes].sum()
        batches = int(smallest // -(-batch_size // lanes))
        if batches == 0 and len(self) > 0:
            raise DataError(
                f"streaming: {len(self.pieces)} piece(s) of {len(self):,} rows dealt to {lanes} "
                f"lanes leave a lane without a batch of {-(-batch_size // lanes)} rows; lower "
                f"piece_rows (e.g. to {max(1, len(self) // (4 * lanes)):,}), the batch size, "
                "or the lanes"
            )
        return batches

    def _lane(self, lane: _Lane, seed: int, number: int, start: int) -> Iterator[EncodedRows]:
        """A lane's local batches from local batch ``start`` on (the last one may be partial)."""
        position = start * lane.batch
        ends = np.cumsum(lane.sizes)
        first = int(np.searchsorted(ends, position, side="right"))
        skip = position - (int(ends[first - 1]) if first > 0 else 0)
        carry: EncodedRows | None = None
        for w, window in enumerate(self._windows(lane, seed, number, first), start=first):
            at = skip if w == first else 0
            if carry is not None:
                need = lane.batch - len(carry)
                carry = EncodedRows.concat([carry, window.take(slice(at, at + need))])
                at += need
                if len(carry) < lane.batch:
                    continue
                yield carry
                carry = None
            while at + lane.batch <= len(window):
                yield window.take(slice(at, at + lane.batch))
                at += lane.batch
            if at < len(window):
                carry = window.take(slice(at, None))
        if carry is not None:
            yield carry

    def _windows(self, lane: _Lane, seed: int, number: int, first: int) -> Iterator[EncodedRows]:
        """The lane's windows from window ``first`` on; with ``prefetch`` each is read in a
        thread while the one before it is consumed."""
        count = len(lane.windows)
        if not self.options.prefetch:
            for w in range(first, count):
                yield self._window(lane.windows[w], seed, number, w)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream") as pool:

            def read(w: int) -> Future[EncodedRows] | None:
                return (
                    pool.submit(self._window, lane.windows[w], seed, number, w)
                    if w < count
                    else None
                )

            pending = read(first)
            for w in range(first, count):
                assert pending is not None
                window = pending.result()
                pending = read(w + 1)
                yield window

    def _window(self, pieces: list[int], seed: int, lane: int, number: int) -> EncodedRows:
        rows = EncodedRows.concat([self._encode(p) for p in pieces])
        order = np.random.default_rng([seed, 1, lane, number]).permutation(len(rows))
        return rows.take(order)

    def _in_order(self, batch_size: int, drop_last: bool) -> Iterator[Batch]:
        keep = self._cached is None and len(self) <= self.options.cache_rows
        kept: list[EncodedRows] = []
        carry: EncodedRows | None = None
        for rows in self._pieces_in_order():
            if keep:
                kept.append(rows)
            if carry is not None:
                rows = EncodedRows.concat([carry, rows])
                carry = None
            at = 0
            while at + batch_size <= len(rows):
                yield rows.take(slice(at, at + batch_size)).batch()
                at += batch_size
            if at < len(rows):
                carry = rows.take(slice(at, None))
        if carry is not None and not drop_last:
            yield carry.batch()
        if keep:
            self._cached = kept

    def _pieces_in_order(self) -> Iterator[EncodedRows]:
        if self._cached is not None:
            yield from self._cached
            return
        for number in range(len(self.pieces)):
            yield self._encode(number)


def _world_size() -> int:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_world_size())
    return 1
