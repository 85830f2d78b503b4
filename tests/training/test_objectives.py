"""PairwiseObjective: losses by hand, pairs inside groups, metrics against scikit-learn; and
objective_for, the objective a dataset describes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

import nomoretuning as nt
from nomoretuning.core import pairwise_logistic_loss
from nomoretuning.core.losses import softmax_cross_entropy_loss
from nomoretuning.data import GroupedSplit, PairwiseSpec, make_search_logs, make_synthetic
from nomoretuning.data.batching import Batch
from nomoretuning.errors import ConfigError, DataError
from nomoretuning.models import build_model
from nomoretuning.training.metrics import auc_difference, ndcg_difference
from nomoretuning.training.objectives import (
    BinaryObjective,
    PairMask,
    PairwiseObjective,
    objective_for,
    objective_from_spec,
)
from nomoretuning.training.prediction import predict
from nomoretuning.training.trainer import Trainer, TrainerConfig


def _batch(labels: dict[str, list[float]], groups: list[int]) -> Batch:
    n = len(groups)
    return Batch(
        torch.zeros(n, 0, dtype=torch.long),
        torch.zeros(n, 0),
        {t: torch.tensor(v) for t, v in labels.items()},
        torch.tensor(groups),
    )


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_losses_match_a_hand_computation() -> None:
    # group 7: rows 0-2, group 9: rows 3-4
    batch = _batch(
        {
            "pay": [1.0, 0.0, 0.0, 1.0, 0.0],
            "amount": [25.0, 0.0, 0.0, 40.0, 0.0],
            "relevance": [2.0, 2.0, 0.0, 0.0, 1.0],
        },
        [7, 7, 7, 9, 9],
    )
    s = torch.tensor([0.5, -0.5, 1.0, 0.0, 2.0], requires_grad=True)
    obj = PairwiseObjective(["pay", "amount", "relevance"], pair_masks={"amount": "positive"})
    losses = obj.losses(dict.fromkeys(obj.tasks, s), batch)
    values = {t: float(v.detach()) for t, v in losses.items()}
    # pay: (0,1), (0,2) in group 7; (3,4) in group 9: loss of a pair = log(1 + exp(s_j - s_i))
    pay = (_softplus(-0.5 - 0.5) + _softplus(1.0 - 0.5) + _softplus(2.0 - 0.0)) / 3
    # amount: purchased rows only (0 in group 7, 3 in group 9): no pair inside a group
    # relevance: (0,2), (1,2) in group 7 (rows 0 and 1 tie: no pair); (4,3) in group 9
    relevance = (_softplus(1.0 - 0.5) + _softplus(1.0 + 0.5) + _softplus(0.0 - 2.0)) / 3
    assert values["pay"] == pytest.approx(pay, abs=1e-6)
    assert values["relevance"] == pytest.approx(relevance, abs=1e-6)
    assert values["amount"] == 0.0
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert s.grad is not None and torch.isfinite(s.grad).all()
    # the same definition as the core loss with its own pairs
    expected = pairwise_logistic_loss(s.detach(), batch.labels["relevance"], batch.groups)
    assert values["relevance"] == pytest.approx(float(expected))


def test_amount_pairs_are_among_purchases_only() -> None:
    batch = _batch({"amount": [30.0, 0.0, 10.0, 20.0]}, [0, 0, 0, 0])
    first, second = PairwiseObjective(["amount"], pair_masks={"amount": "positive"}).pairs(batch)[
        "amount"
    ]
    assert sorted(zip(first.tolist(), second.tolist(), strict=True)) == [(0, 2), (0, 3), (3, 2)]
    first, _ = PairwiseObjective(["amount"]).pairs(batch)["amount"]
    assert len(first) == 6  # without the mask the unpurchased row pairs with every purchase


def test_pair_counts_no_cross_group_pairs_and_ties() -> None:
    data = make_search_logs(40, (3, 12), seed=1)
    split = data.train
    assert isinstance(split, GroupedSplit)
    obj = objective_for(data, data.tasks)
    gen = torch.Generator().manual_seed(0)
    for batch in split.batches(64, shuffle=True, generator=gen):
        pairs = obj.pairs(batch)
        for task in data.tasks:
            y, g = batch.labels[task], batch.groups
            assert g is not None
            first, second = pairs[task]
            assert bool((g[first] == g[second]).all())  # no cross-group pair
            assert bool((y[first] > y[second]).all())  # ties form no pair
            keep = y > 0 if task == "amount" else torch.ones_like(y, dtype=torch.bool)
            expected = sum(
                int(((y[i] > y[j]) & (g[i] == g[j]) & keep[i] & keep[j]).item())
                for i, j in itertools.permutations(range(len(y)), 2)
            )
            assert len(first) == expected


def test_sampled_pairs_are_capped_per_group_and_seeded() -> None:
    batch = _batch({"relevance": [3.0, 2.0, 1.0, 0.0, 1.0, 0.0, 2.0]}, [0, 0, 0, 0, 1, 1, 2])
    counts = {0: 6, 1: 1, 2: 0}
    for cap in (1, 2, 10):
        first, _ = PairwiseObjective(["relevance"], max_pairs_per_group=cap, seed=3).pairs(batch)[
            "relevance"
        ]
        per_group = torch.bincount(batch.groups[first], minlength=3).tolist()  # type: ignore[index]
        assert per_group == [min(cap, counts[g]) for g in range(3)]
    draws = [
        PairwiseObjective(["relevance"], max_pairs_per_group=2, seed=5).pairs(batch)["relevance"]
        for _ in range(2)
    ]
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])


def test_pairs_are_drawn_once_per_batch_object() -> None:
    batch = _batch({"relevance": [3.0, 2.0, 1.0, 0.0, 2.0, 1.0]}, [0] * 6)
    obj = PairwiseObjective(["relevance"], max_pairs_per_group=3)
    assert obj.pairs(batch) is obj.pairs(batch)  # FAMO's closure sees the same pairs
    other = Batch(batch.sparse, batch.dense, batch.labels, batch.groups)
    assert obj.pairs(other) is not obj.pairs(batch)


def _sklearn_mean_ndcg(rel: np.ndarray, s: np.ndarray, g: np.ndarray, k: int) -> float:
    values = []
    for group in np.unique(g):
        rows = g == group
        gain = 2.0 ** rel[rows] - 1.0  # exponential gain through sklearn's linear one
        if gain.max() <= 0:
            continue  # a group without a relevant item is left out (no_relevant="skip")
        # sklearn needs two items; a lone relevant item is trivially in the ideal order
        one = rows.sum() == 1
        values.append(1.0 if one else ndcg_score(gain[None, :], s[rows][None, :], k=k))
    return float(np.mean(values))


def _brute_accuracy_and_loss(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    per_group, losses = [], []
    for group in np.unique(g):
        idx = np.flatnonzero(g == group)
        pairs = [(i, j) for i in idx for j in idx if y[i] > y[j]]
        if pairs:
            right = [1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0 for i, j in pairs]
            per_group.append(np.mean(right))
            losses += [math.log1p(math.exp(s[j] - s[i])) for i, j in pairs]
    return float(np.mean(per_group)), float(np.mean(losses))


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluate_matches_sklearn_and_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), rng.integers(1, 25, size=30))
    rel = rng.integers(0, 4, size=g.size).astype(np.float64)
    rel[g == 3] = 0  # a group without a relevant item
    s = np.round(rng.normal(size=g.size), 1)  # ties among scores too
    obj = PairwiseObjective(["relevance"], k=10)
    out = obj.evaluate({"relevance": s}, {"relevance": rel}, g)["relevance"]
    assert out["ndcg"] == pytest.approx(_sklearn_mean_ndcg(rel, s, g, 10), abs=1e-10)
    accuracy, loss = _brute_accuracy_and_loss(rel, s, g)
    assert out["pairwise_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert out["loss"] == pytest.approx(loss, abs=1e-10)
    # k = 3 and the linear gain, against sklearn directly
    linear = PairwiseObjective(["relevance"], k=3, gain="linear")
    value = linear.evaluate({"relevance": s}, {"relevance": rel}, g)["relevance"]["ndcg"]
    expected = np.mean(
        [
            ndcg_score(rel[g == q][None, :], s[g == q][None, :], k=3) if (g == q).sum() > 1 else 1
            for q in np.unique(g)
            if rel[g == q].max() > 0
        ]
    )
    assert value == pytest.approx(expected, abs=1e-10)


def test_evaluate_masks_and_the_capped_loss_expectation() -> None:
    y = np.array([30.0, 0.0, 10.0, 20.0, 5.0, 0.0, 1.0])
    g = np.array([0, 0, 0, 0, 1, 1, 1])
    s = np.array([0.3, 2.0, 0.1, -0.2, 0.4, 0.0, 0.9])
    obj = PairwiseObjective(["amount"], pair_masks={"amount": "positive"}, gain="linear")
    out = obj.evaluate({"amount": s}, {"amount": y}, g)["amount"]
    keep = y > 0
    accuracy, loss = _brute_accuracy_and_loss(y[keep], s[keep], g[keep])
    assert out["pairwise_accuracy"] == pytest.approx(accuracy)
    assert out["loss"] == pytest.approx(loss)
    # with a cap m the loss is the per-group means weighted by min(m, pairs of the group)
    capped = PairwiseObjective(
        ["amount"], pair_masks={"amount": "positive"}, gain="linear", max_pairs_per_group=1
    )
    value = capped.evaluate({"amount": s}, {"amount": y}, g)["amount"]["loss"]
    means = [
        _brute_accuracy_and_loss(y[keep & (g == q)], s[keep & (g == q)], g[keep & (g == q)])[1]
        for q in (0, 1)
    ]
    assert value == pytest.approx(np.mean(means))
    # the Monte Carlo mean of the sampled training loss agrees
    batch = _batch({"amount": y.tolist()}, g.tolist())
    scores = torch.tensor(s, dtype=torch.float32)
    draws = [
        float(
            PairwiseObjective(
                ["amount"], pair_masks={"amount": "positive"}, max_pairs_per_group=1, seed=i
            ).losses({"amount": scores}, batch)["amount"]
        )
        for i in range(300)
    ]
    assert np.mean(draws) == pytest.approx(value, abs=0.03)


def test_evaluate_rejects_exponential_gain_on_amounts_and_handles_no_pairs() -> None:
    obj = PairwiseObjective(["amount"])
    with pytest.raises(DataError, match="use gain 'linear'"):
        obj.evaluate({"amount": np.zeros(3)}, {"amount": np.array([0.0, 120.0, 80.0])}, None)
    out = PairwiseObjective(["pay"]).evaluate(
        {"pay": np.zeros(3)}, {"pay": np.zeros(3)}, np.array([0, 0, 1])
    )["pay"]
    assert math.isnan(out["ndcg"]) and math.isnan(out["pairwise_accuracy"])
    assert math.isnan(out["loss"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tasks": []}, "tasks must name at least one task"),
        ({"tasks": ["pay", "pay"]}, "task 'pay' appears more than once"),
        ({"pair_masks": {"clicks": "positive"}}, r"a task of pair_masks must be one of \['pay'\]"),
        ({"pair_masks": {"pay": "purchased"}}, "'positive' or a function"),
        ({"max_pairs_per_group": 0}, "max_pairs_per_group must be a positive integer or null"),
        ({"k": 0}, "k must be a positive integer, got 0"),
        ({"gain": "log"}, r"gain must be one of \['exponential', 'linear'\], got 'log'"),
        ({"gain": {"amount": "linear"}}, "a task of gain must be one of"),
        ({"no_relevant": "drop"}, r"no_relevant must be one of \['skip', 'zero', 'one'\]"),
        ({"loss": "listnet"}, r"loss must be one of \['pairwise', 'softmax'\], got 'listnet'"),
        ({"loss": "softmax", "max_pairs_per_group": 4}, "the 'softmax' loss has no pairs to cap"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"tasks": ["pay"], **kwargs}
    with pytest.raises(ConfigError, match=match):
        PairwiseObjective(**args)  # type: ignore[arg-type]


def test_objective_for_builds_the_pairwise_objective_of_the_selected_tasks() -> None:
    data = make_search_logs(30, 5, seed=0, max_pairs_per_group=4, ndcg_k=5)
    obj = objective_for(data, ["pay", "amount"])
    assert isinstance(obj, PairwiseObjective)
    assert obj.tasks == ("pay", "amount")
    assert obj.pair_masks == {"amount": "positive"}
    assert obj.gains == {"pay": "exponential", "amount": "linear"}
    assert (obj.k, obj.max_pairs_per_group) == (5, 4)
    only_pay = objective_for(data, ["pay"])  # the amount mask and gain are dropped
    assert isinstance(only_pay, PairwiseObjective)
    assert (only_pay.pair_masks, only_pay.gains) == ({}, {"pay": "exponential"})


# --------------------------------------------------------------------------- softmax loss
# (pay's 0/1 labels give the same target with either gain; amount needs the linear one)


def _softmax_by_hand(s: list[float], y: list[float], g: list[int], gain: str) -> list[float]:
    """Per group with a relevant item: -sum_i y'_i log softmax(s)_i, in plain Python."""
    out = []
    for q in sorted(set(g)):
        rows = [i for i in range(len(g)) if g[i] == q]
        gains = [2.0 ** y[i] - 1 if gain == "exponential" else y[i] for i in rows]
        if sum(gains) > 0:
            norm = math.log(sum(math.exp(s[i]) for i in rows))
            total = sum(gains)
            out.append(-sum(w / total * (s[i] - norm) for w, i in zip(gains, rows, strict=True)))
    return out


