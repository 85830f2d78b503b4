"""Tenrec QK-Video (``QK-video.csv``) with its assumptions as explicit parameters.

STEM does not publish its QK-Video script; this follows Tenrec's own multi-task loader
(``utils.py`` ``mtl_data``): labels click and like, categorical user_id, item_id,
video_category, gender, age, negatives (click = 0) subsampled to 2x the positives, then a shuffled
80/10/10 split. Tenrec's ``hist_1..hist_10`` history features are not built here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from nomoretuning.checks import positive_number, task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.prepare import binary_label, build_dataset, check_frame
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.errors import DataError

__all__ = ["QK_VIDEO_COLUMNS", "QK_VIDEO_FEATURES", "QK_VIDEO_TASKS", "load_qk_video"]

QK_VIDEO_COLUMNS: tuple[str, ...] = (
    "user_id", "item_id", "click", "follow", "like", "share", "video_category",
    "watching_times", "gender", "age",
)  # fmt: skip
"""The header of ``QK-video.csv``."""

QK_VIDEO_FEATURES: tuple[str, ...] = ("user_id", "item_id", "video_category", "gender", "age")
"""Default sparse fields (Tenrec's MTL loader without the history)."""

QK_VIDEO_TASKS: tuple[str, ...] = ("click", "follow", "like", "share")


def negative_sample(click: np.ndarray, ratio: float | None, seed: int) -> np.ndarray:
    """Sorted row positions kept: every click = 1 row and ``round(ratio * positives)`` click = 0
    rows drawn without replacement (all of them if there are fewer, or if `ratio` is None).

    Example:
        >>> negative_sample(np.array([1, 0, 0, 0, 0, 1]), 1.0, seed=0).size
        4
    """
    n = len(click)
    if ratio is None:
        return np.arange(n, dtype=np.int64)
    ratio = positive_number(ratio, "negative_ratio", allow_zero=True, error=DataError)
    positives = np.flatnonzero(click == 1)
    negatives = np.flatnonzero(click == 0)
    n_keep = min(len(negatives), round(ratio * len(positives)))
    rng = np.random.default_rng([seed, 1])
    kept = rng.choice(negatives, size=n_keep, replace=False)
    return np.sort(np.concatenate([positives, kept])).astype(np.int64)


def load_qk_video(
    path: str | os.PathLike[str],
    *,
    tasks: Sequence[str] = ("click", "like"),
    negative_ratio: float | None = 2.0,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_count: int = 1,
    features: Sequence[str] = QK_VIDEO_FEATURES,
    allow_single_class: bool = False,
) -> PreparedDataset:
    """Tenrec QK-Video as a `PreparedDataset`.

    Schema: sparse fields `features` (default user_id, item_id, video_category, gender, age),
    read as text, vocabularies fitted on the training split with `min_count`; no dense columns
    (``watching_times`` is an outcome, never a feature); labels `tasks` (any of click, follow,
    like, share); group id ``user_id``.

    Steps: read (CSV or Parquet, only the needed columns) -> keep all click = 1 rows and
    ``negative_ratio`` x as many click = 0 rows (seeded; None keeps every row) -> shuffle and
    split by `split` with `seed` -> encode.

    Args:
        path: ``QK-video.csv`` (or a Parquet file with the same columns).
        tasks: label columns, in priority order.
        negative_ratio: click = 0 rows kept per click = 1 row (Tenrec: 2.0); None keeps all.
        split: (train, valid, test) fractions.
        seed: seed of the negative sampling and of the split.
        min_count: minimum training count of a kept id.
        features: sparse feature columns.
        allow_single_class: warn instead of raising when a task has one class in a split.

    Example:
        >>> ds = load_qk_video("QK-video.csv", tasks=["click", "like"])  # doctest: +SKIP
    """
    src = str(path)
    chosen = task_names(tasks, src, available=QK_VIDEO_TASKS, error=DataError)
    fractions = check_fractions(split)
    feature_cols = tuple(features)
    for column in feature_cols:
        if column in chosen:
            raise DataError(
                f"{src}: column {column!r} is both a task and a feature (label leakage); "
                "remove it from features"
            )
    needed = list(dict.fromkeys([*feature_cols, *chosen, "user_id", "click"]))
    if negative_ratio is None and "click" not in chosen:
        needed.remove("click")
    raw = read_table(path, columns=needed, dtype={c: str for c in feature_cols})
    schema = Schema(sparse=feature_cols, labels=chosen, group="user_id")
    frame = check_frame(raw, schema, src)
    if negative_ratio is not None:
        click = binary_label(raw["click"], "click", src)
        kept = negative_sample(click, negative_ratio, seed)
        frame = frame.iloc[kept].reset_index(drop=True)
    train, valid, test = split_indices(len(frame), fractions, seed)
    ratio = "all rows" if negative_ratio is None else f"negatives {negative_ratio}x positives"
    return build_dataset(
        frame,
        {"train": train, "valid": valid, "test": test},
        schema,
        name="qk-video",
        description=(
            f"Tenrec QK-Video from {src}; tasks {', '.join(chosen)}; {ratio}; split "
            f"{fractions} with seed {seed}"
        ),
        source=src,
        min_count=min_count,
        allow_single_class=allow_single_class,
        input_format=InputFormat("qk_video"),
    )
