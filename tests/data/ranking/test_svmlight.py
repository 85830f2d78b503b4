"""load_svmlight_ranking: the real LightGBM example files, qid rows, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nomoretuning.data.ranking import load_svmlight_ranking
from nomoretuning.errors import DataError


def test_loader_on_real_example(lambdarank_dir: Path) -> None:
    train = load_svmlight_ranking(lambdarank_dir / "rank.train")  # finds rank.train.query
    test = load_svmlight_ranking(
        lambdarank_dir / "rank.test", query_path=lambdarank_dir / "rank.test.query"
    )
    assert train.features.shape == (3005, 300) and train.features.dtype == np.float32
    assert test.features.shape == (768, 300)
    assert int(train.groups.max()) + 1 == 201 and int(test.groups.max()) + 1 == 50
    sizes = np.loadtxt(lambdarank_dir / "rank.train.query", dtype=np.int64)
    assert np.bincount(train.groups).tolist() == sizes.tolist()
    assert np.bincount(train.relevance.astype(int)).tolist() == [645, 1211, 858, 222, 69]
    assert np.all(np.diff(train.groups) >= 0)  # groups follow file order
    # first row of rank.train: "0 10:0.89 11:0.75 ..." -> one-based index 10 is column 9
    assert train.relevance[0] == 0 and train.features[0, 9] == pytest.approx(0.89)


def test_loader_reads_qid(tmp_path: Path) -> None:
    path = tmp_path / "letor.txt"
    path.write_text(
        "# comment\n2 qid:10 1:1.0 3:0.5 # doc a\n0 qid:10 2:2.0\n1 qid:3 1:0.1\n4 qid:10 3:1\n"
    )
    data = load_svmlight_ranking(path, n_features=4)
    assert data.features.shape == (4, 4)
    assert data.relevance.tolist() == [2.0, 0.0, 1.0, 4.0]
    assert data.groups.tolist() == [0, 0, 1, 0]  # same qid = same group, ids by first appearance


def test_loader_errors(tmp_path: Path) -> None:
    path = tmp_path / "rank.txt"
    path.write_text("1 1:0.5\n0 2:0.1\n2 1:0.3\n")
    with pytest.raises(DataError, match=r"rank\.txt: no query ids .* write rank\.txt\.query"):
        load_svmlight_ranking(path)
    # Some rows with qid: scoring needs no queries either.
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("1 qid:1 1:0.5\n0 2:0.1\n")
    with pytest.raises(DataError, match=r"1 of 2 rows lack 'qid:' .* write mixed\.txt\.query"):
        load_svmlight_ranking(mixed)
    assert load_svmlight_ranking(mixed, require_groups=False).groups.tolist() == [-1, -1]
    # Rows to score need no queries: every group is -1.
    assert load_svmlight_ranking(path, require_groups=False).groups.tolist() == [-1, -1, -1]
    sizes = tmp_path / "rank.txt.query"
    sizes.write_text("2\n2\n")
    with pytest.raises(
        DataError, match=r"rank\.txt\.query: group sizes sum to 4 but rank\.txt has 3"
    ):
        load_svmlight_ranking(path)
    sizes.write_text("2\nx\n")
    with pytest.raises(DataError, match="line 2 is 'x'"):
        load_svmlight_ranking(path)
    sizes.write_text("2\n1\n")
    assert load_svmlight_ranking(path).groups.tolist() == [0, 0, 1]
    with pytest.raises(DataError, match="file not found"):
        load_svmlight_ranking(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="group-size file not found"):
        load_svmlight_ranking(path, query_path=tmp_path / "nope.query")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 qid:1 1:0.5\nabc qid:1 2:1\n")
    with pytest.raises(DataError, match=r"bad\.txt: not a valid SVMlight"):
        load_svmlight_ranking(bad)
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("1 qid:1 1:0.5\n0 2:1\n")
    with pytest.raises(DataError, match="lack 'qid:'"):
        load_svmlight_ranking(mixed)
    with pytest.raises(DataError, match="n_features"):
        load_svmlight_ranking(path, n_features=1)