def test_pairwise_is_the_default_loss() -> None:
    assert PairwiseObjective(["pay"]).loss == "pairwise"
    assert PairwiseSpec().loss == "pairwise"
    assert "loss='pairwise'" in repr(PairwiseObjective(["pay"]))


def test_softmax_losses_match_a_hand_computation_with_masks_and_skipped_groups() -> None:
    # group 7: rows 0-2, group 9: rows 3-4 (no purchase in group 9: pay skips it)
    y = {"pay": [1.0, 0.0, 1.0, 0.0, 0.0], "amount": [25.0, 0.0, 5.0, 40.0, 10.0]}
    g = [7, 7, 7, 9, 9]
    batch = _batch(y, g)
    s = torch.tensor([0.5, -0.5, 1.0, 0.0, 2.0], requires_grad=True)
    masks: dict[str, PairMask] = {"amount": "positive"}
    obj = PairwiseObjective(["pay", "amount"], pair_masks=masks, gain="linear", loss="softmax")
    losses = obj.losses({"pay": s, "amount": s}, batch)
    pay = _softmax_by_hand(s.tolist(), y["pay"], g, "linear")
    assert len(pay) == 1  # group 9 has no relevant item: skipped
    assert losses["pay"].item() == pytest.approx(pay[0], rel=1e-6)
    kept = [0, 2, 3, 4]  # amount: the purchased rows only, linear gain
    scores, amounts = [s.tolist()[i] for i in kept], [y["amount"][i] for i in kept]
    amount = _softmax_by_hand(scores, amounts, [g[i] for i in kept], "linear")
    assert losses["amount"].item() == pytest.approx(sum(amount) / 2, rel=1e-6)
    sum(losses.values()).backward()  # type: ignore[union-attr]
    assert s.grad is not None and s.grad[1] != 0  # row 1 is in pay's softmax
    # the same definition as the core loss
    core = softmax_cross_entropy_loss(s.detach(), batch.labels["pay"], batch.groups, "linear")
    assert losses["pay"].item() == pytest.approx(core.item())


