"""Learning-to-rank data: pairs, group-preserving batches, the SVMlight loader on the real LightGBM
example, and the synthetic search-log simulator."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nomoretuning.core.losses import pairwise_logistic_loss
from nomoretuning.data.batching import TensorSplit
from nomoretuning.data.ranking import (
    GroupedSplit,
    load_lambdarank_example,
    load_svmlight_ranking,
    make_pairs,
    make_search_logs,
)
from nomoretuning.errors import DataError

SHARED_DATA = Path(
    os.environ.get(
        "NOMORETUNING_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
    )
)
LAMBDARANK = SHARED_DATA / "lambdarank-example"


@pytest.fixture(scope="module")
def lambdarank_dir() -> Path:
    if not (LAMBDARANK / "rank.train").is_file():
        pytest.skip(f"real data folder {LAMBDARANK} not available")
    return LAMBDARANK


@pytest.fixture(scope="module")
def lambdarank(lambdarank_dir: Path):
    return load_lambdarank_example(lambdarank_dir, seed=0)


def _pair_set(first: torch.Tensor, second: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(first.tolist(), second.tolist(), strict=True))


def _brute_pairs(labels, groups) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, j in itertools.permutations(range(len(labels)), 2)
        if groups[i] == groups[j] and labels[i] > labels[j]
    }


# --------------------------------------------------------------------------- make_pairs


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 3)), min_size=0, max_size=30))
def test_make_pairs_equals_brute_force(rows: list[tuple[int, int]]) -> None:
    labels = torch.tensor([y for y, _ in rows], dtype=torch.float32)
    groups = torch.tensor([g for _, g in rows], dtype=torch.int64)
    first, second = make_pairs(labels, groups)
    assert first.dtype == second.dtype == torch.int64
    assert len(first) == len(_pair_set(first, second))  # no duplicates
    assert _pair_set(first, second) == _brute_pairs(labels.tolist(), groups.tolist())


def test_make_pairs_count_ties_and_groups() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    groups = rng.permutation(np.repeat(np.arange(25), 20))  # interleaved, not contiguous
    first, second = make_pairs(labels, groups)
    expected = 0
    for g in range(25):
        counts = np.bincount(labels[groups == g], minlength=4)
        expected += (counts.sum() ** 2 - (counts**2).sum()) // 2  # pairs of different labels
    assert len(first) == expected
    f, s = first.numpy(), second.numpy()
    assert (groups[f] == groups[s]).all()
    assert (labels[f] > labels[s]).all()


def test_make_pairs_without_groups_and_all_ties() -> None:
    first, second = make_pairs(torch.tensor([1.0, 0.0, 1.0]))
    assert _pair_set(first, second) == {(0, 1), (2, 1)}
    first, second = make_pairs(torch.ones(5), torch.zeros(5, dtype=torch.long))
    assert len(first) == 0


def test_make_pairs_mask_restricts_rows() -> None:
    labels = torch.tensor([0.0, 5.0, 3.0, 0.0, 9.0, 1.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    first, second = make_pairs(labels, groups, mask=labels > 0)
    assert _pair_set(first, second) == {(1, 2), (4, 5)}


def test_make_pairs_sampling_cap_and_seed() -> None:
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(rng.integers(0, 3, 300))
    groups = torch.from_numpy(np.repeat(np.arange(30), 10))
    all_pairs = _pair_set(*make_pairs(labels, groups))

    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return make_pairs(labels, groups, max_pairs_per_group=4, generator=gen)

    first, second = draw(0)
    per_group = torch.bincount(groups[first], minlength=30)
    full = torch.bincount(groups[make_pairs(labels, groups)[0]], minlength=30)
    assert torch.equal(per_group, torch.clamp(full, max=4))
    assert _pair_set(first, second) <= all_pairs
    assert len(_pair_set(first, second)) == len(first)  # without replacement
    again = draw(0)
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])
    assert not torch.equal(first, draw(1)[0]) or not torch.equal(second, draw(1)[1])


def test_make_pairs_sampling_is_uniform() -> None:
    # 1200 identical groups of labels [0, 1, 2, 3] (6 pairs each), 2 pairs kept per group:
    # each of the 6 within-group pairs should be kept in about 1200 * 2 / 6 = 400 groups.
    n_groups = 1200
    labels = torch.arange(4).repeat(n_groups)
    groups = torch.arange(n_groups).repeat_interleave(4)
    gen = torch.Generator().manual_seed(0)
    first, second = make_pairs(labels, groups, max_pairs_per_group=2, generator=gen)
    assert len(first) == 2 * n_groups
    kind = (first % 4) * 4 + second % 4  # which of the 6 pairs, same in every group
    counts = torch.bincount(kind, minlength=16)
    counts = counts[counts > 0]
    assert len(counts) == 6
    assert bool(((counts >= 330) & (counts <= 470)).all())  # expected 400, sd about 18


def test_make_pairs_bad_inputs() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        make_pairs(torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        make_pairs(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="integer ids"):
        make_pairs(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="1-D"):
        make_pairs(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="max_pairs_per_group"):
        make_pairs(torch.zeros(2), max_pairs_per_group=0)
    with pytest.raises(ValueError, match="mask"):
        make_pairs(torch.zeros(2), mask=torch.ones(2))


# --------------------------------------------------------------------------- GroupedSplit


def _grouped(groups: list[int], n_dense: int = 2) -> GroupedSplit:
    n = len(groups)
    return GroupedSplit(
        torch.zeros(n, 0, dtype=torch.long),
        torch.arange(n * n_dense, dtype=torch.float32).view(n, n_dense),
        {"relevance": torch.arange(n, dtype=torch.float32)},
        torch.tensor(groups),
    )


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 7, 50])
def test_grouped_split_keeps_groups_whole_and_covers_rows(shuffle: bool, batch_size: int) -> None:
    rng = np.random.default_rng(batch_size)
    groups = rng.permutation(np.repeat(np.arange(12), rng.integers(1, 9, 12))).tolist()
    split = _grouped(groups)
    gen = torch.Generator().manual_seed(0)
    seen: list[int] = []
    for batch in split.batches(batch_size, shuffle=shuffle, generator=gen):
        rows = batch.labels["relevance"].long().tolist()  # label = row index
        seen.extend(rows)
        assert batch.groups is not None
        ids = set(batch.groups.tolist())
        for g in ids:  # every group in the batch is complete
            assert sum(1 for r in rows if groups[r] == g) == groups.count(g)
        assert len(batch) <= batch_size or len(ids) == 1
        torch.testing.assert_close(batch.dense, split.dense[torch.tensor(rows)])
    assert sorted(seen) == list(range(len(groups)))


def test_grouped_split_packing_and_order() -> None:
    split = _grouped([4, 4, 4, 9, 2, 2, 2, 2, 2, 7])
    sizes = [len(b) for b in split.batches(4, shuffle=False)]
    assert sizes == [4, 5, 1]  # [3 + 1], oversized group of 5, [1]
    first = next(iter(split.batches(4, shuffle=False)))
    assert first.groups is not None and first.groups.tolist() == [4, 4, 4, 9]
    assert split.num_groups == 4 and split.group_sizes.tolist() == [3, 1, 5, 1]
    assert split.num_batches(4) == 3 and split.num_batches(4, drop_last=True) == 2
    assert [len(b) for b in split.batches(4, shuffle=False, drop_last=True)] == [4, 5]


def test_grouped_split_shuffle_is_seeded() -> None:
    split = _grouped(list(np.repeat(np.arange(40), 3)))

    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        batches = split.batches(6, shuffle=True, generator=gen)
        return [g for b in batches if b.groups is not None for g in b.groups.tolist()]

    assert order(0) == order(0)
    assert order(0) != order(1)


def test_grouped_split_is_a_tensor_split_and_keeps_its_type() -> None:
    split = _grouped([0, 0, 1, 1, 1])
    assert isinstance(split, TensorSplit)
    assert isinstance(split.subset([2, 3, 4]), GroupedSplit)
    assert isinstance(split.to("cpu"), GroupedSplit)
    assert len(split.subset([2, 3, 4])) == 3


def test_grouped_split_bad_inputs() -> None:
    with pytest.raises(ValueError, match="groups are required"):
        GroupedSplit(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 1), {"y": torch.zeros(2)})
    with pytest.raises(ValueError, match="integer ids"):
        GroupedSplit(
            torch.zeros(2, 0, dtype=torch.long),
            torch.zeros(2, 1),
            {"y": torch.zeros(2)},
            torch.zeros(2),
        )
    with pytest.raises(ValueError, match="groups must be"):
        GroupedSplit(
            torch.zeros(2, 0, dtype=torch.long),
            torch.zeros(2, 1),
            {"y": torch.zeros(2)},
            torch.zeros(3, dtype=torch.long),
        )
    with pytest.raises(ValueError, match="batch_size"):
        next(iter(_grouped([0, 1]).batches(0, shuffle=False)))
    with pytest.raises(ValueError, match="groups are required"):
        GroupedSplit.from_numpy(np.zeros((2, 0)), np.zeros((2, 1)), {"y": np.zeros(2)})


# --------------------------------------------------------------------------- SVMlight loader


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
    with pytest.raises(DataError, match=r"rank\.txt: no query ids"):
        load_svmlight_ranking(path)
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


def test_lambdarank_example(lambdarank, lambdarank_dir: Path) -> None:
    ds = lambdarank
    assert ds.tasks == ("relevance",)
    assert ds.features.num_sparse == 0 and ds.features.dense == tuple(f"f{j}" for j in range(300))
    assert len(ds.train) + len(ds.valid) == 3005 and len(ds.test) == 768
    assert ds.train.num_groups == 161 and ds.valid.num_groups == 40 and ds.test.num_groups == 50
    assert not set(ds.train.groups.tolist()) & set(ds.valid.groups.tolist())
    assert all(isinstance(s, GroupedSplit) for s in (ds.train, ds.valid, ds.test))
    assert ds.train.sparse.shape == (len(ds.train), 0)
    mean = ds.train.dense.mean(0)
    assert float(mean.abs().max()) < 1e-4  # standardized with the training part's statistics
    batch = next(ds.train.batches(256, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert batch.dense.shape[1] == 300 and set(batch.labels) == {"relevance"}
    assert str(lambdarank_dir) in ds.description and "real data" in ds.description
    other = load_lambdarank_example(lambdarank_dir, seed=1, standardize=False)
    assert set(other.valid.groups.tolist()) != set(ds.valid.groups.tolist())
    assert float(other.train.dense.min()) >= 0.0  # raw features lie in [0, 1]
    with pytest.raises(ValueError, match="tasks"):
        load_lambdarank_example(lambdarank_dir, tasks=["click"])
    with pytest.raises(DataError, match="directory not found"):
        load_lambdarank_example(lambdarank_dir / "nope")


def test_pairwise_loss_on_real_batches(lambdarank) -> None:
    batch = next(lambdarank.train.batches(512, shuffle=False))
    y, g = batch.labels["relevance"], batch.groups
    first, second = make_pairs(y, g)
    scores = torch.zeros(len(batch), requires_grad=True)
    loss = pairwise_logistic_loss(scores, y, g, pairs=(first, second))
    assert loss.item() == pytest.approx(np.log(2.0))
    torch.testing.assert_close(loss, pairwise_logistic_loss(scores, y, g))


# --------------------------------------------------------------------------- simulator


def test_search_logs_shapes_and_encoding() -> None:
    ds = make_search_logs(200, (5, 15), seed=3)
    assert ds.tasks == ("pay", "amount", "relevance")
    assert ds.features.dense[-1] == "log_price" and ds.features.num_sparse == 0
    total = len(ds.train) + len(ds.valid) + len(ds.test)
    assert 200 * 5 <= total <= 200 * 15
    assert ds.train.num_groups == 160 and ds.valid.num_groups == 20 and ds.test.num_groups == 20
    groups = [set(s.groups.tolist()) for s in (ds.train, ds.valid, ds.test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    y = ds.train.labels
    assert set(y["pay"].unique().tolist()) == {0.0, 1.0}
    assert set(y["relevance"].unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert torch.equal(y["amount"] > 0, y["pay"] == 1)
    first, second = make_pairs(y["amount"], ds.train.groups, mask=y["amount"] > 0)
    assert bool((y["pay"][first] == 1).all() and (y["pay"][second] == 1).all())
    assert "synthetic" in ds.description
    again = make_search_logs(200, (5, 15), seed=3)
    assert torch.equal(again.train.dense, ds.train.dense)
    only = make_search_logs(20, 4, seed=0, tasks=["relevance", "pay"])
    assert only.tasks == ("relevance", "pay") and set(only.train.labels) == {"relevance", "pay"}


def test_search_logs_conflict_knob() -> None:
    correlations = []
    for conflict in (0.0, 0.5, 1.0):
        ds = make_search_logs(1000, 20, seed=0, conflict=conflict)
        y = ds.train.labels
        correlations.append(float(np.corrcoef(y["pay"].numpy(), y["relevance"].numpy())[0, 1]))
        truth = ds.metadata["true_utility"]["train"]
        empirical = np.corrcoef(truth["pay"].numpy(), truth["relevance"].numpy())[0, 1]
        # documented corr(u_pay, z); z adds unit noise to u_rel, so corr(u_pay, u_rel) is larger
        documented = ds.metadata["utility_correlation"]["pay_relevance"]
        assert empirical == pytest.approx(documented * np.sqrt(5.0) / 2.0, abs=0.03)
    assert correlations[0] > 0.3 and abs(correlations[1]) < 0.05 and correlations[2] < -0.2


def test_search_logs_price_effect_conflict() -> None:
    def corr(price_effect: float) -> float:
        ds = make_search_logs(1000, 20, seed=0, price_effect=price_effect)
        y = ds.train.labels
        price = ds.train.dense[:, -1].numpy()
        return float(np.corrcoef(price, y["pay"].numpy())[0, 1])

    assert corr(0.0) == pytest.approx(0.0, abs=0.03)
    assert corr(2.0) < -0.2  # pricier items are bought less ...
    ds = make_search_logs(300, 20, seed=0)
    y = ds.train.labels
    bought = y["pay"] == 1
    price = ds.train.dense[bought, -1].numpy()
    assert np.corrcoef(price, np.log(y["amount"][bought].numpy()))[0, 1] > 0.8  # ... but pay more


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_queries": 0}, "n_queries"),
        ({"items_per_query": 0}, "items_per_query"),
        ({"items_per_query": (5, 2)}, "items_per_query"),
        ({"conflict": 1.5}, "conflict"),
        ({"price_effect": -1.0}, "price_effect"),
        ({"pay_rate": 1.0}, "pay_rate"),
        ({"signal": 0.0}, "signal"),
        ({"n_features": 1}, "n_features"),
        ({"split": (0.5, 0.5)}, "split"),
        ({"tasks": ["click"]}, "tasks"),
    ],
)
def test_search_logs_bad_inputs(kwargs: dict, match: str) -> None:
    args = {"n_queries": 10, "items_per_query": 3, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_search_logs(**args)
