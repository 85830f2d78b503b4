"""NMT itself: the re-scaled Lagrangian, stages, state, composition and bad inputs (the dual
rules and their traps: test_dual.py; convex problems with known optima: test_convex.py)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from nmt_helpers import NMT, scalar

import nomoretuning as nt
from nomoretuning.errors import ConfigError


# ------------------------------------------------------------------ the Lagrangian
def test_warm_start_keeps_the_multiplier_at_zero_when_the_tasks_do_not_conflict() -> None:
    theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def losses() -> dict[str, torch.Tensor]:
        return {"top": (theta[0] - 1) ** 2 + 1, "low": (theta[1] - 2) ** 2}

    nmt = NMT(["top", "low"])
    opt = torch.optim.SGD([theta], lr=0.1)
    for stage_steps in (300, 300):
        for _ in range(stage_steps):
            values = losses()
            opt.zero_grad()
            nmt(values).backward()
            opt.step()
            nmt.step(values)
            if nmt.stage == 2:
                assert nmt.multipliers["top"] == 0.0
        if nmt.stage == 1:
            nmt.next_stage()
    assert float(theta.detach()[1]) == pytest.approx(2.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    lam=st.floats(min_value=0.0, max_value=1e6),
    g1=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    g2=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
)
def test_rescaled_gradient_is_a_convex_combination(
    lam: float, g1: list[float], g2: list[float]
) -> None:
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    a, b = torch.tensor(g1, dtype=torch.float64), torch.tensor(g2, dtype=torch.float64)
    nmt = NMT(["top", "low"], initial_multiplier=lam)
    nmt.next_stage(bound=1.0)
    assert sum(nmt.term_weights.values()) == pytest.approx(1.0)
    loss = nmt({"top": (theta * a).sum() + 1, "low": (theta * b).sum()})
    (grad,) = torch.autograd.grad(loss, theta)
    expected = (b + lam * a) / (1 + lam)
    assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-9)
    assert float(grad.norm()) <= max(float(a.norm()), float(b.norm())) + 1e-9


def test_forward_returns_the_rescaled_lagrangian_value() -> None:
    nmt = NMT(["top", "low"], tolerance=0.1, initial_multiplier=3.0)
    assert float(nmt({"top": scalar(2.0), "low": scalar(5.0)})) == 2.0  # stage 1: L_top
    nmt.next_stage(bound=2.0)
    value = nmt({"top": scalar(2.5), "low": scalar(0.7)})
    assert float(value) == pytest.approx((0.7 + 3.0 * (2.5 - 2.0 - 0.2)) / 4.0)


# ------------------------------------------------------------------- stages and state
def test_step_budget_switches_stages_and_finishes() -> None:
    nmt = NMT(["a", "b", "c"], switch=nt.StepBudget(3), bound_window=2)
    losses = {"a": scalar(1.0), "b": scalar(2.0), "c": scalar(3.0)}
    for _ in range(3):
        nmt.step(losses)
    assert nmt.stage == 2 and nmt.bounds == {"a": 1.0}
    for _ in range(6):
        nmt.step(losses)
    assert nmt.finished and nmt.bounds == {"a": 1.0, "b": 2.0, "c": 3.0}
    with pytest.raises(RuntimeError, match="after the last stage finished"):
        nmt.step(losses)
    with pytest.raises(RuntimeError, match="after the last stage finished"):
        nmt(losses)
    with pytest.raises(RuntimeError, match="after the last stage finished"):
        nmt.next_stage()


def test_plateau_switches_when_the_training_loss_stops_improving() -> None:
    nmt = NMT(["a", "b"], switch=nt.Plateau(window=5, threshold=0.01), bound_window=5)
    for i in range(10):  # still falling fast
        nmt.step({"a": scalar(10.0 - i), "b": scalar(1.0)})
    assert nmt.stage == 1
    for _ in range(10):
        nmt.step({"a": scalar(1.0), "b": scalar(1.0)})
    assert nmt.stage == 2
    assert nmt.bounds["a"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: nt.StepBudget(True), "steps must be a positive integer"),  # type: ignore[arg-type]
        (lambda: nt.Plateau(threshold="x"), "threshold must be a number >= 0"),  # type: ignore[arg-type]
        (lambda: nt.Plateau(threshold=math.inf), "threshold must be a number >= 0"),
        (lambda: nt.Plateau(window=True), "window must be a positive integer"),  # type: ignore[arg-type]
    ],
)
def test_bad_stage_switches(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_numpy_numbers_are_numbers() -> None:
    import numpy as np

    assert nt.Plateau(threshold=np.float32(0.1)).threshold == pytest.approx(0.1)
    nmt = nt.NMT(["a", "b"], dual="pi", pi_gains=(np.float32(1.0), np.float64(0.5)))
    assert nmt.num_stages == 3


def test_bound_estimate_is_the_mean_of_the_recent_window() -> None:
    nmt = NMT(["a", "b"], bound_window=3)
    for value in (9.0, 1.0, 2.0, 3.0):
        nmt.step({"a": scalar(value), "b": scalar(0.0)})
    assert nmt.bound_estimate == {"a": pytest.approx(2.0)}
    nmt.next_stage()
    assert nmt.bounds == {"a": pytest.approx(2.0)}


def _famo_nmt() -> nt.NMT:
    return NMT(
        ["top", "low"],
        tolerance=0.05,
        dual="pi",
        smoothing=0.3,
        combiner=lambda tasks: nt.FAMO(tasks),
    )


def _run(
    nmt: nt.NMT, model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 3, generator=gen, dtype=torch.float64)

        def losses(x: torch.Tensor = x) -> dict[str, torch.Tensor]:
            out = model(x).squeeze(-1)
            return {"top": ((out - x[:, 0]) ** 2).mean(), "low": ((out - x[:, 1]) ** 2).mean()}

        values = losses()
        opt.zero_grad()
        nmt(values).backward()
        opt.step()
        nmt.step(values, closure=losses)


def test_state_dict_round_trip_mid_stage_continues_identically() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    nmt = _famo_nmt()
    _run(nmt, model, opt, 30, seed=1)
    nmt.next_stage()
    _run(nmt, model, opt, 25, seed=2)
    assert nmt.multipliers["top"] > 0  # the constraint is active mid-stage

    saved = {
        "nmt": nmt.state_dict(),
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "opt": opt.state_dict(),
    }
    saved = torch.load(_roundtrip_bytes(saved), weights_only=True)
    _run(nmt, model, opt, 20, seed=3)

    model2 = torch.nn.Linear(3, 1).double()
    model2.load_state_dict(saved["model"])
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.05)
    opt2.load_state_dict(saved["opt"])
    nmt2 = _famo_nmt()
    nmt2.load_state_dict(saved["nmt"])
    assert nmt2.stage == 2 and isinstance(nmt2.inner, nt.FAMO)
    _run(nmt2, model2, opt2, 20, seed=3)

    assert nmt2.multipliers == nmt.multipliers
    assert nmt2.bounds == nmt.bounds
    assert torch.equal(nmt2.inner.logits, nmt.inner.logits)
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_combiner_with_parameters_trains_in_every_stage_with_one_optimizer() -> None:
    """UncertaintyWeighting inside NMT: each stage has its own log-variances, and one optimizer
    over model.parameters() and nmt.parameters(), built once, trains and resumes them all."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1).double()
    nmt = nt.NMT(["top", "low"], combiner=lambda terms: nt.UncertaintyWeighting(terms))
    nmt.double()
    opt = torch.optim.Adam([*model.parameters(), *nmt.parameters()], lr=0.05)
    _run(nmt, model, opt, 10, seed=1)
    nmt.next_stage()  # the joint start ends (it records no bound)
    _run(nmt, model, opt, 10, seed=2)
    nmt.next_stage(bound=0.5)
    stage_3 = nmt.inner
    assert isinstance(stage_3, nt.UncertaintyWeighting) and stage_3 is nmt.stage_combiners[2]
    before = stage_3.log_vars.detach().clone()
    _run(nmt, model, opt, 5, seed=3)
    assert not torch.equal(stage_3.log_vars, before)  # in the optimizer from the start
    saved = _roundtrip_bytes({"nmt": nmt.state_dict(), "opt": opt.state_dict()})
    saved = torch.load(saved, weights_only=True)  # type: ignore[arg-type]
    fresh = nt.NMT(["top", "low"], combiner=lambda terms: nt.UncertaintyWeighting(terms))
    fresh.double()
    fresh_opt = torch.optim.Adam([*model.parameters(), *fresh.parameters()], lr=0.05)
    fresh.load_state_dict(saved["nmt"])
    fresh_opt.load_state_dict(saved["opt"])  # the same parameters, in the same shapes
    assert fresh.stage == 3 and torch.equal(fresh.inner.log_vars, stage_3.log_vars)