def test_softmax_evaluate_loss_is_the_mean_over_groups_and_metrics_are_unchanged() -> None:
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(12), rng.integers(1, 9, size=12))
    rel = rng.integers(0, 4, size=g.size).astype(np.float64)
    rel[g == 2] = 0  # skipped
    s = rng.normal(size=g.size)
    listwise = PairwiseObjective(["relevance"], loss="softmax")
    out = listwise.evaluate({"relevance": s}, {"relevance": rel}, g)["relevance"]
    by_hand = _softmax_by_hand(s.tolist(), rel.tolist(), g.tolist(), "exponential")
    assert out["loss"] == pytest.approx(float(np.mean(by_hand)), rel=1e-10)
    pairwise = PairwiseObjective(["relevance"]).evaluate({"relevance": s}, {"relevance": rel}, g)[
        "relevance"
    ]
    assert (out["ndcg"], out["pairwise_accuracy"]) == (
        pairwise["ndcg"],
        pairwise["pairwise_accuracy"],
    )
    none = listwise.evaluate({"relevance": s}, {"relevance": np.zeros(g.size)}, g)["relevance"]
    assert math.isnan(none["loss"])


def test_objective_from_spec_carries_the_loss() -> None:
    obj = objective_from_spec(PairwiseSpec(k=5, loss="softmax"), ["relevance"])
    assert isinstance(obj, PairwiseObjective) and (obj.loss, obj.k) == ("softmax", 5)
    default = objective_from_spec(PairwiseSpec(), ["relevance"])
    assert isinstance(default, PairwiseObjective) and default.loss == "pairwise"
    with pytest.raises(DataError, match=r"loss must be one of \['pairwise', 'softmax'\]"):
        PairwiseSpec(loss="listnet")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="no pairs to cap"):
        PairwiseSpec(max_pairs_per_group=3, loss="softmax")


