"""The stage loop end to end: stages and bounds, plain combiners, exact resume, bad runs."""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from trainer_helpers import toy_config, toy_model

import nomoretuning as nt
from nomoretuning.data import make_search_logs
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.models import build_model
from nomoretuning.training.checkpoint import load_checkpoint
from nomoretuning.training.objectives import PairwiseObjective, objective_for
from nomoretuning.training.records import FitResult, StageRecord
from nomoretuning.training.trainer import Trainer, TrainerConfig, TrainingError

# These tests check the constrained stage right after the top task's: no joint first stage
# (the default schedule is tested in test_trainer.py).
NMT = functools.partial(nt.NMT, joint_start=False)


def test_nmt_runs_every_stage_and_records_bounds(dataset: PreparedDataset, tmp_path: Path) -> None:
    nmt = nt.NMT(["like", "finish"])  # the defaults: a joint start, then one stage per level
    result = Trainer(toy_model(dataset), nmt, dataset, toy_config(), run_dir=tmp_path / "run").fit()
    assert nmt.finished
    assert [s.stage for s in result.stages] == [1, 2, 3]
    assert [s.tasks for s in result.stages] == [["like", "finish"], ["like"], ["finish"]]
    assert [s.constrained for s in result.stages] == [[], [], ["like"]]
    assert set(nmt.bounds) == {"like", "finish"}
    # The top task's bound is that of its own stage (not the joint one), measured on training data
    # (the default constraints), with the constant predictor's loss as the baseline.
    assert result.stages[1].bound == {"like": pytest.approx(nmt.bounds["like"])}
    assert result.stages[1].bound_data == "train"
    assert result.stages[1].baseline is not None
    assert nmt.bounds["like"] < result.stages[1].baseline["like"]
    for task in ("like", "finish"):
        assert 0.5 < result.test[task]["auc"] <= 1.0
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"history.csv", "evaluations.csv", "last.pt", "best.pt", "metrics.json"} <= files
    with (tmp_path / "run" / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.steps
    stage3 = [r for r in rows if r["stage"] == "3"]
    assert stage3
    assert all(r["lambda_like"] != "" and r["bound_like"] != "" for r in stage3)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stages"][2]["bound_data"] == "train"


def test_held_out_constraints_bound_the_top_task_by_its_selected_validation_loss(
    dataset: PreparedDataset,
) -> None:
    nmt = NMT(["like", "finish"])
    result = Trainer(toy_model(dataset), nmt, dataset, toy_config(constraints="valid")).fit()
    assert result.stages[0].bound_data == "valid"
    assert nmt.bounds["like"] == pytest.approx(result.stages[0].valid["like"]["loss"])


def test_every_stage_after_the_first_starts_with_its_starting_point_as_a_candidate(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    nmt = nt.NMT(["like", "finish"])
    result = Trainer(toy_model(dataset), nmt, dataset, toy_config(), tmp_path / "run").fit()
    with (tmp_path / "run" / "evaluations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    first = {}
    for row in rows:
        first.setdefault(int(row["stage"]), int(row["step"]))
    steps = [s.steps for s in result.stages]
    # stage 1 starts from an untrained model; stages 2 and 3 are evaluated before their first
    # step, so a stage can keep what the previous one selected
    assert first[1] > 0
    assert first[2] == steps[0]
    assert first[3] == steps[0] + steps[1]


def test_constrained_patience_lengthens_only_the_constrained_stages(
    dataset: PreparedDataset,
) -> None:
    def stage_steps(**options: object) -> list[int]:
        config = toy_config(patience_unit="evaluations", patience=1, max_epochs=20, **options)
        result = Trainer(toy_model(dataset), nt.NMT(["like", "finish"]), dataset, config).fit()
        assert [s.constrained for s in result.stages] == [[], [], ["like"]]
        return [s.steps for s in result.stages]

    default = stage_steps()
    assert stage_steps(constrained_patience=1) == default  # unset: the same as patience
    longer = stage_steps(constrained_patience=4)
    assert longer[:2] == default[:2]  # the joint start and the top task's stage
    assert longer[2] >= default[2] + 3 * 4  # three more evaluations, every 4 steps


def test_start_test_keeps_the_joint_start_unless_the_top_stage_beats_it(
    dataset: PreparedDataset,
) -> None:
    def fit(start_test: float | None) -> FitResult:
        config = toy_config(start_test=start_test)
        return Trainer(toy_model(dataset), nt.NMT(["like", "finish"]), dataset, config).fit()

    untested = fit(None)
    assert untested.stages[1].selected_step > 0  # the top stage found a better candidate
    assert all(stage.start_comparison is None for stage in untested.stages)
    # with no standard error to clear, the best is kept: the same run as without the test
    cleared = fit(0.0)
    assert cleared.test == untested.test
    # with a bar no gain clears, the top stage keeps its start, the joint stage's choice
    kept = fit(1e9)
    assert kept.stages[1].selected_step == 0
    assert kept.stages[1].valid["like"] == untested.stages[0].valid["like"]
    # the stage record says what the test measured: the same comparison, two verdicts
    measured, rejected = cleared.stages[1].start_comparison, kept.stages[1].start_comparison
    assert measured is not None and rejected is not None
    assert not measured.kept_start and rejected.kept_start
    assert (measured.threshold, rejected.threshold) == (0.0, 1e9)
    assert measured.difference == rejected.difference > 0
    assert measured.standard_error == rejected.standard_error > 0
    valid = untested.stages[1].valid["like"]["auc"] - untested.stages[0].valid["like"]["auc"]
    assert measured.difference == pytest.approx(valid, abs=1e-6)
    assert [s.start_comparison is None for s in kept.stages] == [True, False, True]
    assert [StageRecord.from_dict(s) for s in kept.to_dict()["stages"]] == kept.stages


def test_start_test_on_every_stage_also_holds_a_constrained_stage_to_its_start(
    dataset: PreparedDataset,
) -> None:
    def fit(start_test: float | None, stages: str = "every") -> FitResult:
        config = toy_config(
            start_test=start_test, start_test_stages=stages, patience_unit="evaluations"
        )
        return Trainer(toy_model(dataset), nt.NMT(["like", "finish"]), dataset, config).fit()

    untested = fit(None)
    assert [s.selected_step > 0 for s in untested.stages] == [True, True, True]
    # no standard error to clear: the same run as without the test, both stages measured
    cleared = fit(0.0)
    assert cleared.test == untested.test
    assert fit(0.0, "top").stages[2].start_comparison is None  # the default: the top stage only
    top, lower = cleared.stages[1].start_comparison, cleared.stages[2].start_comparison
    assert top is not None and lower is not None
    gain = untested.stages[2].valid["finish"]["auc"] - untested.stages[1].valid["finish"]["auc"]
    assert lower.difference == pytest.approx(gain, abs=1e-6)
    assert lower.z < top.z
    # a bar between the two: the top stage keeps its best, finish's stage its start
    bar = (lower.z + top.z) / 2
    split = fit(bar)
    assert split.stages[1] == replace(
        untested.stages[1], start_comparison=replace(top, threshold=bar)
    )
    assert split.stages[2].selected_step == 0
    assert split.stages[2].valid == split.stages[1].valid
    kept = split.stages[2].start_comparison
    assert kept is not None and kept.kept_start and kept.z == pytest.approx(lower.z)


def test_the_trainer_does_not_change_the_users_combiner(dataset: PreparedDataset) -> None:
    nmt = NMT(["like", "finish"], dual_lr=7.0)
    before = {k: v for k, v in vars(nmt).items() if not k.startswith("_")}
    Trainer(toy_model(dataset), nmt, dataset, toy_config(max_epochs=1))
    after = {k: v for k, v in vars(nmt).items() if not k.startswith("_")}
    assert before.keys() == after.keys()
    assert all(before[k] is after[k] or before[k] == after[k] for k in before)


def test_plain_combiners_train_in_one_stage(dataset: PreparedDataset) -> None:
    for combiner in (
        nt.EqualWeights(["like", "finish"]),
        nt.FAMO(["like", "finish"]),
        nt.UncertaintyWeighting(["like", "finish"]),
    ):
        result = Trainer(toy_model(dataset), combiner, dataset, toy_config(max_epochs=1)).fit()
        assert len(result.stages) == 1
        assert result.stages[0].tasks == ["like", "finish"]
        assert result.stages[0].bound is None
        assert "bound" not in result.to_dict()["stages"][0]


def test_nmts_joint_start_is_joint_training_and_stage_test_changes_nothing(
    dataset: PreparedDataset,
) -> None:
    # What bench_robustness.py relies on to read joint training off NMT's first stage.
    config = toy_config(max_epochs=2, stage_test=True)

    def fit(combiner: nt.LossCombiner, stage_test: bool = True) -> FitResult:
        run_config = replace(config, stage_test=stage_test)
        return Trainer(toy_model(dataset, dropout=0.2), combiner, dataset, run_config).fit()

    joint = fit(nt.EqualWeights(["like", "finish"]))
    nmt = fit(nt.NMT(["like", "finish"]))
    start = nmt.stages[0]
    assert (start.steps, start.selected_step) == (joint.steps, joint.stages[0].selected_step)
    assert start.valid == joint.valid
    assert start.test == joint.test
    assert joint.stages[0].test == joint.test
    # fit() reuses the last stage's test metrics: they equal a fresh evaluation of the model
    plain_joint = fit(nt.EqualWeights(["like", "finish"]), stage_test=False)
    assert plain_joint.test == joint.test
    plain = fit(nt.NMT(["like", "finish"]), stage_test=False)
    assert plain.test == nmt.test
    assert all(s.test is None for s in plain.stages)
    assert "test" not in plain.stages[0].to_dict()


def test_emtl_trains_on_the_model_shared_representation(dataset: PreparedDataset) -> None:
    model = toy_model(dataset)
    emtl = nt.EMTL(["like", "finish"], shared=lambda: model.shared_representation)
    result = Trainer(model, emtl, dataset, toy_config(max_epochs=1)).fit()
    assert set(emtl.last_contributions) == {"like", "finish"}
    assert result.steps == 10


def _kill_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = Trainer._train_step

    def dying(self: Trainer, batch: object, bar: object) -> None:
        if self.state.global_step == step:
            raise KeyboardInterrupt("killed")
        original(self, batch, bar)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "_train_step", dying)


def _famo_nmt() -> nt.NMT:
    return NMT(["like", "finish"], dual="pi", combiner=lambda t: nt.FAMO(t))


@pytest.mark.parametrize("kill_step", [6, 11, 23])
def test_a_killed_run_resumes_to_the_same_result(
    dataset: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_step: int
) -> None:
    config = toy_config(checkpoint_every=3)
    full = Trainer(
        toy_model(dataset, dropout=0.2), _famo_nmt(), dataset, config, run_dir=tmp_path / "full"
    ).fit()

    _kill_at(monkeypatch, kill_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            toy_model(dataset, dropout=0.2),
            _famo_nmt(),
            dataset,
            config,
            run_dir=tmp_path / "killed",
        ).fit()
    monkeypatch.undo()
    before = load_checkpoint(tmp_path / "killed" / "last.pt")["trainer"]["position"]["wall_time"]
    assert before > 0  # the checkpoint keeps the time trained so far
    # A new process: fresh objects with another seed state, then resume.
    torch.manual_seed(1234)
    resumed = Trainer(
        toy_model(dataset, seed=99, dropout=0.2),
        _famo_nmt(),
        dataset,
        config,
        run_dir=tmp_path / "killed",
    ).fit(resume=True)

    assert resumed.wall_time_s >= round(before, 3)  # the whole run's time, not the resumed part
    assert resumed.test == full.test
    assert resumed.valid == full.valid
    assert resumed.steps == full.steps
    for log in ("history.csv", "evaluations.csv"):
        assert (tmp_path / "full" / log).read_text() == (tmp_path / "killed" / log).read_text()


def test_a_resumed_run_logs_each_step_once_to_tensorboard(
    dataset: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    config = toy_config(checkpoint_every=5, tensorboard=True)

    def run(resume: bool = False) -> FitResult:
        model = toy_model(dataset)
        return Trainer(model, NMT(["like", "finish"]), dataset, config, run_dir=tmp_path).fit(
            resume=resume
        )

    _kill_at(monkeypatch, 13)  # 3 steps after the checkpoint of step 10
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    done = run(resume=True)
    events = accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("loss")]
    assert steps == list(range(1, done.steps + 1))


def test_a_killed_ranking_run_with_its_own_pair_sampler_resumes_to_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PairwiseObjective(seed=...)` samples pairs from a generator of its own: the checkpoint
    keeps it, or the resumed run draws other pairs from the first step on."""
    data = make_search_logs(120, 8, seed=0, max_pairs_per_group=3)

    def run(run_dir: Path, resume: bool = False) -> FitResult:
        torch.manual_seed(0)
        model = build_model("single_score", data.features, data.tasks, hidden_dims=(8,))
        spec = objective_for(data, data.tasks)
        assert isinstance(spec, PairwiseObjective)
        objective = PairwiseObjective(
            data.tasks, pair_masks=spec.pair_masks, max_pairs_per_group=3, gain=spec.gains, seed=5
        )
        config = toy_config(checkpoint_every=3)
        trainer = Trainer(
            model, NMT(list(data.tasks)), data, config, run_dir=run_dir, objective=objective
        )
        return trainer.fit(resume=resume)

    full = run(tmp_path / "full")
    _kill_at(monkeypatch, 10)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed")
    monkeypatch.undo()
    resumed = run(tmp_path / "killed", resume=True)
    assert resumed.test == full.test and resumed.steps == full.steps
    for log in ("history.csv", "evaluations.csv"):
        assert (tmp_path / "full" / log).read_text() == (tmp_path / "killed" / log).read_text()


@pytest.mark.parametrize(
    ("kill_step", "options"),
    [
        (9, {"selection_band": 1.0, "metric_guard": 1.0}),
        (20, {"selection_band": 1.0, "metric_guard": 1.0}),
        (40, {"start_test": 1e9, "metric_guard": 1.0}),  # killed in the top task's stage
        (55, {"start_test": 1e9, "metric_guard": 1.0}),
        (70, {"start_test": 1e9, "metric_guard": 1.0}),  # killed after it (steps 31-60)
    ],
)
def test_a_killed_run_with_the_noise_aware_selection_resumes_to_the_same_result(
    dataset: PreparedDataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kill_step: int,
    options: dict[str, float],
) -> None:
    config = toy_config(checkpoint_every=3, **options)

    def run(name: str, seed: int = 0) -> Trainer:
        return Trainer(
            toy_model(dataset, seed=seed),
            nt.NMT(["like", "finish"]),
            dataset,
            config,
            run_dir=tmp_path / name,
        )

    full_trainer = run("full")
    full = full_trainer.fit()
    assert full_trainer.constraints.metric_floor  # the guard was armed
    _kill_at(monkeypatch, kill_step)
    with pytest.raises(KeyboardInterrupt):
        run("killed").fit()
    monkeypatch.undo()
    resumed = run("killed", seed=99).fit(resume=True)
    assert resumed.test == full.test
    assert resumed.stages == full.stages  # the records of stages ended before the kill too
    if "start_test" in options:  # its comparison, also when read back from the checkpoint
        assert full.stages[1].start_comparison is not None
    for log in ("history.csv", "evaluations.csv"):
        assert (tmp_path / "full" / log).read_text() == (tmp_path / "killed" / log).read_text()


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    trainer = Trainer(
        toy_model(dataset),
        NMT(["like", "finish"]),
        dataset,
        toy_config(checkpoint_every=2),
        run_dir=tmp_path / "run",
    )
    original = trainer.objective.losses

    def exploding(logits, batch):  # type: ignore[no-untyped-def]
        losses = original(logits, batch)
        if trainer.state.global_step >= 5:
            losses["finish"] = losses["finish"] * float("nan")
        return losses

    trainer.objective.losses = exploding  # type: ignore[method-assign]
    with pytest.raises(
        TrainingError,
        match=r"non-finite loss for task 'finish' at step 6 \(stage 1\)"
        r"; the last good checkpoint is kept at .*last\.pt",
    ):
        trainer.fit()
    assert (tmp_path / "run" / "last.pt").exists()


def test_an_existing_run_directory_is_not_overwritten(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"keep": True}))
    trainer = Trainer(
        toy_model(dataset),
        nt.EqualWeights(["like", "finish"]),
        dataset,
        toy_config(),
        run_dir=run,
    )
    with pytest.raises(TrainingError, match="already exists and is not empty"):
        trainer.fit()
    assert json.loads((run / "metrics.json").read_text()) == {"keep": True}
    with pytest.raises(TrainingError, match=r"no last\.pt to resume from"):
        trainer.fit(resume=True)
    with pytest.raises(TrainingError, match=r"no previous\.pt to resume from"):
        trainer.fit(resume="previous")


class _OwnModel(torch.nn.Module):
    """A model of a user's own, whose outputs can be made wrong."""

    def __init__(self, wrong: str) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.wrong = wrong

    def forward(self, sparse: torch.Tensor, dense: torch.Tensor) -> object:
        out = self.linear(dense)
        if self.wrong == "tuple":
            return out[:, 0], out[:, 1]
        if self.wrong == "column":
            return {"like": out[:, :1], "finish": out[:, 1]}
        return {"like": out[:, 0]}  # "missing"


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        ("tuple", "the model returned a tuple; it must return a dict"),
        ("column", r"output for task 'like' has shape \[64, 1\]; .* \(squeeze the last"),
        ("missing", r"outputs lack task 'finish' \(it returned \['like'\]\)"),
    ],
)
def test_a_models_wrong_outputs_are_named(
    dataset: PreparedDataset, wrong: str, message: str
) -> None:
    trainer = Trainer(_OwnModel(wrong), nt.EqualWeights(["like", "finish"]), dataset, toy_config())
    with pytest.raises(ConfigError, match=message):
        trainer.fit()


def test_bad_trainer_setup(dataset: PreparedDataset) -> None:
    with pytest.raises(ConfigError, match="task 'click' is not in dataset 'toy'"):
        Trainer(toy_model(dataset), nt.EqualWeights(["click"]), dataset)
    with pytest.raises(ConfigError, match="without switch="):
        Trainer(toy_model(dataset), NMT(["like", "finish"], switch=nt.StepBudget(3)), dataset)
    with pytest.raises(TrainingError, match="resume needs a run directory"):
        Trainer(toy_model(dataset), nt.EqualWeights(["like"]), dataset).fit(resume=True)
    with pytest.raises(ConfigError, match="resume must be True, 'last' or 'previous', got 'best'"):
        Trainer(toy_model(dataset), nt.EqualWeights(["like"]), dataset).fit(resume="best")  # type: ignore[arg-type]
    empty = replace(dataset, valid=dataset.valid.subset(slice(0, 0)))  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="dataset 'toy': the valid split is empty"):
        Trainer(toy_model(dataset), nt.EqualWeights(["like"]), empty)
    one_output = build_model("shared_bottom", dataset.features, ["like"], bottom_dims=(4,))
    with pytest.raises(ConfigError, match=r"task 'finish' is not an output of the model"):
        Trainer(one_output, NMT(["like", "finish"]), dataset)
    advanced = nt.NMT(["like", "finish"])
    advanced.next_stage()
    with pytest.raises(ConfigError, match="is at stage 2 of 3; a new run starts at stage 1"):
        Trainer(toy_model(dataset), advanced, dataset, toy_config()).fit()
    trainer = Trainer(toy_model(dataset), nt.NMT(["like", "finish"]), dataset, toy_config())
    trainer.fit()
    with pytest.raises(ConfigError, match="has finished all 3 stages; a new run starts"):
        trainer.fit()  # a second fit of the same trainer: its NMT is done
    if not torch.cuda.is_available():
        config = TrainerConfig(device="cuda")
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Trainer(toy_model(dataset), nt.EqualWeights(["like"]), dataset, config)