def _roundtrip_bytes(obj: object) -> object:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_loading_state_of_other_priorities_is_refused() -> None:
    state = NMT(["a", "b"]).state_dict()
    with pytest.raises(ValueError, match="saved for priorities"):
        NMT(["b", "a"]).load_state_dict(state)


# -------------------------------------------------------------------------- composition
def test_famo_composition_weights_terms_by_lagrangian_times_famo() -> None:
    theta = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    nmt = NMT(["top", "low"], initial_multiplier=3.0, combiner=lambda t: nt.FAMO(t))
    nmt.next_stage(bound=0.1)
    famo = nmt.inner
    assert isinstance(famo, nt.FAMO)
    famo.logits.copy_(torch.tensor([0.2, -0.4], dtype=torch.float64))  # terms: (low, top)
    losses = {"top": (theta**2).sum() + 0.3, "low": ((theta - 1) ** 2).sum()}
    (grad,) = torch.autograd.grad(nmt(losses), theta)

    z = torch.softmax(torch.tensor([0.2, -0.4], dtype=torch.float64), 0)
    p = torch.tensor([1 / 4, 3 / 4], dtype=torch.float64)  # 1/(1+λ), λ/(1+λ)
    d = torch.stack([losses["low"].detach(), losses["top"].detach()])
    w = p * z / d
    w = w / w.sum()
    expected = w[0] * 2 * (theta.detach() - 1) + w[1] * 2 * theta.detach()
    assert torch.allclose(grad, expected)