def test_the_trainer_trains_with_the_softmax_loss() -> None:
    data = make_search_logs(60, 8, seed=0, tasks=["relevance"])
    torch.manual_seed(0)
    model = build_model("single_score", data.features, data.tasks, hidden_dims=(8,))
    objective = PairwiseObjective(["relevance"], loss="softmax")
    config = TrainerConfig(batch_size=96, max_epochs=1, max_steps=3, progress=False, device="cpu")
    result = Trainer(model, nt.EqualWeights(["relevance"]), data, config, objective=objective).fit()
    values = result.test["relevance"]
    assert 0.0 <= values["ndcg"] <= 1.0 and math.isfinite(values["loss"])


def test_objective_for_binary_datasets() -> None:
    obj = objective_for(make_synthetic(500, seed=0), ["like", "click"])
    assert isinstance(obj, BinaryObjective) and obj.tasks == ("like", "click")


def test_predict_reads_a_grouped_split_in_storage_order() -> None:
    data = make_search_logs(30, (2, 9), seed=2, tasks=["relevance"])
    torch.manual_seed(0)
    model = build_model("single_score", data.features, data.tasks, hidden_dims=(4,))
    logits, labels, groups = predict(model, data.test, 5, torch.device("cpu"), data.tasks)
    split = data.test
    assert isinstance(split, GroupedSplit)
    assert np.array_equal(groups, split.groups.numpy())  # type: ignore[union-attr]
    assert np.array_equal(labels["relevance"], split.labels["relevance"].numpy())
    with torch.no_grad():
        model.eval()
        direct = model(split.sparse, split.dense)["relevance"].numpy()
    assert np.allclose(logits["relevance"], direct, atol=1e-6)


