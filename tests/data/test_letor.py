"""`load_letor`: SVMlight/LETOR files by path (qid or .query groups, comments, index bases, the
feature count over every file, a given validation file, transforms) and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nomoretuning.data import load_lambdarank_example
from nomoretuning.data.ranking import load_letor
from nomoretuning.errors import DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "lambdarank-example"


def _letor(path: Path, queries: int = 12, items: int = 5, seed: int = 0, base: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for q in range(queries):
        for _ in range(items):
            x = rng.random(3)
            label = int(rng.integers(0, 3))
            feats = " ".join(f"{j + base}:{v:.4f}" for j, v in enumerate(x) if v > 0.2)
            lines.append(f"{label} qid:{100 + q} {feats} # doc")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_qid_files_with_comments_and_splits_whole_queries(tmp_path: Path) -> None:
    train = _letor(tmp_path / "train.txt", queries=20)
    test = _letor(tmp_path / "test.txt", queries=4, seed=1)
    ds = load_letor(train, test=test)
    assert ds.tasks == ("relevance",) and ds.features.dense == ("f0", "f1", "f2")
    assert ds.train.num_groups == 16 and ds.valid.num_groups == 4 and ds.test.num_groups == 4
    assert len(ds.train) + len(ds.valid) == 100
    assert np.allclose(ds.train.dense.mean(0).numpy(), 0, atol=1e-5)  # standardized on train
    assert ds.metadata["input_format"].options == {"n_features": 3, "zero_based": False}
    # the same by the option names of a config, with a validation file of its own
    again = load_letor(train=train, test=test, valid=test)
    assert again.valid.num_groups == 4 and len(again.train) == 100


def test_feature_count_and_base_come_from_every_file(tmp_path: Path) -> None:
    train = tmp_path / "train.txt"
    train.write_text("1 qid:1 1:1\n0 qid:1 2:1\n2 qid:2 1:3\n0 qid:2 1:1\n")
    test = tmp_path / "test.txt"
    test.write_text("1 qid:7 5:2\n0 qid:7 1:1\n")  # a higher index only in the test file
    ds = load_letor(train, test=test, valid=test)
    assert ds.features.num_dense == 5
    zero = tmp_path / "zero.txt"
    zero.write_text("1 qid:1 0:1\n0 qid:1 1:1\n2 qid:2 0:3\n0 qid:2 1:1\n")
    ds = load_letor(zero, test=zero, valid=zero)
    assert ds.features.num_dense == 2 and ds.metadata["input_format"].options["zero_based"]
    assert load_letor(train, test=test, valid=test, n_features=8).features.num_dense == 8


def test_query_files_and_log1p(tmp_path: Path) -> None:
    train = tmp_path / "t.txt"
    train.write_text("1 1:10\n0 1:1000\n2 1:1\n0 1:0\n")
    (tmp_path / "t.txt.query").write_text("2\n2\n")
    ds = load_letor(train, test=train, valid=train, feature_transform="log1p", standardize=False)
    np.testing.assert_allclose(ds.test.dense[:, 0].numpy(), np.log1p([10, 1000, 1, 0]), rtol=1e-6)
    assert ds.test.num_groups == 2


def test_lambdarank_is_letor_on_lightgbms_files() -> None:
    if not (SHARED / "rank.train").is_file():
        pytest.skip("../shared/data is not beside the checkout")
    ds = load_lambdarank_example(SHARED)
    assert (len(ds.train) + len(ds.valid), len(ds.test)) == (3005, 768)
    assert ds.features.num_dense == 300
    with pytest.raises(DataError, match=r"query 1 .* has 1 item"):
        load_letor(SHARED / "rank.train", test=SHARED / "rank.test")  # LETOR's default: 2 items
    kept = load_letor(SHARED / "rank.train", test=SHARED / "rank.test", drop_small_queries=True)
    assert len(kept.train) + len(kept.valid) == 3004


@pytest.mark.parametrize(
    ("text", "options", "needles"),
    [
        ("1 qid:1 1:1\n0 qid:1 2:1\n1 2:1\n0 2:2\n", {}, ("lack 'qid:'", "line 3")),
        ("1 qid:1 1:1\nhigh qid:1 2:1\n", {}, ("line 2", "label 'high' is not a number")),
        ("1 qid:1 1:1\n0 qid:1 2:1\n1 qid:2 1:1\n", {}, ("query 2", "1 item", "min_query_size")),
        (
            "1 qid:1 1:1\n0 qid:1 9:1\n",
            {"n_features": 3},
            ("line 2", "feature index 9 is beyond n_features 3"),
        ),
        ("1 qid:1 1:1\n0 qid:1 2-1\n", {}, ("line 2", "'2-1' is not 'index:value'")),
        ("# c\n1 qid:1 1:1\n-1 qid:1 2:1\n", {}, ("relevance -1 at line 3", "must be >= 0")),
    ],
)
def test_bad_files_get_one_line_naming_the_row(
    tmp_path: Path, text: str, options: dict[str, object], needles: tuple[str, ...]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    good = _letor(tmp_path / "good.txt")
    with pytest.raises(DataError) as raised:
        load_letor(bad, test=good, **options)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "\n" not in message and str(bad) in message
    for needle in needles:
        assert needle in message


def test_missing_files_and_options(tmp_path: Path) -> None:
    good = _letor(tmp_path / "good.txt")
    with pytest.raises(DataError, match="no test file"):
        load_letor(good)
    with pytest.raises(DataError, match="no training file"):
        load_letor(test=good)
    with pytest.raises(DataError, match="valid='' names no file"):
        load_letor(good, test=good, valid="")
    with pytest.raises(DataError, match="file not found"):
        load_letor(tmp_path / "nope.txt", test=good)
    with pytest.raises(DataError, match="transform 'sqrt'"):
        load_letor(good, test=good, feature_transform="sqrt")  # type: ignore[arg-type]
