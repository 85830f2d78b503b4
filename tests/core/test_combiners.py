"""Equal, fixed, uncertainty weighting, FAMO and EMTL against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import nomoretuning as nt


def _t(value: float, grad: bool = False) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64, requires_grad=grad)


# ------------------------------------------------------------------------- static weights
def test_equal_weights_average_and_respect_a_prior() -> None:
    eq = nt.EqualWeights(["a", "b", "c"])
    losses = {"a": _t(1.0), "b": _t(2.0), "c": _t(6.0)}
    assert float(eq(losses)) == pytest.approx(3.0)
    assert float(eq(losses, prior={"a": 0.5, "c": 0.5})) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="sum to 1"):
        eq(losses, prior={"a": 0.5})
    with pytest.raises(ValueError, match="prior names unknown task 'z'"):
        eq(losses, prior={"z": 1.0})


def test_fixed_weights_are_a_weighted_sum() -> None:
    fw = nt.FixedWeights({"a": 0.3, "b": 0.7})
    assert float(fw({"a": _t(1.0), "b": _t(2.0)})) == pytest.approx(1.7)
    # A uniform prior gives the raw weights back; a one-hot prior keeps one task.
    assert float(fw({"a": _t(1.0), "b": _t(2.0)}, prior={"a": 0.5, "b": 0.5})) == pytest.approx(1.7)
    assert float(fw({"a": _t(1.0), "b": _t(2.0)}, prior={"a": 1.0})) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": -1.0}, "weight of task 'a' must be >= 0"),
        ({"a": float("nan")}, "weight of task 'a'"),
        ({"a": 0.0, "b": 0.0}, "at least one weight must be > 0"),
        ({}, "at least one task"),
        ([0.5, 0.5], "dict task -> weight"),
        ({"a": "0.5"}, "weight of task 'a' must be a number, got '0.5'"),
        ({"a": True}, "weight of task 'a' must be a number"),
    ],
)
def test_fixed_weights_bad_input(weights: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nt.FixedWeights(weights)  # type: ignore[arg-type]


def test_fixed_weights_read_numpy_and_one_element_tensor_weights_as_numbers() -> None:
    fw = nt.FixedWeights({"a": np.float32(0.25), "b": torch.tensor(0.75)})
    assert fw.weights == {"a": 0.25, "b": 0.75}
    assert float(fw({"a": _t(1.0), "b": _t(2.0)})) == pytest.approx(1.75)


def test_uncertainty_weighting_value_and_gradients() -> None:
    uw = nt.UncertaintyWeighting(["a", "b"], init=0.0)
    with torch.no_grad():
        uw.log_vars.copy_(torch.tensor([0.0, math.log(2.0)]))
    loss = uw({"a": _t(1.0), "b": _t(4.0)})
    # (e^0 * 1 + 0)/2 + (4/2 + ln 2)/2
    assert float(loss.detach()) == pytest.approx(0.5 + (2.0 + math.log(2.0)) / 2)
    loss.backward()
    assert uw.log_vars.grad is not None
    # d/ds [(e^-s L + s)/2] = (1 - e^-s L)/2
    assert uw.log_vars.grad.tolist() == pytest.approx([0.0, (1 - 2.0) / 2])
    assert uw.task_weights == pytest.approx({"a": 0.5, "b": 0.25})


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([], "at least one"),
        (["a", "a"], "more than once"),
        ("ab", "the string"),
        (["a", ""], "non-empty"),
    ],
)
def test_bad_task_lists(tasks: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nt.EqualWeights(tasks)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- FAMO
def test_famo_loss_and_gradient_weights_by_hand() -> None:
    famo = nt.FAMO(["a", "b"])
    la, lb = _t(1.0, grad=True), _t(4.0, grad=True)
    loss = famo({"a": la, "b": lb})
    # z = (1/2, 1/2); c = 0.5/1 + 0.5/4 = 0.625; loss = (0.5 log 1 + 0.5 log 4) / 0.625
    assert float(loss.detach()) == pytest.approx(0.5 * math.log(4.0) / 0.625)
    loss.backward()
    # dL/dL_i = (z_i / L_i) / c: weights 0.8 and 0.2, summing to 1
    assert float(la.grad) == pytest.approx(0.8)  # type: ignore[arg-type]
    assert float(lb.grad) == pytest.approx(0.2)  # type: ignore[arg-type]


def test_famo_logit_update_by_hand() -> None:
    famo = nt.FAMO(["a", "b"], lr=0.025, weight_decay=0.0)
    famo({"a": _t(1.0), "b": _t(4.0)})
    famo.step({"a": _t(1.0), "b": _t(4.0)}, closure=lambda: {"a": _t(0.5), "b": _t(3.0)})
    # delta = (log 2, log 4/3); grad = z * (delta - z.delta) = ±0.5 * (log 2 - log 4/3) / 2
    g = 0.5 * (math.log(2.0) - 0.5 * (math.log(2.0) + math.log(4.0 / 3.0)))
    assert g > 0
    # First Adam step: m_hat = g, v_hat = g^2 -> logits move by -lr * g / (|g| + 1e-8)
    step = 0.025 * g / (abs(g) + 1e-8)
    assert famo.logits.tolist() == pytest.approx([-step, step])
    # Task a's log-loss fell more, so it loses weight.
    assert famo.task_weights["a"] < 0.5 < famo.task_weights["b"]


def test_famo_logit_updates_match_torch_adam_with_weight_decay() -> None:
    famo = nt.FAMO(["a", "b", "c"], lr=0.05, weight_decay=0.01)
    xi = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adam([xi], lr=0.05, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        old = torch.rand(3, generator=gen, dtype=torch.float64) + 0.5
        new = old * (0.5 + torch.rand(3, generator=gen, dtype=torch.float64))
        famo({t: old[i] for i, t in enumerate("abc")})
        famo.step(
            {t: old[i] for i, t in enumerate("abc")},
            closure=lambda new=new: {t: new[i] for i, t in enumerate("abc")},
        )
        delta = old.log() - new.log()
        reference.zero_grad()
        torch.softmax(xi, 0).backward(delta)  # J^T delta, as the official code does
        reference.step()
    assert torch.allclose(famo.logits, xi.detach(), atol=1e-12)


def test_famo_floors_and_state_round_trip() -> None:
    famo = nt.FAMO(["a", "b"], floors={"a": 0.5})
    famo({"a": _t(1.0), "b": _t(1.0)})
    famo.step({"a": _t(1.0), "b": _t(1.0)}, closure=lambda: {"a": _t(0.7), "b": _t(0.9)})
    clone = nt.FAMO(["a", "b"], floors={"a": 0.5})
    clone.load_state_dict(famo.state_dict())
    assert torch.equal(clone.logits, famo.logits)
    assert torch.equal(clone.exp_avg_sq, famo.exp_avg_sq)
    assert int(clone.adam_steps) == 1
    with pytest.raises(ValueError, match="not above its floor"):
        famo({"a": _t(0.4), "b": _t(1.0)})


def test_famo_bad_usage() -> None:
    famo = nt.FAMO(["a", "b"])
    with pytest.raises(RuntimeError, match="before forward"):
        famo.step({"a": _t(1.0), "b": _t(1.0)}, closure=lambda: {"a": _t(1.0), "b": _t(1.0)})
    famo({"a": _t(1.0), "b": _t(1.0)})
    with pytest.raises(ValueError, match="needs closure"):
        famo.step({"a": _t(1.0), "b": _t(1.0)})
    with pytest.raises(ValueError, match="missing task loss 'b'"):
        famo.step({"a": _t(1.0), "b": _t(1.0)}, closure=lambda: {"a": _t(1.0)})
    for kwargs, message in [
        ({"lr": 0.0}, "FAMO: lr must be a finite number > 0"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"floors": {"z": 0.0}}, "unknown task 'z'"),
        ({"betas": (0.9, 1.0)}, "betas"),
    ]:
        with pytest.raises(ValueError, match=message):
            nt.FAMO(["a", "b"], **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- EMTL
def test_emtl_value_and_gradient_by_hand() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    emtl = nt.EMTL(["a", "b"], shared=lambda: [x], alpha=0.1)
    la, lb = (x**2).sum(), x.sum()
    loss = emtl({"a": la, "b": lb})
    # ||grad a|| = ||2x|| = sqrt(20), ||grad b|| = sqrt(2); r = (5/sqrt 20, 3/sqrt 2)
    n = [math.sqrt(20.0), math.sqrt(2.0)]
    r = [5.0 / n[0], 3.0 / n[1]]
    mean = sum(r) / 2
    var = sum((ri - mean) ** 2 for ri in r) / 2
    assert float(loss.detach()) == pytest.approx(4.0 + 0.1 * var / mean**2)
    assert emtl.last_contributions == pytest.approx({"a": r[0], "b": r[1]})
    (grad,) = torch.autograd.grad(loss, x)
    # sum_i p_i (1 + 2 alpha (r_i - mean) / (mean^2 n_i)) grad L_i
    w = [0.5 * (1 + 2 * 0.1 * (r[i] - mean) / (mean**2 * n[i])) for i in range(2)]
    expected = w[0] * 2 * x.detach() + w[1] * torch.ones(2, dtype=torch.float64)
    assert torch.allclose(grad, expected)


def test_emtl_on_a_shared_representation() -> None:
    torch.manual_seed(0)
    encoder, head_a, head_b = torch.nn.Linear(3, 4), torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    rep = encoder(torch.randn(8, 3))
    emtl = nt.EMTL(["a", "b"], shared=lambda: rep)
    loss = emtl({"a": head_a(rep).pow(2).mean(), "b": head_b(rep).abs().mean()})
    loss.backward()
    assert encoder.weight.grad is not None and head_a.weight.grad is not None
    assert set(emtl.last_grad_norms) == {"a", "b"}


def test_emtl_is_scale_free_in_alpha() -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    emtl = nt.EMTL(["a", "b"], shared=[x], alpha=1.0)
    base = float(emtl({"a": (x**2).sum(), "b": x.sum()}).detach()) - 4.0
    scaled = float(emtl({"a": 10 * (x**2).sum(), "b": 10 * x.sum()}).detach()) - 40.0
    assert scaled == pytest.approx(base, rel=1e-6)


def test_emtl_bad_usage() -> None:
    x = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        nt.EMTL(["a", "b"], shared=[x], alpha=-1.0)
    emtl = nt.EMTL(["a", "b"], shared=[torch.ones(1)])
    with pytest.raises(ValueError, match="must require grad"):
        emtl({"a": (x * 2).sum(), "b": x.sum()})
    with pytest.raises(ValueError, match="gave no tensor"):
        nt.EMTL(["a", "b"], shared=list)({"a": (x * 2).sum(), "b": x.sum()})
    with pytest.raises(ValueError, match=r"shared must be a callable .* got None"):
        nt.EMTL(["a", "b"], shared=None)  # type: ignore[arg-type]
    # a shared tensor of an earlier forward: no loss of this one reaches it
    stale = (x * 3).detach().requires_grad_()
    with pytest.raises(ValueError, match="loss of task 'a' does not depend on any shared"):
        nt.EMTL(["a", "b"], shared=stale)({"a": (x * 2).sum(), "b": x.sum()})
