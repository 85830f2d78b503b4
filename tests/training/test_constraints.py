"""Where constraints come from: held-out bounds and dual steps, or training ones."""

from __future__ import annotations

import csv
import functools
import itertools
from pathlib import Path

import pytest
import torch
from trainer_helpers import toy_config, toy_model

import nomoretuning as nt
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.training.constraints import ConstraintData
from nomoretuning.training.selection import Candidate
from nomoretuning.training.stages import StagePlan
from nomoretuning.training.trainer import Trainer

# These tests check the constrained stage right after the top task's: no joint first stage
# (the default schedule is tested in test_trainer.py).
NMT = functools.partial(nt.NMT, joint_start=False)


def test_held_out_constraints_move_the_multipliers_only_at_evaluations(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    nmt = NMT(["like", "finish"])
    config = toy_config(constraints="valid", constraint_every=None)
    Trainer(toy_model(dataset), nmt, dataset, config, run_dir=tmp_path / "run").fit()
    with (tmp_path / "run" / "history.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["stage"] == "2"]
    with (tmp_path / "run" / "evaluations.csv").open() as handle:
        evaluated = {int(r["step"]) for r in csv.DictReader(handle) if r["stage"] == "2"}
    moved = 0
    for before, after in itertools.pairwise(rows):
        if after["lambda_like"] != before["lambda_like"]:
            moved += 1
            assert int(before["step"]) in evaluated  # λ moves only right after an evaluation
    assert moved > 0


def test_training_constraints_move_the_multipliers_every_step(dataset: PreparedDataset) -> None:
    nmt = NMT(["like", "finish"], tolerance=0.0)
    trainer = Trainer(toy_model(dataset), nmt, dataset, toy_config())  # the default: "train"
    assert trainer.constraints.dual_from_training_steps
    nmt.next_stage(bound=0.01)  # an unreachable bound: every training step violates it
    trainer._set_up_stage_step()
    batch = next(dataset.train.batches(64, shuffle=False))  # type: ignore[attr-defined]
    trainer._train_step(batch, None)
    first = nmt.multipliers["like"]
    trainer._train_step(batch, None)
    assert 0 < first < nmt.multipliers["like"]


def test_training_bounds_are_the_mean_training_loss_at_the_restored_parameters(
    dataset: PreparedDataset,
) -> None:
    model = toy_model(dataset)
    nmt = NMT(["like", "finish"])
    trainer = Trainer(model, nmt, dataset, toy_config(max_epochs=1, constraints="train"))
    trainer._open_run_dir(None)
    trainer._begin_stage()
    trainer._run_stage()
    assert trainer.selection.best_parameters is not None
    selected = {k: v.clone() for k, v in trainer.selection.best_parameters.items()}
    trainer._end_stage()
    for key, value in model.state_dict().items():
        assert torch.equal(value, selected[key])  # the stage's selection was restored
    train = dataset.train
    with torch.no_grad():
        logits = model(train.sparse, train.dense)  # type: ignore[attr-defined]
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            logits["like"],
            train.labels["like"],  # type: ignore[attr-defined]
        )
    # one pass in batches of 64 with per-batch means, weighted by batch size = the full mean
    assert nmt.bounds["like"] == pytest.approx(float(expected), rel=1e-5)
    assert trainer.state.stage_records[0].bound_data == "train"


def _in_stage_two(**kwargs: object) -> tuple[nt.NMT, StagePlan]:
    nmt = NMT(["like", "finish"], **kwargs)  # type: ignore[arg-type]
    nmt.next_stage(bound=0.4)
    return nmt, StagePlan(nmt)


def test_excess_is_relative_to_the_validation_reference_with_the_combiners_slack() -> None:
    _, plan = _in_stage_two(tolerance=0.05)
    data = ConstraintData(plan, "valid")
    data.record_references(("like",), {"like": {"loss": 0.5}})
    # feasible up to 0.5 * 1.05; (0.53 - 0.5 - 0.025) / 0.5 = 0.01
    assert data.excess({"like": {"loss": 0.53}})["like"] == pytest.approx(0.01)
    assert data.excess({"like": {"loss": 0.52}})["like"] < 0
    absolute = ConstraintData(_in_stage_two(tolerance=0.05, tolerance_mode="absolute")[1], "valid")
    absolute.record_references(("like",), {"like": {"loss": 0.5}})
    assert absolute.excess({"like": {"loss": 0.56}})["like"] == pytest.approx(0.02)
    override = ConstraintData(plan, "valid", feasibility_tolerance=0.0)
    override.record_references(("like",), {"like": {"loss": 0.5}})
    assert override.excess({"like": {"loss": 0.51}})["like"] == pytest.approx(0.02)


def _seen(values: list[tuple[float, float]]) -> list[Candidate]:
    """Candidates of like's stage with (loss, auc) per evaluation."""
    return [
        Candidate(step, auc, 0.0, True, {"like": {"loss": loss, "auc": auc}})
        for step, (loss, auc) in enumerate(values)
    ]


def test_the_metric_guard_keeps_a_constrained_tasks_metric_within_its_noise() -> None:
    _, plan = _in_stage_two(tolerance=0.05)
    seen = _seen([(0.5, 0.70), (0.5, 0.72), (0.5, 0.70), (0.5, 0.72)])
    noise = 0.02 / (2**0.5 * 0.6744897501960817)  # the median step over its Gaussian value
    data = ConstraintData(plan, "valid", metric_guard=(1.0, "auc"))
    data.record_references(("like",), {"like": {"loss": 0.5, "auc": 0.72}}, seen)
    floor = 0.72 - noise
    assert data.metric_floor["like"] == pytest.approx(floor)
    within = data.excess({"like": {"loss": 0.51, "auc": 0.70}})
    assert max(within.values()) <= 0
    below = data.excess({"like": {"loss": 0.51, "auc": 0.69}})  # the loss is fine, the AUC not
    assert below["like"] <= 0 < below["like:auc"]
    assert below["like:auc"] == pytest.approx((floor - 0.69) / floor)
    restored = ConstraintData(plan, "valid", metric_guard=(1.0, "auc"))
    restored.load_state_dict(data.state_dict())
    assert restored.excess({"like": {"loss": 0.51, "auc": 0.69}}) == below
    unguarded = ConstraintData(plan, "valid")
    unguarded.record_references(("like",), {"like": {"loss": 0.5, "auc": 0.72}}, seen)
    assert list(unguarded.excess({"like": {"loss": 0.51, "auc": 0.5}})) == ["like"]


def test_held_out_dual_steps_use_validation_losses() -> None:
    nmt, plan = _in_stage_two(tolerance=0.0, dual="ascent", dual_lr=1.0)
    held_out = ConstraintData(plan, "valid")
    assert held_out.held_out and not held_out.dual_from_training_steps
    held_out.after_evaluation({"like": {"loss": 0.6}, "finish": {"loss": 0.3}})
    assert nmt.multipliers["like"] == pytest.approx(0.5)  # (0.6 - 0.4) / 0.4
    training = ConstraintData(plan, "train")
    training.after_evaluation({"like": {"loss": 0.6}, "finish": {"loss": 0.3}})
    assert nmt.multipliers["like"] == pytest.approx(0.5)  # training constraints: no held-out step


def test_plain_combiners_have_no_constraints() -> None:
    data = ConstraintData(StagePlan(nt.EqualWeights(["a", "b"])), "valid")
    assert not data.held_out
    assert data.excess({"a": {"loss": 1.0}, "b": {"loss": 1.0}}) == {}


def test_a_joint_start_measures_no_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """NMT ignores a joint stage's bound, so the trainer does not spend a training pass on it."""
    import nomoretuning as nt
    from nomoretuning.data import make_synthetic
    from nomoretuning.models import build_model
    from nomoretuning.training.trainer import Trainer, TrainerConfig

    data = make_synthetic(1500, seed=0)
    model = build_model("shared_bottom", data.features, data.tasks, bottom_dims=(8,))
    measured: list[tuple[str, ...]] = []
    original = Trainer._training_losses

    def counting(
        self: Trainer, tasks: tuple[str, ...], model: torch.nn.Module | None = None
    ) -> dict[str, float]:
        if model is None:  # the trained model's losses: a bound (a constant model's: a baseline)
            measured.append(tasks)
        return original(self, tasks, model)

    monkeypatch.setattr(Trainer, "_training_losses", counting)
    config = TrainerConfig(max_steps=4, eval_every=2, progress=False)
    result = Trainer(model, nt.NMT(list(data.tasks)), data, config).fit()
    stages = [s.to_dict() for s in result.stages]
    assert [s["stage"] for s in stages] == [1, 2, 3]
    assert stages[0].get("bound") is None  # the joint start
    assert set(stages[1]["bound"]) == {"click"} and set(stages[2]["bound"]) == {"like"}
    assert measured == [("click",), ("like",)]  # the bounds of stages 2 and 3 only
