"""TikTok ICME 2019 on the real 200-row sample, preprocessed as STEM does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split

from nomoretuning.data import TIKTOK_SPARSE, TensorSplit, load_tiktok
from nomoretuning.errors import DataError


def _raw(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, dtype=str)


def test_sample_has_no_like_positive_outside_train(tiktok_path: Path) -> None:
    with pytest.raises(DataError, match="label column 'like' is all 0 in the valid split") as info:
        load_tiktok(tiktok_path)
    assert "allow_single_class=True" in str(info.value)
    assert str(tiktok_path) in str(info.value)


def test_loads_the_sample_with_stem_split_and_schema(tiktok_path: Path) -> None:
    with pytest.warns(UserWarning, match="'like' is all 0"):
        ds = load_tiktok(tiktok_path, allow_single_class=True)
    assert ds.tasks == ("finish", "like")
    assert [f.name for f in ds.features.sparse] == list(TIKTOK_SPARSE)
    assert ds.features.dense == ()
    splits = [ds.train, ds.valid, ds.test]
    assert [len(s) for s in splits] == [162, 18, 20]  # type: ignore[arg-type]

    # The rows are exactly sklearn's train_test_split(test_size=0.1, random_state=42), twice.
    rest, test = train_test_split(np.arange(200), test_size=0.1, random_state=42)
    train, valid = train_test_split(rest, test_size=0.1, random_state=42)
    idx = ds.metadata["indices"]
    for ours, ref in ((idx["train"], train), (idx["valid"], valid), (idx["test"], test)):
        assert np.array_equal(ours, ref)

    raw = _raw(tiktok_path)
    for split, rows in zip(splits, (train, valid, test), strict=True):
        assert isinstance(split, TensorSplit)
        assert split.labels["finish"].tolist() == raw.iloc[rows, 6].astype(float).tolist()
        assert split.labels["like"].tolist() == raw.iloc[rows, 7].astype(float).tolist()


def test_min_count_ten_on_train_sends_most_ids_to_oov(tiktok_path: Path) -> None:
    ds = load_tiktok(tiktok_path, tasks=["finish"])
    train = ds.train
    assert isinstance(train, TensorSplit)
    raw = _raw(tiktok_path).iloc[ds.metadata["indices"]["train"]]
    sizes = {f.name: f.vocab_size for f in ds.features.sparse}
    columns = dict(zip(TIKTOK_SPARSE, (0, 2, 3, 4, 5, 8, 9, 11), strict=True))
    for j, name in enumerate(TIKTOK_SPARSE):
        counts = raw[columns[name]].value_counts()
        assert sizes[name] == 1 + int((counts >= 10).sum()), name
        kept = raw[columns[name]].map(counts).to_numpy() >= 10
        assert np.array_equal(train.sparse[:, j].numpy() > 0, kept), name
    assert sizes["uid"] == 1 and sizes["item_id"] == 1  # ids are unique in 200 rows
    assert sizes["channel"] > 1
    # Lower min_count keeps more ids.
    loose = load_tiktok(tiktok_path, tasks=["finish"], min_count=1)
    assert loose.features.sparse[0].vocab_size > 100


def test_groups_are_raw_uids_or_stem_encoded_uids(tiktok_path: Path) -> None:
    ds = load_tiktok(tiktok_path, tasks=["finish"])
    raw = _raw(tiktok_path)
    test = ds.test
    assert isinstance(test, TensorSplit) and test.groups is not None
    uids = raw.iloc[ds.metadata["indices"]["test"], 0].to_numpy()
    # Same raw uid <=> same group id.
    same_uid = uids[:, None] == uids[None, :]
    same_group = (test.groups[:, None] == test.groups[None, :]).numpy()
    assert np.array_equal(same_uid, same_group)
    stem = load_tiktok(tiktok_path, tasks=["finish"], stem_gauc_groups=True)
    assert isinstance(stem.test, TensorSplit) and stem.test.groups is not None
    assert torch.equal(stem.test.groups, stem.test.sparse[:, 0])


def test_rejects_other_formats(tmp_path: Path, tiktok_path: Path) -> None:
    bad = tmp_path / "track2.txt"
    bad.write_text(
        "\n".join(line.rsplit("\t", 1)[0] for line in tiktok_path.read_text().splitlines())
    )
    with pytest.raises(DataError, match=r"expected 12 tab-separated columns .* found 11"):
        load_tiktok(bad)
    with pytest.raises(DataError, match=r"unknown task 'click'; choose from \['finish', 'like'\]"):
        load_tiktok(tiktok_path, tasks=["click"])