@pytest.mark.parametrize("method", ["equal", "fixed", "famo", "nmt"])
def test_every_combiner_trains_the_single_score_model(method: str) -> None:
    data = make_search_logs(60, 8, seed=0)
    tasks = list(data.tasks)
    combiner = {
        "equal": lambda: nt.EqualWeights(tasks),
        "fixed": lambda: nt.FixedWeights({"pay": 0.6, "amount": 0.2, "relevance": 0.2}),
        "famo": lambda: nt.FAMO(tasks),
        "nmt": lambda: nt.NMT(tasks),
    }[method]()
    torch.manual_seed(0)
    model = build_model("single_score", data.features, tasks, hidden_dims=(8,))
    config = TrainerConfig(batch_size=96, max_epochs=1, max_steps=3, eval_every=2)
    result = Trainer(model, combiner, data, config, objective=objective_for(data, tasks)).fit()
    assert set(result.test) == set(tasks)
    for values in result.test.values():
        assert {"ndcg", "pairwise_accuracy", "loss"} <= set(values)
        assert 0.0 <= values["ndcg"] <= 1.0
    assert len(result.stages) == (4 if method == "nmt" else 1)  # NMT: a joint start, 3 levels


@pytest.mark.parametrize("cap", [None, 3])
@pytest.mark.parametrize("masked", [False, True])
def test_the_split_loss_is_built_a_few_groups_at_a_time(
    monkeypatch: pytest.MonkeyPatch, cap: int | None, masked: bool
) -> None:
    """Memory-bounded evaluation: with a budget of 5 pairs at a time (groups of up to 28 pairs
    on their own) the split loss equals the one computed from every pair at once."""
    import math

    from nomoretuning.core.losses import make_pairs as all_pairs
    from nomoretuning.training import objectives

    rng = np.random.default_rng(0)
    groups = np.repeat(rng.permutation(40), rng.integers(1, 9, 40))
    labels = rng.integers(0, 4, groups.size).astype(np.float64)
    scores = rng.normal(size=groups.size)
    objective = PairwiseObjective(
        ["t"], pair_masks={"t": "positive"} if masked else None, max_pairs_per_group=cap
    )
    keep = torch.from_numpy(labels > 0) if masked else None
    _, codes = np.unique(groups, return_inverse=True)
    first, second = all_pairs(torch.from_numpy(labels), torch.from_numpy(codes), mask=keep)
    losses = torch.nn.functional.softplus(
        torch.from_numpy(scores)[second] - torch.from_numpy(scores)[first]
    )
    if cap is None:
        expected = float(losses.mean())
    else:
        pair_group = torch.from_numpy(codes)[first]
        totals = torch.bincount(pair_group, weights=losses, minlength=40)
        counts = torch.bincount(pair_group, minlength=40).double()
        weights = counts.clamp(max=cap)
        expected = float((weights * totals / counts.clamp(min=1)).sum() / weights.sum())
    monkeypatch.setattr(objectives, "EVALUATION_PAIRS", 5)
    measured = objective.evaluate({"t": scores}, {"t": labels}, groups)["t"]["loss"]
    assert not math.isnan(measured)
    assert measured == pytest.approx(expected, rel=1e-12)


