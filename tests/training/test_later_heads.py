"""`trainer.fit_later_heads`: the later tasks' heads are fitted during earlier stages, and the
earlier tasks train exactly as without it."""

from __future__ import annotations

import torch
from torch import nn
from trainer_helpers import toy_config, toy_model

import nomoretuning as nt
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.training.later_heads import LaterHeads
from nomoretuning.training.records import FitResult
from nomoretuning.training.stages import StagePlan
from nomoretuning.training.trainer import Trainer


class _Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.shared, self.a, self.b = nn.Linear(3, 2), nn.Linear(2, 1), nn.Linear(2, 1)

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        return list(getattr(self, task).parameters())

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = torch.tanh(self.shared(x))
        return {"a": self.a(hidden).pow(2).mean(), "b": (self.b(hidden) - 1).pow(2).mean()}


def test_gradients_are_the_later_losses_gradients_on_their_own_parameters_only() -> None:
    model = _Heads()
    x = torch.randn(5, 3)
    losses = model.losses(x)
    heads = LaterHeads(model, ["b"])
    grads = heads.gradients(losses)
    expected = torch.autograd.grad(losses["b"], list(model.b.parameters()), retain_graph=True)
    assert len(grads) == 2
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    # the graph is kept for the stage's own backward, which leaves b's head untouched
    losses["a"].backward()
    assert model.b.weight.grad is None
    heads.add(grads)
    torch.testing.assert_close(model.b.weight.grad, expected[0])
    assert model.shared.weight.grad is not None  # a's, unchanged by b's heads
    shared_only_a = torch.autograd.grad(model.losses(x)["a"], model.shared.weight)[0]
    torch.testing.assert_close(model.shared.weight.grad, shared_only_a)


def test_a_loss_scale_scales_the_gradients() -> None:
    model = _Heads()
    losses = model.losses(torch.randn(5, 3))
    plain = LaterHeads(model, ["b"]).gradients(losses)
    scaled = LaterHeads(model, ["b"]).gradients(losses, lambda loss: loss * 8.0)
    for p, s in zip(plain, scaled, strict=True):
        torch.testing.assert_close(s, 8.0 * p)


def test_clip_bounds_only_the_heads_norm() -> None:
    model = _Heads()
    heads = LaterHeads(model, ["b"])
    heads.add([torch.full_like(p, 10.0) for p in heads.params])
    heads.clip(1.0)
    norm = torch.cat([p.grad.reshape(-1) for p in heads.params if p.grad is not None]).norm()
    assert abs(float(norm) - 1.0) < 1e-5


def test_a_model_that_does_not_name_its_heads_has_none_to_fit() -> None:
    heads = LaterHeads(nn.Linear(2, 1), ["b"])
    assert not heads
    assert heads.tasks == ()
    assert heads.gradients({"b": torch.tensor(1.0, requires_grad=True)}) == []


def test_the_plan_names_the_tasks_whose_stages_come_later() -> None:
    plan = StagePlan(nt.NMT(["a", "b", "c"]))
    assert plan.later_tasks == ()  # the joint start
    plan.next_stage({})
    assert plan.later_tasks == ("b", "c")
    plan.next_stage({"a": 1.0})
    assert (plan.stage_tasks, plan.constrained_tasks, plan.later_tasks) == (("b",), ("a",), ("c",))
    plan.next_stage({"b": 1.0})
    assert plan.later_tasks == ()
    assert StagePlan(nt.EqualWeights(["a", "b"])).later_tasks == ()


def test_earlier_stages_are_unchanged_and_the_later_head_starts_fitted(
    dataset: PreparedDataset,
) -> None:
    def fit(fit_later_heads: bool) -> tuple[FitResult, dict[str, torch.Tensor]]:
        model = toy_model(dataset)
        config = toy_config(fit_later_heads=fit_later_heads, start_test=None)
        trainer = Trainer(model, nt.NMT(["like", "finish"]), dataset, config)
        starts: dict[str, torch.Tensor] = {}
        begin = trainer._begin_stage

        def recording_begin() -> None:
            if trainer.state.stage_index == 2:  # the lower task's stage: its head at the start
                starts.update({k: v.clone() for k, v in model.state_dict().items()})
            begin()

        trainer._begin_stage = recording_begin  # type: ignore[method-assign]
        return trainer.fit(), starts

    plain, plain_start = fit(False)
    fitted, fitted_start = fit(True)
    # the joint start and the top task's stage: the same steps, candidates and selection
    assert [s.steps for s in plain.stages[:2]] == [s.steps for s in fitted.stages[:2]]
    assert plain.stages[1].selected_step == fitted.stages[1].selected_step > 0
    assert plain.stages[1].valid["like"] == fitted.stages[1].valid["like"]
    # ... and finish, fitted to the top stage's shared layers, is better there on validation
    assert fitted.stages[1].valid["finish"]["auc"] > plain.stages[1].valid["finish"]["auc"]
    assert plain.stages[1].bound == fitted.stages[1].bound
    # at the lower stage's start: every parameter but finish's own ones is the same
    model = toy_model(dataset)
    own = {id(p) for p in model.task_parameters("finish")}  # type: ignore[operator]
    finish = {n for n, p in model.named_parameters() if id(p) in own}
    assert len(finish) == 6  # finish's tower (two layers) and gate
    for name, value in plain_start.items():
        if name in finish:
            continue
        torch.testing.assert_close(fitted_start[name], value, rtol=0, atol=0)
    assert any(not torch.equal(plain_start[n], fitted_start[n]) for n in finish)
