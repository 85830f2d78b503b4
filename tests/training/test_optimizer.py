"""The stage optimizer: frozen constrained heads stay as their stage left them."""

from __future__ import annotations

import torch
from trainer_helpers import toy_config, toy_model

import nomoretuning as nt
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.training.optimizer import stage_optimizer
from nomoretuning.training.trainer import Trainer


def test_the_frozen_tasks_own_parameters_are_left_out(dataset: PreparedDataset) -> None:
    model = toy_model(dataset)
    combiner = nt.EqualWeights(["like", "finish"])
    everything = stage_optimizer(model, combiner, (), lr=0.1, weight_decay=0.0)
    frozen = stage_optimizer(model, combiner, ("like",), lr=0.1, weight_decay=0.0)
    chosen = {id(p) for p in frozen.param_groups[0]["params"]}
    own = {id(p) for p in model.task_parameters("like")}
    assert own and not own & chosen
    assert len(everything.param_groups[0]["params"]) == len(chosen) + len(own)


def _head_after_three_steps(
    dataset: PreparedDataset, freeze: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    model = toy_model(dataset)
    # a multiplier > 0 from the start: the constrained task's loss reaches its head
    nmt = nt.NMT(["like", "finish"], joint_start=False, initial_multiplier=1.0)
    trainer = Trainer(model, nmt, dataset, toy_config(freeze_constrained=freeze))
    nmt.next_stage(bound=0.5)
    before = [p.detach().clone() for p in model.task_parameters("like")]
    trainer._set_up_stage_step()
    for batch in list(dataset.train.batches(64, shuffle=False))[:3]:  # type: ignore[attr-defined]
        trainer._train_step(batch, None)
    return before, [p.detach() for p in model.task_parameters("like")]


def test_a_constrained_stage_does_not_move_the_constrained_tasks_head(
    dataset: PreparedDataset,
) -> None:
    before, after = _head_after_three_steps(dataset, freeze=True)  # the default
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    before, after = _head_after_three_steps(dataset, freeze=False)
    assert not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
