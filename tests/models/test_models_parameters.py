"""Shared vs task parameters (checked with gradients) and parameter counts (computed by hand)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from models_helpers import EMB, FEATURES, SMALL, batch, linear, small_model

from nomoretuning.models import MODEL_NAMES, MultiTaskModel

CONFIGS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    *[(name, {}, ("a", "b", "c")) for name in MODEL_NAMES],
    ("ple", {"num_levels": 1}, ("a", "b")),
    ("ple", {"num_levels": 3, "num_specific_experts": 2}, ("a", "b", "c")),
    ("mmoe", {"gate_dims": (), "tower_dims": ()}, ("a", "b")),
    ("shared_bottom", {"batch_norm": True}, ("a", "b")),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw, _ in CONFIGS]


def _grads(model: MultiTaskModel, task: str) -> dict[int, torch.Tensor | None]:
    model.zero_grad(set_to_none=True)
    out = model(*batch(16, seed=1))
    target = torch.rand(16, generator=torch.Generator().manual_seed(2))
    torch.nn.functional.binary_cross_entropy_with_logits(out[task], target).backward()
    return {id(p): p.grad for p in model.parameters()}


def _nonzero(grad: torch.Tensor | None) -> bool:
    return grad is not None and bool(grad.abs().sum() > 0)


@pytest.mark.parametrize(("name", "kwargs", "tasks"), CONFIGS, ids=IDS)
def test_shared_and_task_parameters_partition_the_model(
    name: str, kwargs: dict[str, Any], tasks: tuple[str, ...]
) -> None:
    model = small_model(name, tasks, **kwargs)
    ids = [id(p) for p in model.shared_parameters()]
    for task in tasks:
        ids += [id(p) for p in model.task_parameters(task)]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # each exactly once


@pytest.mark.parametrize(("name", "kwargs", "tasks"), CONFIGS, ids=IDS)
def test_gradient_reaches_exactly_the_right_parameters(
    name: str, kwargs: dict[str, Any], tasks: tuple[str, ...]
) -> None:
    torch.manual_seed(0)
    model = small_model(name, tasks, **kwargs)
    model.train()
    grads = {task: _grads(model, task) for task in tasks}
    for task in tasks:
        for p in model.task_parameters(task):  # its own task reaches it, no other task does
            assert _nonzero(grads[task][id(p)])
            for other in tasks:
                if other != task:
                    assert not _nonzero(grads[other][id(p)])
    reached_by = {
        id(p): sum(_nonzero(grads[t][id(p)]) for t in tasks) for p in model.shared_parameters()
    }
    assert all(count >= 2 for count in reached_by.values()), reached_by
    if name == "single_task":
        assert model.shared_parameters() == []
    if name == "single_score":
        assert all(model.task_parameters(t) == [] for t in tasks)
        assert all(count == len(tasks) for count in reached_by.values())


def test_single_task_networks_are_independent() -> None:
    model = small_model("single_task", ("a", "b"))
    grads = _grads(model, "a")
    for p in model.networks[1].parameters():  # zeros flow back through the stacked representation
        grad = grads[id(p)]
        assert grad is None or not grad.any()
    for p in model.networks[0].parameters():
        assert _nonzero(grads[id(p)])


def test_ple_multi_level_ownership() -> None:
    # Task experts before the last level feed the shared gate: they are shared.
    model = small_model("ple", ("a", "b"), num_levels=3)
    owned = {id(p) for p in model.task_parameters("a")}
    levels = model.levels
    assert all(id(p) not in owned for p in levels[0].task_experts[0].parameters())
    assert all(id(p) not in owned for p in levels[0].task_gates[0].parameters())
    assert all(id(p) in owned for p in levels[1].task_gates[0].parameters())
    assert all(id(p) in owned for p in levels[2].task_gates[0].parameters())
    assert all(id(p) in owned for p in levels[2].task_experts[0].parameters())
    assert all(id(p) not in owned for p in levels[1].task_experts[0].parameters())


def test_task_parameters_of_an_unknown_task() -> None:
    with pytest.raises(ValueError, match=r"unknown task 'z'; tasks are \['a', 'b'\]"):
        small_model("mmoe").task_parameters("z")


# ------------------------------------------------------------------------------- counts
# FEATURES: fields of 5 and 7 rows, 2 dense columns; EMB = 3, so the input is 2*3 + 2 = 8 wide.
EMBEDDINGS = (5 + 7) * 3  # 36
IN = 8
TOWER = linear(6, 4) + linear(4, 1)  # tower_dims (4,) on a 6-wide input, then the logit: 33
EXPERT = linear(IN, 6)  # expert_dims (6,) on the input: 54


def _count(params: list[torch.nn.Parameter]) -> int:
    return sum(p.numel() for p in params)


def test_counts_shared_bottom() -> None:
    model = small_model("shared_bottom")
    assert _count(list(model.parameters())) == EMBEDDINGS + linear(8, 6) + 2 * TOWER == 156
    assert _count(model.task_parameters("a")) == TOWER
    normed = small_model("shared_bottom", batch_norm=True)  # + weight and bias per hidden unit
    assert _count(list(normed.parameters())) == 156 + 2 * 6 + 2 * (2 * 4) == 184


def test_counts_omoe_and_mmoe() -> None:
    gate = linear(IN, 4) + linear(4, 3)  # gate_dims (4,), then 3 expert weights: 51
    omoe = small_model("omoe")
    assert _count(list(omoe.parameters())) == EMBEDDINGS + 3 * EXPERT + gate + 2 * TOWER == 315
    assert _count(omoe.shared_parameters()) == EMBEDDINGS + 3 * EXPERT + gate
    mmoe = small_model("mmoe")
    assert _count(list(mmoe.parameters())) == EMBEDDINGS + 3 * EXPERT + 2 * gate + 2 * TOWER
    assert _count(list(mmoe.parameters())) == 366
    assert _count(mmoe.task_parameters("b")) == gate + TOWER


def test_counts_ple() -> None:
    # 2 tasks, 2 levels, s = 1 task expert per task, n = 2 shared experts.
    level0 = (
        2 * 1 * EXPERT  # task experts on the 8-wide input
        + 2 * EXPERT  # shared experts
        + 2 * (linear(IN, 4) + linear(4, 1 + 2))  # task gates over s + n = 3 experts
        + (linear(IN, 4) + linear(4, 2 * 1 + 2))  # shared gate over K*s + n = 4 experts
    )
    expert1 = linear(6, 6)  # level 1 reads the 6-wide level-0 outputs
    level1 = 2 * expert1 + 2 * expert1 + 2 * (linear(6, 4) + linear(4, 3))  # no shared gate
    model = small_model("ple")
    assert (level0, level1) == (374, 254)
    assert _count(list(model.parameters())) == EMBEDDINGS + level0 + level1 + 2 * TOWER == 730
    own = TOWER + (linear(IN, 4) + linear(4, 3)) + (linear(6, 4) + linear(4, 3)) + expert1
    assert _count(model.task_parameters("a")) == own == 169
    assert _count(model.shared_parameters()) == 730 - 2 * 169


def test_counts_single_task_and_single_score() -> None:
    single = small_model("single_task")
    per_task = EMBEDDINGS + linear(8, 6) + TOWER  # own embeddings, bottom and tower: 123
    assert _count(list(single.parameters())) == 2 * per_task == 246
    assert _count(single.task_parameters("b")) == per_task
    score = small_model("single_score")  # hidden_dims (6, 4), then one logit
    assert _count(list(score.parameters())) == EMBEDDINGS + linear(8, 6) + linear(6, 4) + 5
    assert _count(score.shared_parameters()) == 123


def test_counts_scale_with_the_configuration() -> None:
    kwargs = {**SMALL["mmoe"], "num_experts": 5, "embedding_dim": 4}
    model = small_model("mmoe", ("a", "b", "c"), **kwargs)
    in_dim = 2 * 4 + 2
    expected = (
        12 * 4
        + 5 * linear(in_dim, 6)
        + 3 * (linear(in_dim, 4) + linear(4, 5))
        + 3 * (linear(6, 4) + linear(4, 1))
    )
    assert _count(list(model.parameters())) == expected
    assert FEATURES.num_sparse == 2
    assert EMB == 3
