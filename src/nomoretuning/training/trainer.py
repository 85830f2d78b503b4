"""One trainer for every loss combiner: NMT's stages and plain joint training alike.

A `StagedCombiner` (NMT) is trained stage by stage; any other combiner is one stage over all tasks
(`nomoretuning.training.stages`). Inside a stage the trainer

- takes optimization steps (`nomoretuning.training.steps`: one process or data parallel);
- evaluates on the validation split ``evaluations_per_epoch`` times an epoch (or every
  ``eval_every`` steps, where that is more often) and at each epoch end, and keeps the stage's
  best candidate by the selection rule (`nomoretuning.training.selection`: feasible-first by
  default);
- checks the constraints on held-out data or on the training split, as ``trainer.constraints``
  says (`nomoretuning.training.constraints`);
- stops after ``patience`` (epochs by default) without a better candidate, or at ``max_epochs``
  / ``max_steps``, restores the selected parameters and records the stage's bounds.

Checkpoints (``last.pt`` with everything needed to resume exactly, the one before it kept as
``previous.pt``; ``best.pt``: the selected model) are written atomically at every evaluation and
every ``checkpoint_every`` steps (`nomoretuning.training.checkpoint`). Logs:
`nomoretuning.training.logs`. Under ``torchrun`` rank 0 writes every file.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn

import torch
from torch import Tensor, nn

from nomoretuning.core.base import LossCombiner
from nomoretuning.data.batching import Batch, PreparedDataset
from nomoretuning.errors import ConfigError
from nomoretuning.files import json_text
from nomoretuning.training import distributed as parallel
from nomoretuning.training.checkpoint import (
    CheckpointFiles,
    atomic_write_text,
    run_fingerprint,
    save_checkpoint,
)
from nomoretuning.training.config import TrainerConfig
from nomoretuning.training.constraints import (
    ConstraintData,
    measure_training_losses,
    training_labels,
)
from nomoretuning.training.devices import resolve_device
from nomoretuning.training.errors import TrainingError
from nomoretuning.training.evaluation import compare_parameters, evaluate_split
from nomoretuning.training.held_out import ConstantModel, HeldOutLosses
from nomoretuning.training.inputs import check_splits, check_tasks
from nomoretuning.training.logs import RunLogs, prepare_run_directory, progress_bar
from nomoretuning.training.objectives import BinaryObjective, Objective, objective_for
from nomoretuning.training.optimizer import stage_optimizer
from nomoretuning.training.records import FitResult, Metrics, StageRecord
from nomoretuning.training.selection import Candidate, CandidateSelection
from nomoretuning.training.stages import StagePlan
from nomoretuning.training.state import TrainerState, restore_rng_state, rng_state
from nomoretuning.training.steps import StepRunner

__all__ = ["FitResult", "Resume", "Trainer", "TrainerConfig", "TrainingError"]

Resume = bool | Literal["last", "previous"]
"""``fit(resume=...)``: False (a new run), True or ``"last"`` (from ``last.pt``), ``"previous"``."""


class Trainer:
    """Trains ``model`` on ``dataset`` with ``combiner``; see the module docstring.

    Args:
        model: returns ``{task: logits}`` from ``model(sparse, dense)``.
        combiner: any ``LossCombiner`` (a `StagedCombiner` is trained stage by stage).
        dataset: a ``PreparedDataset`` whose tasks include the combiner's.
        config: a ``TrainerConfig``.
        run_dir: where checkpoints, logs and metrics go (None: nothing is written).
        objective: per-task losses and metrics (default: the dataset's own, see
            `nomoretuning.training.objectives.objective_for`).
        overwrite: allow an existing, non-empty ``run_dir``.
        run_files: text files describing the run (name -> text, e.g. scoring's ``model.json``),
            written into ``run_dir`` when it is prepared.

    Example:
        >>> import torch, nomoretuning as nt
        >>> from nomoretuning.data import make_synthetic
        >>> from nomoretuning.models import build_model
        >>> data = make_synthetic(n_rows=2000, seed=0)
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = build_model("shared_bottom", data.features, data.tasks,
        ...                     bottom_dims=(16,), tower_dims=(8,))
        >>> nmt = nt.NMT(list(data.tasks))
        >>> config = TrainerConfig(max_epochs=1, progress=False)
        >>> result = Trainer(model, nmt, data, config).fit()
        >>> sorted(result.test)
        ['click', 'like']
    """

    def __init__(
        self,
        model: nn.Module,
        combiner: LossCombiner,
        dataset: PreparedDataset,
        config: TrainerConfig | None = None,
        run_dir: str | Path | None = None,
        objective: Objective | None = None,
        overwrite: bool = False,
        run_files: Mapping[str, str] | None = None,
    ) -> None:
        cfg = self.config = config or TrainerConfig()
        self.model, self.combiner, self.dataset = model, combiner, dataset
        self.tasks = check_tasks(model, combiner, dataset.tasks, dataset.name)
        self.objective: Objective = objective or objective_for(dataset, self.tasks)
        check_splits(dataset, self.tasks, binary=isinstance(self.objective, BinaryObjective))
        self.plan = StagePlan(combiner)
        self.world_size = parallel.world_size()
        self.rank = parallel.rank()
        self.device = resolve_device(cfg.device)
        self.constraints = ConstraintData(
            self.plan,
            cfg.constraints,
            cfg.feasibility_tolerance,
            HeldOutLosses.for_trainer(cfg, self.plan, dataset.valid, self.device),
            cfg.constraint_every,
            (cfg.metric_guard, self.objective.selection_metric),
        )
        self.model.to(self.device)
        self.combiner.to(self.device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.overwrite = overwrite
        self.run_files = dict(run_files or {})
        self.runner = StepRunner(
            model,
            combiner,
            self.objective,
            self.tasks,
            self.device,
            cfg.precision,
            cfg.grad_clip,
            self._non_finite,
        )
        self.state = TrainerState()
        metric = self.objective.selection_metric
        self.selection = CandidateSelection(
            cfg.patience, cfg.patience_unit, cfg.selection_band, metric, start_test=cfg.start_test
        )
        self.logs = RunLogs(self.tasks, None)
        self.checkpoints = (
            CheckpointFiles(
                self.run_dir, run_fingerprint(model, combiner, self.tasks, cfg.resumable())
            )
            if self.run_dir is not None
            else None
        )

    # ------------------------------------------------------------------------ public API
    def fit(self, resume: Resume = False) -> FitResult:
        """Trains to the end (every stage) and evaluates on the test split.

        ``resume=True`` (or ``"last"``) continues from ``run_dir/last.pt`` exactly where it was
        written; ``resume="previous"`` from the checkpoint before it (``previous.pt``).
        """
        which = "last" if resume is True else (resume or None)
        if which not in (None, "last", "previous"):
            raise ConfigError(f"resume must be True, 'last' or 'previous', got {resume!r}")
        if which is None:
            self.plan.check_fresh()
        self._open_run_dir(which)
        if which is not None:
            self._load(which)
        else:
            # Rank 0 uses the seed itself; other ranks draw different dropout masks.
            torch.manual_seed(self.config.seed + 7919 * self.rank)
        self._clock = time.perf_counter() - self.state.wall_time  # the time before a resume too
        self.runner.prepare_data_parallel()
        try:
            while self.state.stage_index < self.plan.num_stages:
                if not self.state.stage_started:
                    self._begin_stage()
                self._run_stage()
                self._end_stage()
        finally:
            self.logs.close()
        valid = self._evaluate("valid")
        last = self.state.stage_records[-1].test  # the model is the last stage's selection
        test = last if last is not None else self._evaluate("test")
        self.state.wall_time = time.perf_counter() - self._clock
        result = FitResult(
            valid=valid,
            test=test,
            stages=self.state.stage_records,
            steps=self.state.global_step,
            epochs=round(self.state.epochs_run, 4),
            wall_time_s=round(self.state.wall_time, 3),
            run_dir=str(self.run_dir) if self.run_dir else None,
            selection_metric=self.objective.selection_metric,
        )
        if self._writes:
            assert self.run_dir is not None
            save_checkpoint(
                {"model": self.model.state_dict(), "tasks": list(self.tasks)},
                self.run_dir / "best.pt",
            )
            atomic_write_text(self.run_dir / "metrics.json", json_text(result.to_dict()))
        parallel.barrier()  # metrics.json exists on rank 0 before any rank returns
        return result

    @property
    def _writes(self) -> bool:
        """Whether this process writes the run directory (rank 0 of a run with one)."""
        return self.run_dir is not None and self.rank == 0

    # ------------------------------------------------------------------------ the stages
    def _begin_stage(self) -> None:
        self._set_up_stage_step()
        self.state.begin_stage()
        tested, patience = self.config.stage_selection(bool(self.plan.constrained_tasks))
        self.selection.reset(self.plan.other_tasks, self.state.stage_index > 0 and tested, patience)
        if self.plan.constrained_tasks:
            self.constraints.begin_stage(self.model, self.runner.losses)
        if self.state.stage_index > 0:
            # The stage starts from the previous stage's selection, itself a candidate (feasible
            # under the constraints it was selected for), so a stage never ends worse than it began.
            self._evaluate_and_select()

    def _run_stage(self) -> None:
        cfg = self.config
        state = self.state
        train: Any = self.dataset.train
        steps_per_epoch = parallel.batches_per_epoch(train, cfg.batch_size)
        interval = cfg.evaluation_interval(steps_per_epoch)
        description = (
            f"stage {state.stage_index + 1}/{self.plan.num_stages} "
            f"({'+'.join(self.plan.stage_tasks)})"
        )
        bar = progress_bar(
            cfg.progress and self.rank == 0, steps_per_epoch * cfg.max_epochs, description
        )
        try:
            while not self._stopping and state.epoch < cfg.max_epochs:
                generator = torch.Generator().manual_seed(
                    cfg.seed * 1_000_003 + state.stage_index * 10_007 + state.epoch
                )
                batches = parallel.shard_batches(  # from the batch a resumed run stopped at
                    train,
                    cfg.batch_size,
                    generator,
                    self.rank,
                    self.world_size,
                    state.batch_in_epoch,
                )
                for index, batch in enumerate(batches, start=state.batch_in_epoch):
                    self._train_step(batch, bar)
                    state.batch_in_epoch = index + 1
                    state.epochs_run += 1.0 / steps_per_epoch
                    if cfg.max_steps is not None and state.stage_step >= cfg.max_steps:
                        state.stop_stage = True
                    evaluate = self._evaluation_due(interval)
                    if evaluate or self._stopping:
                        self._evaluate_and_select()
                    if self._stopping:
                        break
                    if evaluate or (
                        cfg.checkpoint_every and state.global_step % cfg.checkpoint_every == 0
                    ):
                        self._save_last()
                if self._stopping:
                    break
                evaluated_now = self._evaluation_due(interval)
                state.epoch += 1
                state.batch_in_epoch = 0
                if not evaluated_now:
                    self._evaluate_and_select()
                self._save_last()
        finally:
            if bar is not None:
                bar.close()

    @property
    def _stopping(self) -> bool:
        """The running stage is over: its step budget is spent or its patience ran out."""
        return self.state.stop_stage or self.selection.done

    def _evaluation_due(self, interval: int) -> bool:
        return self.state.stage_step % interval == 0

    def _train_step(self, batch: Batch, bar: Any) -> None:
        outcome = self.runner.run(batch)
        self.plan.step(
            outcome.losses,
            outcome.closure,
            update_dual=self.constraints.dual_from_training_steps,
        )
        self.state.global_step += 1
        self.state.stage_step += 1
        self.constraints.after_step(self.model, self.runner.losses, self.state.stage_step)
        row = self._history_row(float(outcome.total.detach()), outcome.losses)
        self.logs.step(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in row.items() if k.startswith(("loss_", "lambda_"))},
                refresh=False,
            )

    def _end_stage(self) -> None:
        self.selection.choose()
        split, objective, tasks = self.dataset.valid, self.objective, self.plan.stage_tasks
        rows, device = self.config.eval_batch_size, self.device
        self.selection.settle_start(  # a tested stage (the top task's): its best against its start
            lambda best, start: compare_parameters(
                self.model, best, start, split, objective, tasks, rows, device, TrainingError
            )
        )
        best, parameters = self.selection.best, self.selection.best_parameters
        assert best is not None and parameters is not None, "every stage evaluates at least once"
        self.model.load_state_dict(parameters)
        record = StageRecord(
            stage=self.state.stage_index + 1,
            tasks=list(tasks),
            constrained=list(self.plan.constrained_tasks),
            steps=self.state.stage_step,
            selected_step=best.step,
            selected_feasible=best.feasible,
            valid=best.metrics,
            start_comparison=self.selection.comparison,
            test=self._evaluate("test") if self.config.stage_test else None,
        )
        if self.plan.records_bound:
            bounds = self.constraints.stage_bounds(
                best.metrics, self.model, self.runner.losses, self._training_losses
            )
            baselines = self.constraints.stage_baselines(
                self.runner.losses, self.objective.constant_score, self._training_baselines
            )
            record.bound_data = "valid" if self.constraints.held_out else "train"
            record.bound = bounds
            record.multipliers_at_end = self.plan.multipliers
            record.baseline = baselines
            self.plan.next_stage(bounds, baselines)
        else:  # one stage of every task, or a joint start: no bound to measure
            self.plan.next_stage({})
        self.constraints.record_references(tasks, best.metrics, self.selection.seen)
        self.state.end_stage(record)
        if self.run_dir is not None:
            self._save_last()

    # ---------------------------------------------------------------- evaluation, selection
    def _evaluate(self, split_name: str) -> Metrics:
        return evaluate_split(
            self.model,
            getattr(self.dataset, split_name),
            self.objective,
            self.tasks,
            self.config.eval_batch_size,
            self.device,
            TrainingError,
        )

    def _evaluate_and_select(self) -> None:
        metrics = self._evaluate("valid")
        candidate = Candidate.evaluate(
            self.state.stage_step,
            metrics,
            self.plan.stage_tasks,
            self.objective.selection_metric,
            self.constraints.excess(metrics),
            self.config.selection,
        )
        improved = self.selection.consider(candidate, self.model.state_dict, self.state.epochs_run)
        self.constraints.after_evaluation(metrics)
        self.logs.evaluation(
            candidate,
            improved,
            step=self.state.global_step,
            stage=self.state.stage_index + 1,
            epoch=round(self.state.epochs_run, 4),
        )

    def _training_baselines(self, tasks: tuple[str, ...]) -> dict[str, float]:
        """The loss of the best constant prediction of ``tasks`` on the training split."""
        labels = training_labels(self.dataset.train, tasks, self.config.eval_batch_size)
        scores = {t: self.objective.constant_score(t, labels[t]) for t in tasks}
        return self._training_losses(tasks, ConstantModel(scores))

    def _training_losses(
        self, tasks: tuple[str, ...], model: nn.Module | None = None
    ) -> dict[str, float]:
        """Each task's loss over the training split, of ``model`` (default: the one trained)."""
        train, rows = self.dataset.train, self.config.batch_size
        model = model or self.model
        return measure_training_losses(model, train, tasks, self.runner.losses, rows, self.device)

    # ---------------------------------------------------------------------- bookkeeping
    def _history_row(self, total: float, losses: Mapping[str, Tensor]) -> dict[str, Any]:
        values = torch.stack([losses[t].double() for t in self.tasks]).tolist()
        optimizer = self.runner.optimizer
        row: dict[str, Any] = {
            "step": self.state.global_step,
            "stage": self.state.stage_index + 1,
            "epoch": round(self.state.epochs_run, 4),
            "lr": optimizer.param_groups[0]["lr"] if optimizer else self.config.lr,
            "loss": total,
        }
        row.update({f"loss_{t}": v for t, v in zip(self.tasks, values, strict=True)})
        row.update({f"lambda_{t}": v for t, v in self.plan.multipliers.items()})
        row.update({f"bound_{t}": v for t, v in self.plan.bounds.items()})
        row.update({f"weight_{t}": v for t, v in self.combiner.task_weights.items()})
        return row

    def _non_finite(self, task: str) -> NoReturn:
        last = self.run_dir / "last.pt" if self.run_dir is not None else None
        where = f"; the last good checkpoint is kept at {last}" if last and last.exists() else ""
        raise TrainingError(
            f"non-finite loss for task {task!r} at step {self.state.global_step + 1} "
            f"(stage {self.state.stage_index + 1}){where}; lower trainer.lr or check the data"
        )

    def _set_up_stage_step(self) -> torch.optim.Optimizer:
        """Gives the runner the stage's fresh Adam (``freeze_constrained``) and the tasks whose
        heads it fits (``fit_later_heads``); returns the optimizer."""
        cfg = self.config
        frozen = self.plan.constrained_tasks if cfg.freeze_constrained else ()
        optimizer = stage_optimizer(self.model, self.combiner, frozen, cfg.lr, cfg.weight_decay)
        self.runner.begin_stage(optimizer, self.plan.later_tasks if cfg.fit_later_heads else ())
        return optimizer

    # ------------------------------------------------------------------ run directory
    def _open_run_dir(self, resume: str | None) -> None:
        if self.run_dir is None:
            if resume is not None:
                raise TrainingError("resume needs a run directory")
            return
        if self.world_size > 1:
            # Data parallel: rank 0 owns the directory; its failure stops every rank.
            parallel.run_on_main(lambda: self._open_on_main(resume), TrainingError)
        else:
            self._open_on_main(resume)

    def _open_on_main(self, resume: str | None) -> None:
        assert self.run_dir is not None and self.checkpoints is not None
        prepare_run_directory(
            self.run_dir, self.checkpoints, resume, self.overwrite, self.run_files
        )
        self.logs = RunLogs(self.tasks, self.run_dir, tensorboard=self.config.tensorboard)

    def _save_last(self) -> None:
        if self.run_dir is None:
            return
        self.logs.flush()
        self.state.wall_time = time.perf_counter() - self._clock
        rng = rng_state(self.objective)
        rng_by_rank = parallel.all_gather_objects(rng) if self.world_size > 1 else None
        if not self._writes:
            return
        assert self.checkpoints is not None
        optimizer = self.runner.optimizer
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer else {},
            "combiner": self.combiner.state_dict(),
            "rng": rng,
            "trainer": self.state.state_dict(),
            "selection": self.selection.state_dict(),
            "constraints": self.constraints.state_dict(),
            "log_rows": self.logs.rows,
        }
        if optimizer is not None and self.runner.scaler is not None:
            state["scaler"] = self.runner.scaler.state_dict()
        if rng_by_rank is not None:
            state["rng_by_rank"] = rng_by_rank
        self.checkpoints.save(state)

    def _load(self, which: str) -> None:
        files = self.checkpoints
        assert files is not None
        if self.world_size > 1:
            # Rank 0 reads the file and sends it: no shared filesystem needed across nodes.
            state = parallel.run_on_main(lambda: files.load(which, "cpu"), TrainingError)
        else:
            state = files.load(which, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.combiner.load_state_dict(state["combiner"])
        self.state.load_state_dict(state["trainer"])
        self.selection.load_state_dict(state["selection"])
        self.constraints.load_state_dict(state["constraints"])
        if self.state.stage_started:
            self._set_up_stage_step().load_state_dict(state["optimizer"])
        if self.runner.scaler is not None and "scaler" in state:
            self.runner.scaler.load_state_dict(state["scaler"])
        by_rank = state.get("rng_by_rank")
        if self.world_size > 1 and by_rank is not None and len(by_rank) == self.world_size:
            restore_rng_state(by_rank[self.rank], self.objective)  # each rank its own stream
        elif self.rank > 0:
            torch.manual_seed(self.config.seed + 7919 * self.rank + self.state.global_step)
        else:
            restore_rng_state(state["rng"], self.objective)
        self.logs.truncate(state["log_rows"], self.state.global_step)
