"""The fitting pass of a stream: rows per split, checked labels, vocabularies and the scaler.

One pass over every piece counts each split's rows in each piece, checks every label (and dense
value) and sums the positives (for the class check), counts the training rows' tokens
(`TokenCounts`) and merges their dense moments (`DenseMoments`). A second pass over the training
rows collects the text of the kept tokens and stops as soon as it has all of them. The
vocabularies are those `CategoricalEncoder.fit` gives on the training rows.

With hashed ids (`HashedEncoder`), no dense column and a split by file or by row position there
is nothing to fit: the rows per split come from the split itself, and labels are checked as the
pieces are read during training.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nomoretuning.data.columnar import (
    DenseMoments,
    KeptTokens,
    TokenCounts,
    label_values,
    numeric_values,
)
from nomoretuning.data.encoders import CategoricalEncoder, DenseScaler, FeatureEncoder
from nomoretuning.data.pieces import Piece, release_memory
from nomoretuning.data.prepare import SPLITS, check_split_classes
from nomoretuning.data.streaming.encoding import PieceEncoder, RowSplit
from nomoretuning.data.tokens import arrow_tokens

__all__ = ["StreamFit", "fit_stream", "needs_fitting"]


@dataclass
class StreamFit:
    """What the fitting pass found: rows of each split in each piece, and labels' positives."""

    rows: dict[int, list[int]]
    positives: dict[int, dict[str, int]] = field(default_factory=dict)


def needs_fitting(encoder: PieceEncoder) -> bool:
    """Whether the stream has anything to fit or count by reading it (see the module docstring)."""
    vocabularies = any(
        isinstance(e, CategoricalEncoder) for e in encoder.encoder.categorical.values()
    )
    return vocabularies or bool(encoder.schema.dense) or encoder.split.by == "key"


def fit_stream(
    encoder: PieceEncoder,
    pieces: Sequence[Piece],
    min_count: int | Mapping[str, int],
    *,
    progress: bool = True,
    allow_single_class: bool = False,
) -> StreamFit:
    """Fits ``encoder.encoder`` in place on the training rows; see the module docstring."""
    schema = encoder.schema
    features: FeatureEncoder = encoder.encoder
    if not needs_fitting(encoder):
        features.scaler = DenseScaler.identity(0, features.scaler.transform_name)
        return _counted_by_position(encoder, pieces)
    counts = {
        c: TokenCounts()
        for c, e in features.categorical.items()
        if isinstance(e, CategoricalEncoder)
    }
    moments = DenseMoments(len(schema.dense))
    fit = StreamFit(
        {code: [] for code in range(3)}, {c: dict.fromkeys(schema.labels, 0) for c in range(3)}
    )
    for piece in _bar(pieces, progress, "reading the stream (rows, labels, vocabularies)"):
        table = encoder.read(piece)
        codes = encoder.split.codes(piece, table)
        source, first = encoder.source(piece), piece.start
        for code in range(3):
            fit.rows[code].append(int((codes == code).sum()))
        for task in schema.labels:
            values = label_values(table.column(task), task, source, first)
            for code in range(3):
                fit.positives[code][task] += int(values[codes == code].sum())
        train = np.flatnonzero(codes == 0)
        if schema.dense:
            dense = np.column_stack(
                [numeric_values(table.column(c), c, source, first) for c in schema.dense]
            )
            moments.add(features.scaler.transformed(dense[train]))
        for column, counter in counts.items():
            counter.add(arrow_tokens(table.column(column)).take(train))
    release_memory()
    source = " + ".join(str(f.path) for f in encoder.files)
    _class_check(fit, schema.labels, source, allow_single_class)
    _key_split_check(fit, encoder.split, source)
    features.scaler = moments.scaler(features.scaler.transform_name).check(schema.dense, source)
    kept = {c: counts.pop(c).kept(features.categorical[c].min_count) for c in list(counts)}
    _collect_text(encoder, pieces, fit, kept, progress)
    for column, tokens in kept.items():
        features.categorical[column] = tokens.encoder()[0]
    release_memory()
    return fit


def _collect_text(
    encoder: PieceEncoder,
    pieces: Sequence[Piece],
    fit: StreamFit,
    kept: dict[str, KeptTokens],
    progress: bool,
) -> None:
    """The second pass: the text of every kept token, from the training rows."""
    waiting = {c: k for c, k in kept.items() if not k.complete}
    if not waiting:
        return
    for i, piece in enumerate(_bar(pieces, progress, "reading the stream (vocabulary text)")):
        if fit.rows[0][i] == 0:
            continue
        table = encoder.read(piece)
        train = np.flatnonzero(encoder.split.codes(piece, table) == 0)
        for column, tokens in list(waiting.items()):
            text = arrow_tokens(table.column(column)).take(train)
            tokens.collect(text, tokens.codes(text))
            if tokens.complete:
                del waiting[column]
        if not waiting:
            return


def _counted_by_position(encoder: PieceEncoder, pieces: Sequence[Piece]) -> StreamFit:
    fit = StreamFit({code: [] for code in range(3)})
    for piece in pieces:
        codes = encoder.split.codes(piece, None)
        for code in range(3):
            fit.rows[code].append(int((codes == code).sum()))
    return fit


def _class_check(fit: StreamFit, tasks: Sequence[str], source: str, allow: bool) -> None:
    counts = {
        split: (sum(fit.rows[code]), {t: fit.positives[code][t] for t in tasks})
        for code, split in enumerate(SPLITS)
    }
    check_split_classes(counts, source, allow, stacklevel=5)


def _key_split_check(fit: StreamFit, split: RowSplit, source: str) -> None:
    """Warns when a split by key came out far from its fractions (under half or over twice a
    split's share): a few keys hold most rows (every row of a key stays in one split)."""
    if split.by != "key":
        return
    rows = [sum(fit.rows[code]) for code in range(3)]
    # the splits the hash fills (test comes from files of its own when its fraction is 0)
    total = sum(r for r, wanted in zip(rows, split.fractions, strict=True) if wanted > 0) or 1
    shares = [r / total for r in rows]
    off = [
        name
        for name, share, wanted in zip(SPLITS, shares, split.fractions, strict=True)
        if wanted > 0 and not 0.5 * wanted <= share <= 2 * wanted
    ]
    if off:
        got = ", ".join(
            f"{n} {r:,} rows ({s:.1%})"
            for n, r, s, wanted in zip(SPLITS, rows, shares, split.fractions, strict=True)
            if wanted > 0
        )
        warnings.warn(
            f"{source}: split_key={split.key!r} gave {got} for the fractions {split.fractions}: "
            f"a few {split.key!r} values hold most rows; split by a key with more values, or "
            "leave split_key unset",
            UserWarning,
            stacklevel=5,
        )


def _bar(pieces: Sequence[Piece], enabled: bool, description: str) -> Any:
    if not enabled:
        return pieces
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the cli extra
        return pieces
    # disable=None: no bar when stderr is not a terminal (logs, CI)
    return tqdm(
        pieces, desc=description, unit="piece", leave=False, dynamic_ncols=True, disable=None
    )