def test_each_objective_differences_its_own_selection_metric() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 6)
    labels = rng.integers(0, 3, groups.size).astype(np.float64)
    a, b = rng.normal(size=groups.size), rng.normal(size=groups.size)
    ranking = PairwiseObjective(["t"], k=3, gain="linear")
    assert ranking.difference("t", labels, a, b, groups) == ndcg_difference(
        labels, a, b, groups, k=3, gain="linear"
    )
    clicks = (labels > 0).astype(np.float64)
    binary = BinaryObjective(["t"])
    assert binary.difference("t", clicks, a, b, None) == auc_difference(clicks, a, b)
    one_class = binary.difference("t", np.ones(5), a[:5], b[:5], None)
    assert all(math.isnan(v) for v in one_class)


def test_the_ranking_top_stage_is_tested_against_its_start() -> None:
    """``start_test`` on an NDCG-selected run: paired over the queries."""
    data = make_search_logs(80, 8, seed=0, tasks=["pay", "relevance"])

    def fit(start_test: float | None) -> nt.FitResult:
        torch.manual_seed(0)
        model = build_model("single_score", data.features, data.tasks, hidden_dims=(8,))
        config = TrainerConfig(
            batch_size=64, max_epochs=1, eval_every=2, patience=3, lr=0.01, progress=False,
            device="cpu", start_test=start_test,
        )  # fmt: skip
        nmt = nt.NMT(["pay", "relevance"])
        return Trainer(model, nmt, data, config, objective=objective_for(data, data.tasks)).fit()

    untested = fit(None)
    assert untested.stages[1].selected_step > 0  # the top stage found a better candidate
    assert fit(0.0).test == untested.test
    kept = fit(1e9)
    assert kept.stages[1].selected_step == 0
    assert kept.stages[1].valid["pay"] == untested.stages[0].valid["pay"]
