"""The trainer: stages, selection, bounds, checkpoints and exact resume, bad runs."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest
import torch

import nomoretuning as nt
from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.errors import ConfigError
from nomoretuning.models import FeatureConfig, SparseField, build_model
from nomoretuning.training.trainer import Trainer, TrainerConfig, TrainingError


def _split(n: int, gen: torch.Generator) -> TensorSplit:
    sparse = torch.randint(0, 10, (n, 2), generator=gen)
    dense = torch.randn(n, 2, generator=gen)
    base = dense[:, 0] + 0.3 * (sparse[:, 0] % 3).float()
    like = (base + 0.5 * torch.randn(n, generator=gen) > 0).float()
    finish = (dense[:, 1] - 0.5 * base + 0.5 * torch.randn(n, generator=gen) > 0).float()
    return TensorSplit(sparse, dense, {"like": like, "finish": finish})


@pytest.fixture(scope="module")
def dataset() -> PreparedDataset:
    gen = torch.Generator().manual_seed(0)
    features = FeatureConfig((SparseField("a", 10), SparseField("b", 10)), ("x", "y"))
    return PreparedDataset(
        "toy", ("like", "finish"), features, _split(640, gen), _split(200, gen), _split(200, gen)
    )


def _model(dataset: PreparedDataset, seed: int = 0, dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(
        "mmoe",
        dataset.features,
        dataset.tasks,
        num_experts=2,
        expert_dims=(8,),
        gate_dims=(),
        tower_dims=(4,),
        embedding_dim=4,
        dropout=dropout,
    )


def _config(**kwargs: object) -> TrainerConfig:
    values: dict[str, object] = {
        "batch_size": 64,
        "eval_every": 4,
        "patience": 2,
        "max_epochs": 3,
        "lr": 0.01,
        "eval_batch_size": 128,
    }
    values.update(kwargs)
    return TrainerConfig(**values)  # type: ignore[arg-type]


def test_nmt_runs_every_stage_and_records_bounds(dataset: PreparedDataset, tmp_path: Path) -> None:
    nmt = nt.NMT(["like", "finish"])
    result = Trainer(_model(dataset), nmt, dataset, _config(), run_dir=tmp_path / "run").fit()
    assert nmt.finished
    assert [s["stage"] for s in result.stages] == [1, 2]
    assert result.stages[1]["constrained"] == ["like"]
    assert set(nmt.bounds) == {"like", "finish"}
    assert result.stages[0]["bound"] == {"like": pytest.approx(nmt.bounds["like"])}
    # By default constraints live on held-out data: L* is the selected validation loss.
    assert result.stages[0]["bound_data"] == "valid"
    assert nmt.bounds["like"] == pytest.approx(result.stages[0]["valid"]["like"]["loss"])
    for task in ("like", "finish"):
        assert 0.5 < result.test[task]["auc"] <= 1.0
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"history.csv", "evaluations.csv", "last.pt", "best.pt", "metrics.json"} <= files
    with (tmp_path / "run" / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == result.steps
    stage2 = [r for r in rows if r["stage"] == "2"]
    assert stage2
    assert all(r["lambda_like"] != "" and r["bound_like"] != "" for r in stage2)


def test_bound_is_the_mean_training_loss_at_the_restored_parameters(
    dataset: PreparedDataset,
) -> None:
    model = _model(dataset)
    nmt = nt.NMT(["like", "finish"])
    trainer = Trainer(model, nmt, dataset, _config(max_epochs=1, constraints="train"))
    assert nmt.dual_updates == "every_step"
    trainer.stage_started = False
    trainer._prepare_run_dir(resume=False)
    trainer._begin_stage()
    trainer._run_stage()
    selected = {k: v.clone() for k, v in trainer.best["model"].items()}
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


def test_held_out_constraints_update_the_multipliers_at_evaluations(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    nmt = nt.NMT(["like", "finish"])
    Trainer(_model(dataset), nmt, dataset, _config(), run_dir=tmp_path / "run").fit()
    assert nmt.dual_updates == "manual"
    with (tmp_path / "run" / "history.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["stage"] == "2"]
    with (tmp_path / "run" / "evaluations.csv").open() as handle:
        evaluated = {int(r["step"]) for r in csv.DictReader(handle) if r["stage"] == "2"}
    for before, after in itertools.pairwise(rows):
        if after["lambda_like"] != before["lambda_like"]:
            assert int(before["step"]) in evaluated  # λ moves only right after an evaluation


def test_feasible_first_prefers_a_feasible_candidate(dataset: PreparedDataset) -> None:
    trainer = Trainer(_model(dataset), nt.NMT(["like", "finish"]), dataset, _config())
    trainer._prepare_run_dir(resume=False)
    trainer.combiner.next_stage(bound=0.5)  # type: ignore[attr-defined]
    trainer.reference = {"like": 0.50}  # validation loss of "like" when its stage ended
    # feasible when the validation loss of "like" is <= 0.50 * 1.01 (NMT's 1 % tolerance)
    scripted = iter(
        [
            {"like": {"loss": 0.50}, "finish": {"auc": 0.60}},  # start: feasible
            {"like": {"loss": 0.52}, "finish": {"auc": 0.90}},  # better objective, infeasible
            {"like": {"loss": 0.504}, "finish": {"auc": 0.70}},  # feasible and better: selected
            {"like": {"loss": 0.506}, "finish": {"auc": 0.95}},  # infeasible (just)
        ]
    )
    trainer._evaluate = lambda split: next(scripted)  # type: ignore[method-assign]
    for _ in range(4):
        trainer._evaluate_and_select()
    assert trainer.best["metrics"]["finish"]["auc"] == 0.70
    assert trainer.best["feasible"] is True
    # With no feasible candidate the smallest excess wins.
    trainer.best = {}
    scripted = iter(
        [
            {"like": {"loss": 0.60}, "finish": {"auc": 0.99}},
            {"like": {"loss": 0.55}, "finish": {"auc": 0.60}},
        ]
    )
    trainer._evaluate_and_select()
    trainer._evaluate_and_select()
    assert trainer.best["metrics"]["like"]["loss"] == 0.55
    assert trainer.best["feasible"] is False

    naive = Trainer(
        _model(dataset), nt.NMT(["like", "finish"]), dataset, _config(selection="objective")
    )
    naive._prepare_run_dir(resume=False)
    naive.combiner.next_stage(bound=0.5)  # type: ignore[attr-defined]
    naive.reference = {"like": 0.50}
    scripted = iter(
        [
            {"like": {"loss": 0.50}, "finish": {"auc": 0.60}},
            {"like": {"loss": 0.52}, "finish": {"auc": 0.90}},
        ]
    )
    naive._evaluate = lambda split: next(scripted)  # type: ignore[method-assign]
    naive._evaluate_and_select()
    naive._evaluate_and_select()
    assert naive.best["metrics"]["finish"]["auc"] == 0.90


def test_patience_stops_a_stage(dataset: PreparedDataset) -> None:
    trainer = Trainer(
        _model(dataset), nt.EqualWeights(["like", "finish"]), dataset, _config(patience=1)
    )
    trainer._prepare_run_dir(resume=False)
    scores = iter([0.7, 0.8, 0.79])

    def scripted(split: str) -> dict[str, dict[str, float]]:
        score = next(scores)
        return {t: {"auc": score, "loss": 0.5} for t in ("like", "finish")}

    trainer._evaluate = scripted  # type: ignore[method-assign]
    trainer._evaluate_and_select()
    trainer._evaluate_and_select()
    assert not trainer.stop_stage
    trainer._evaluate_and_select()
    assert trainer.stop_stage


def _kill_at(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = Trainer._train_step

    def dying(self: Trainer, batch: object, bar: object) -> None:
        if self.global_step == step:
            raise KeyboardInterrupt("killed")
        original(self, batch, bar)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "_train_step", dying)


def _famo_nmt() -> nt.NMT:
    return nt.NMT(["like", "finish"], dual="pi", combiner=lambda t: nt.FAMO(t))


@pytest.mark.parametrize("kill_step", [6, 11, 23])
def test_a_killed_run_resumes_to_the_same_result(
    dataset: PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill_step: int
) -> None:
    config = _config(checkpoint_every=3)
    full = Trainer(
        _model(dataset, dropout=0.2), _famo_nmt(), dataset, config, run_dir=tmp_path / "full"
    ).fit()

    _kill_at(monkeypatch, kill_step)
    with pytest.raises(KeyboardInterrupt):
        Trainer(
            _model(dataset, dropout=0.2), _famo_nmt(), dataset, config, run_dir=tmp_path / "killed"
        ).fit()
    monkeypatch.undo()
    # A new process: fresh objects with another seed state, then resume.
    torch.manual_seed(1234)
    resumed = Trainer(
        _model(dataset, seed=99, dropout=0.2),
        _famo_nmt(),
        dataset,
        config,
        run_dir=tmp_path / "killed",
    ).fit(resume=True)

    assert resumed.test == full.test
    assert resumed.valid == full.valid
    assert resumed.steps == full.steps
    history = [(tmp_path / d / "history.csv").read_text() for d in ("full", "killed")]
    assert history[0] == history[1]
    evaluations = [(tmp_path / d / "evaluations.csv").read_text() for d in ("full", "killed")]
    assert evaluations[0] == evaluations[1]


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(
    dataset: PreparedDataset, tmp_path: Path
) -> None:
    model = _model(dataset)
    trainer = Trainer(
        model,
        nt.NMT(["like", "finish"]),
        dataset,
        _config(checkpoint_every=2),
        run_dir=tmp_path / "run",
    )
    original = trainer.objective.losses

    def exploding(logits, batch):  # type: ignore[no-untyped-def]
        losses = original(logits, batch)
        if trainer.global_step >= 5:
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
        _model(dataset), nt.EqualWeights(["like", "finish"]), dataset, _config(), run_dir=run
    )
    with pytest.raises(TrainingError, match="already exists and is not empty"):
        trainer.fit()
    assert json.loads((run / "metrics.json").read_text()) == {"keep": True}
    with pytest.raises(TrainingError, match=r"no last\.pt to resume from"):
        trainer.fit(resume=True)


def test_plain_combiners_train_in_one_stage(dataset: PreparedDataset) -> None:
    for combiner in (
        nt.EqualWeights(["like", "finish"]),
        nt.FAMO(["like", "finish"]),
        nt.UncertaintyWeighting(["like", "finish"]),
    ):
        result = Trainer(_model(dataset), combiner, dataset, _config(max_epochs=1)).fit()
        assert len(result.stages) == 1
        assert result.stages[0]["tasks"] == ["like", "finish"]


def test_emtl_trains_on_the_model_shared_representation(dataset: PreparedDataset) -> None:
    model = _model(dataset)
    emtl = nt.EMTL(["like", "finish"], shared=lambda: model.shared_representation)
    result = Trainer(model, emtl, dataset, _config(max_epochs=1)).fit()
    assert set(emtl.last_contributions) == {"like", "finish"}
    assert result.steps == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "trainer.batch_size must be a positive integer"),
        ({"lr": -1.0}, "trainer.lr must be a finite number > 0"),
        ({"eval_every": 0}, "trainer.eval_every"),
        ({"selection": "best"}, "trainer.selection"),
        ({"grad_clip": 0.0}, "trainer.grad_clip"),
        ({"feasibility_tolerance": -0.1}, "feasibility_tolerance"),
        ({"constraints": "test"}, "trainer.constraints"),
    ],
)
def test_bad_trainer_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainerConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_trainer_setup(dataset: PreparedDataset) -> None:
    with pytest.raises(ConfigError, match="task 'click' is not in dataset 'toy'"):
        Trainer(_model(dataset), nt.EqualWeights(["click"]), dataset)
    with pytest.raises(ConfigError, match="without switch="):
        Trainer(_model(dataset), nt.NMT(["like", "finish"], switch=nt.StepBudget(3)), dataset)
    if not torch.cuda.is_available():
        config = TrainerConfig(device="cuda")
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Trainer(_model(dataset), nt.EqualWeights(["like"]), dataset, config)
