"""Tenrec QK-Video on rows in its schema written to tmp_path (no real file offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nomoretuning.data import QK_VIDEO_COLUMNS, QK_VIDEO_FEATURES, TensorSplit, load_qk_video
from nomoretuning.errors import DataError


def _rows(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    click = (rng.random(n) < 0.2).astype(int)
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(1, 200, n),
            "item_id": rng.integers(1, 500, n),
            "click": click,
            "follow": click * (rng.random(n) < 0.1),
            "like": click * (rng.random(n) < 0.3),
            "share": click * (rng.random(n) < 0.1),
            "video_category": rng.integers(0, 20, n),
            "watching_times": click * rng.integers(1, 4, n),
            "gender": rng.integers(0, 3, n),
            "age": rng.integers(0, 8, n),
        }
    )
    assert tuple(frame.columns) == QK_VIDEO_COLUMNS
    return frame


@pytest.fixture
def qk_csv(tmp_path: Path) -> Path:
    path = tmp_path / "QK-video.csv"
    _rows().to_csv(path, index=False)
    return path


def _all_labels(ds: object, task: str) -> np.ndarray:
    return np.concatenate([getattr(ds, s).labels[task].numpy() for s in ("train", "valid", "test")])


def test_negative_sampling_keeps_all_positives_and_ratio_negatives(qk_csv: Path) -> None:
    positives = int(_rows()["click"].sum())
    ds = load_qk_video(qk_csv)
    click = _all_labels(ds, "click")
    assert int(click.sum()) == positives
    assert int((click == 0).sum()) == 2 * positives  # the default ratio, as in Tenrec
    assert ds.tasks == ("click", "like")
    one = load_qk_video(qk_csv, negative_ratio=1.0)
    assert int((_all_labels(one, "click") == 0).sum()) == positives
    everything = load_qk_video(qk_csv, negative_ratio=None)
    assert len(_all_labels(everything, "click")) == 3000
    # More negatives asked for than exist: keep them all.
    assert len(_all_labels(load_qk_video(qk_csv, negative_ratio=100.0), "click")) == 3000


def test_schema_split_and_determinism(qk_csv: Path) -> None:
    ds = load_qk_video(
        qk_csv, tasks=["click", "like", "follow", "share"], split=(0.7, 0.2, 0.1), seed=3
    )
    assert [f.name for f in ds.features.sparse] == list(QK_VIDEO_FEATURES)
    assert ds.features.dense == ()  # watching_times is an outcome, never a feature
    n = sum(len(getattr(ds, s)) for s in ("train", "valid", "test"))
    assert len(ds.valid) == round(0.2 * n) and len(ds.test) == round(0.1 * n)  # type: ignore[arg-type]
    again = load_qk_video(
        qk_csv, tasks=["click", "like", "follow", "share"], split=(0.7, 0.2, 0.1), seed=3
    )
    other = load_qk_video(
        qk_csv, tasks=["click", "like", "follow", "share"], split=(0.7, 0.2, 0.1), seed=4
    )
    assert isinstance(ds.test, TensorSplit) and isinstance(again.test, TensorSplit)
    assert np.array_equal(ds.test.sparse.numpy(), again.test.sparse.numpy())
    assert not np.array_equal(ds.metadata["indices"]["test"], other.metadata["indices"]["test"])
    # Group ids are users: rows of the same user share a group.
    assert ds.test.groups is not None
    users = ds.test.sparse[:, 0]
    for g in ds.test.groups.unique()[:20]:
        assert len(users[ds.test.groups == g].unique()) == 1


def test_parquet_input_and_custom_features(tmp_path: Path) -> None:
    path = tmp_path / "qk.parquet"
    _rows().to_parquet(path, index=False)
    ds = load_qk_video(path, tasks=["like"], features=["item_id", "age"], min_count=3)
    assert [f.name for f in ds.features.sparse] == ["item_id", "age"]
    assert ds.train.groups is not None  # type: ignore[attr-defined]


def test_bad_rows_and_arguments(tmp_path: Path, qk_csv: Path) -> None:
    frame = _rows()
    frame.loc[17, "like"] = 2
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    with pytest.raises(
        DataError, match=r"bad\.csv: label column 'like' has value .*2.* at data row 18"
    ):
        load_qk_video(bad)
    with pytest.raises(DataError, match="unknown task 'watching_times'"):
        load_qk_video(qk_csv, tasks=["watching_times"])
    with pytest.raises(DataError, match=r"negative_ratio must be a finite number >= 0, got -1\.0"):
        load_qk_video(qk_csv, negative_ratio=-1.0)
    with pytest.raises(DataError, match="'like' is both a task and a feature"):
        load_qk_video(qk_csv, features=["user_id", "like"])
    no_age = tmp_path / "no_age.csv"
    _rows().drop(columns=["age"]).to_csv(no_age, index=False)
    with pytest.raises(DataError, match=r"no_age\.csv: column 'age' is missing"):
        load_qk_video(no_age)