def test_composition_with_zero_multiplier_is_pure_objective_descent() -> None:
    theta = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    for factory in (lambda t: nt.FAMO(t), lambda t: nt.EMTL(t, shared=[theta])):
        nmt = NMT(["top", "low"], combiner=factory)
        nmt.next_stage(bound=1.0)
        losses = {"top": (theta**2).sum(), "low": ((theta - 1) ** 2).sum()}
        (grad,) = torch.autograd.grad(nmt(losses), theta)
        assert torch.allclose(grad, 2 * (theta.detach() - 1))


def test_emtl_composition_adds_the_prior_weighted_penalty() -> None:
    theta = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    nmt = NMT(
        ["top", "low"],
        initial_multiplier=1.0,
        combiner=lambda t: nt.EMTL(t, shared=[theta], alpha=0.5),
    )
    nmt.next_stage(bound=4.0)
    losses = {"top": (theta**2).sum(), "low": theta.sum()}
    value = float(nmt(losses))
    # p = (1/2, 1/2); r_top = 5/sqrt(20), r_low = 3/sqrt(2)
    r = [5 / math.sqrt(20), 3 / math.sqrt(2)]
    mean = sum(r) / 2
    penalty = 0.5 * (0.5 * (r[0] - mean) ** 2 + 0.5 * (r[1] - mean) ** 2) / mean**2
    lagrangian = (3.0 + 1.0 * (5.0 - 4.0 - 0.02)) / 2  # slack: 0.5 % of the bound
    assert value == pytest.approx(lagrangian + penalty, rel=1e-6)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"priorities": []}, "at least one task"),
        ({"priorities": "like"}, "list of task names"),
        ({"priorities": ["like", "like"]}, "'like' appears more than once"),
        ({"priorities": [["a", "b"], "a"]}, "'a' appears more than once"),
        ({"priorities": ["a", []]}, "task name or a list"),
        ({"priorities": ["a", 3]}, "task name or a list"),
        (
            {"priorities": ["a", "b"], "tolerance": -0.1},
            "tolerance of task 'a' must be a finite number >= 0",
        ),
        ({"priorities": ["a", "b"], "tolerance": {"c": 0.1}}, "unknown task 'c'"),
        ({"priorities": ["a", "b"], "tolerance": float("nan")}, "finite number >= 0"),
        ({"priorities": ["a", "b"], "tolerance_mode": "percent"}, "tolerance_mode must be one of"),
        ({"priorities": ["a", "b"], "dual": "adam"}, "dual must be one of"),
        ({"priorities": ["a", "b"], "target": 0.0}, r"target must be a number in \(0, 1\]"),
        ({"priorities": ["a", "b"], "refine": "yes"}, "refine must be true or false"),
        ({"priorities": ["a", "b"], "spread_slack": 1}, "spread_slack must be true or false"),
        ({"priorities": ["a", "b"], "violation": "scaled"}, "violation must be one of"),
        ({"priorities": ["a", "b"], "dual_lr": 0.0}, "dual_lr must be a finite number > 0"),
        ({"priorities": ["a", "b"], "smoothing": 1.0}, r"smoothing must be a number in \[0, 1\)"),
        ({"priorities": ["a", "b"], "initial_multiplier": -1.0}, "initial_multiplier"),
        ({"priorities": ["a", "b"], "bound_window": 0}, "bound_window"),
        ({"priorities": ["a", "b"], "pi_gains": (1.0, -1.0)}, "pi_gains"),
        ({"priorities": ["a", "b"], "dual": "pi", "pi_gains": 1.0}, "pi_gains must be two"),
        ({"priorities": ["a", "b"], "pi_gains": ("a", "b")}, "pi_gains must be two"),
        ({"priorities": ["a", "b"], "combiner": nt.EqualWeights(["a", "b"])}, "takes a factory"),
        ({"priorities": ["a", "b"], "switch": 5}, "StageSwitch"),
        ({"priorities": ["a", "b"], "level_weights": {"a": 0.0}}, "level weight of task 'a'"),
        ({"priorities": ["a", "b"], "combiner": lambda t: "x"}, "must return a LossCombiner"),
        ({"priorities": ["a", "b"], "combiner": lambda t: nt.EqualWeights(["z"])}, "expected"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NMT(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("losses", "message"),
    [
        ({"a": 1.0}, "missing task loss 'b'"),
        ({"a": 1.0, "b": 1.0, "c": 1.0}, "unknown task loss 'c'"),
        ({"a": 1.0, "b": float("nan")}, "loss of task 'b' is not finite"),
        ({"a": float("inf"), "b": 1.0}, "loss of task 'a' is not finite"),
    ],
)
@pytest.mark.parametrize("method", ["forward", "step"])
def test_bad_losses(losses: dict[str, float], message: str, method: str) -> None:
    nmt = NMT(["a", "b"])
    tensors = {k: scalar(v) for k, v in losses.items()}
    with pytest.raises(ValueError, match=message):
        nmt(tensors) if method == "forward" else nmt.step(tensors)


def test_non_scalar_and_non_tensor_losses() -> None:
    nmt = NMT(["a", "b"])
    with pytest.raises(
        ValueError, match=r"task 'a' must be a scalar \(0-dim\) tensor, got shape \(4,\)"
    ):
        nmt({"a": torch.ones(4), "b": scalar(1.0)})
    with pytest.raises(ValueError, match=r"must be a torch\.Tensor"):
        nmt({"a": 1.0, "b": scalar(1.0)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="dict of task name"):
        nmt([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not take a prior"):
        nmt({"a": scalar(1.0), "b": scalar(1.0)}, prior={"a": 1.0})


def test_bad_bounds() -> None:
    nmt = NMT(["a", "b"])
    with pytest.raises(RuntimeError, match="no training loss recorded in stage 1"):
        nmt.next_stage()
    for bad in (float("nan"), "0.5", True, [0.5]):
        with pytest.raises(ValueError, match=r"bound of task 'a' must be a finite number, got"):
            nmt.next_stage(bound=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"NMT.slack\(\): bound of task 'a' must be a finite"):
        nmt.slack("a", bound=float("nan"))
    with pytest.raises(ValueError, match="exactly the stage tasks"):
        nmt.next_stage(bound={"b": 1.0})
    assert nmt.stage == 1 and nmt.bounds == {}


# ----------------------------------------------------------------- refinement, baselines
def test_refine_adds_a_last_stage_for_the_top_task_under_the_lower_bounds() -> None:
    nmt = NMT(["a", "b", "c"], refine=True)
    assert nmt.num_stages == 4
    seen = []
    for bound in (1.0, 2.0, 3.0, 0.9):
        seen.append((nmt.stage_tasks, nmt.constrained_tasks))
        nmt.next_stage(bound=bound)
    assert seen == [
        (("a",), ()),
        (("b",), ("a",)),
        (("c",), ("a", "b")),
        (("a",), ("b", "c")),
    ]
    assert nmt.finished and nmt.bounds == {"a": 0.9, "b": 2.0, "c": 3.0}
    state = NMT(["a", "b"], refine=True).state_dict()
    with pytest.raises(ValueError, match="refine"):
        NMT(["a", "b"]).load_state_dict(state)


def test_next_stage_records_baselines() -> None:
    nmt = NMT([["a", "b"], "c"], tolerance=0.01)
    nmt.next_stage(bound={"a": 0.5, "b": 0.2}, baseline={"a": 0.6, "b": 0.69})
    assert nmt.slacks == {"a": pytest.approx(0.001), "b": pytest.approx(0.002)}
    with pytest.raises(ValueError, match="baseline must name exactly the stage tasks"):
        NMT([["a", "b"], "c"]).next_stage(bound={"a": 0.5, "b": 0.2}, baseline={"a": 0.6})


def test_the_default_schedule_starts_with_every_task_together() -> None:
    nmt = nt.NMT(["a", "b", "c"])
    assert nmt.num_stages == 4
    assert (nmt.stage_tasks, nmt.constrained_tasks) == (("a", "b", "c"), ())
    assert nmt.term_weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    nmt.next_stage(bound={"a": 9.0, "b": 9.0, "c": 9.0})
    assert nmt.bounds == {}  # a joint start bounds nothing
    assert (nmt.stage_tasks, nmt.constrained_tasks) == (("a",), ())
    nmt.next_stage(bound=0.5)
    assert (nmt.stage_tasks, nmt.constrained_tasks) == (("b",), ("a",))
    assert nmt.bounds["a"] == 0.5  # the top task's own stage sets its bound, not the joint one
    nmt.next_stage(bound=0.25)
    assert (nmt.stage_tasks, nmt.constrained_tasks) == (("c",), ("a", "b"))
    nmt.next_stage(bound=0.125)
    assert nmt.finished
    assert nmt.bounds == {"a": 0.5, "b": 0.25, "c": 0.125}


def test_the_joint_start_weights_every_task_alike_whatever_the_levels() -> None:
    """Equal weights per task, not per level: a level of two tasks gets two shares."""
    for options in ({}, {"level_weights": {"a": 3.0}}):
        nmt = nt.NMT([["a", "b"], "c"], **options)  # type: ignore[arg-type]
        assert nmt.term_weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
        losses = {"a": scalar(1.0), "b": scalar(1.0), "c": scalar(4.0)}
        assert float(nmt(losses)) == pytest.approx(2.0)
        nmt.next_stage(bound={"a": 1.0, "b": 1.0, "c": 4.0})
        weights = (0.75, 0.25) if options else (0.5, 0.5)  # the level's own stage: its weights
        assert nmt.term_weights == pytest.approx(dict(zip("ab", weights, strict=True)))


def test_a_step_that_cannot_run_moves_nothing() -> None:
    """A step refused for want of a closure leaves the multipliers as they were, so that the
    step taken again with one counts once."""
    losses = {"a": scalar(1.5), "b": scalar(2.0)}
    retried, once = (nt.NMT(["a", "b"], combiner=nt.FAMO, joint_start=False) for _ in range(2))
    for nmt in (retried, once):
        nmt.next_stage(bound=1.0)
        nmt(losses)
    with pytest.raises(ValueError, match="FAMO needs closure="):
        retried.step(losses)
    assert retried.multipliers == {"a": 0.0}
    for nmt in (retried, once):
        nmt.step(losses, closure=lambda: losses)
    assert retried.multipliers == once.multipliers and once.multipliers["a"] > 0


def test_the_stages_below_a_task_release_its_slack_in_equal_steps() -> None:
    # Four levels, relative tolerance 0.1 of bounds 1, 2, 4: a's slack 0.1 is spent a third at a
    # time by the stages of b, c and d; b's 0.2 half at a time by those of c and d; c's all by d.
    nmt = nt.NMT(["a", "b", "c", "d"], tolerance=0.1, joint_start=False)
    nmt.next_stage(bound=1.0)
    assert nmt.slacks == {"a": pytest.approx(0.1 / 3)}
    nmt.next_stage(bound=2.0)
    assert nmt.slacks == {"a": pytest.approx(0.2 / 3), "b": pytest.approx(0.1)}
    nmt.next_stage(bound=4.0)
    assert nmt.slacks == {"a": pytest.approx(0.1), "b": pytest.approx(0.2), "c": pytest.approx(0.4)}
    paper = nt.NMT(["a", "b", "c"], tolerance=0.1, joint_start=False, spread_slack=False)
    paper.next_stage(bound=1.0)
    assert paper.slacks == {"a": pytest.approx(0.1)}


def test_two_levels_and_a_refinement_spend_the_whole_slack() -> None:
    nmt = nt.NMT(["a", "b"], tolerance=0.1, joint_start=False)
    nmt.next_stage(bound=1.0)
    assert nmt.slacks == {"a": pytest.approx(0.1)}
    refined = nt.NMT(["a", "b", "c"], tolerance=0.1, joint_start=False, refine=True)
    for bound in (1.0, 2.0, 4.0):
        refined.next_stage(bound=bound)
    assert refined.stage_tasks == ("a",)
    assert refined.slacks == {"a": pytest.approx(0.1), "b": pytest.approx(0.2), "c": 0.4}


def test_one_task_has_no_joint_start() -> None:
    assert nt.NMT(["a"]).num_stages == 1


def test_a_state_saved_without_the_joint_start_is_refused_by_name() -> None:
    state = NMT(["a", "b"]).state_dict()
    with pytest.raises(ConfigError, match="joint_start False"):
        nt.NMT(["a", "b"]).load_state_dict(state)


def test_a_state_saved_under_another_dual_rule_is_refused_by_name() -> None:
    state = nt.NMT(["a", "b"], dual="scaled").state_dict()
    with pytest.raises(ConfigError, match=r"dual rule ScaledAscent\(rate=0.01"):
        nt.NMT(["a", "b"]).load_state_dict(state)
    with pytest.raises(ConfigError, match="MultiplicativeAscent"):
        nt.NMT(["a", "b"], dual_lr=0.02).load_state_dict(nt.NMT(["a", "b"]).state_dict())
    nt.NMT(["a", "b"], dual="scaled").load_state_dict(state)  # the same rule loads


def test_a_state_of_version_0_1_without_the_dual_rule_still_loads() -> None:
    nmt = nt.NMT(["a", "b"])
    nmt.next_stage(bound={"a": 1.0, "b": 1.0})
    state = nmt.state_dict()
    extra = next(k for k in state if k.endswith("_extra_state"))
    del state[extra]["dual"]
    again = nt.NMT(["a", "b"])
    again.load_state_dict(state)
    assert again.stage_tasks == ("a",)
