"""One trainer for every loss combiner: NMT's stages and plain joint training alike.

A combiner with stages (``NMT``: it has ``num_stages``, ``stage_tasks``, ``constrained_tasks`` and
``next_stage``) is trained stage by stage; any other combiner is one stage over all tasks. Inside a
stage the trainer

- evaluates on the validation split every ``eval_every`` steps and at each epoch end;
- keeps the best candidate of the stage by the *selection rule*: with ``selection="feasible_first"``
  (default) a candidate is feasible when every constrained task satisfies its constraint on the
  validation split, ``val_loss_j <= val_loss_j* + eps_j``, where ``val_loss_j*`` is task j's
  validation loss when its own stage ended and ``eps_j`` the combiner's tolerance (relative 1 % by
  default; ``feasibility_tolerance`` overrides it); feasible candidates beat infeasible ones, then
  the higher stage-task validation metric wins (infeasible ones rank by their largest relative
  excess), as TFCO selects candidates. ``selection="objective"`` looks at the stage tasks only;
- stops after ``patience`` feasible evaluations without a better candidate (infeasible ones, while
  the multipliers catch up, do not count), or at ``max_epochs`` / ``max_steps``;
- checks the constraints on held-out data by default (``constraints="valid"``): a task's bound
  ``L*`` is its validation loss at the parameters selected for its stage, and in later stages the
  multipliers take one dual step at each evaluation from the constrained tasks' validation losses
  (NMT's ``update_multipliers``); with ``constraints="train"`` NMT updates them every step from the
  training losses and ``L*`` is the mean training loss over one full pass of the training split in
  training mode without gradients (the way that constraint is evaluated during training);
- restores the stage's selected parameters before the next stage.

Checkpoints (``last.pt``: everything needed to resume exactly; ``best.pt``: the selected model) are
written atomically at every evaluation and every ``checkpoint_every`` steps.

Data parallel (``torchrun``, see ``docs/distributed.md``): when a process group of more than one
process is initialized, the model is wrapped in ``DistributedDataParallel`` and ``batch_size`` is
the *global* batch: each rank trains on its share of the same global batches a single process would
draw. Task losses are averaged over ranks (weighted by rows) before they reach the combiner, so the
combiner's state is identical on every rank, and each rank back-propagates a surrogate whose value
is the global loss and whose DDP-averaged gradient is the single-process gradient of the global
batch. Evaluation metrics are computed on the whole split; rank 0 writes every file.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from nomoretuning.core.base import LossCombiner
from nomoretuning.data.batching import Batch, PreparedDataset
from nomoretuning.errors import ConfigError, NomoretuningError
from nomoretuning.training import distributed as parallel
from nomoretuning.training.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from nomoretuning.training.config import TrainerConfig
from nomoretuning.training.devices import resolve_device
from nomoretuning.training.history import CsvLog
from nomoretuning.training.objectives import Objective, objective_for, predict

__all__ = ["FitResult", "Trainer", "TrainerConfig", "TrainingError"]


class TrainingError(NomoretuningError, RuntimeError):
    """Training cannot go on (non-finite loss, a run directory in the way, a bad resume)."""


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns (also written to ``metrics.json``)."""

    valid: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    stages: list[dict[str, Any]]
    steps: int
    epochs: float
    wall_time_s: float
    run_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_staged(combiner: LossCombiner) -> bool:
    return all(
        hasattr(combiner, name)
        for name in ("num_stages", "stage_tasks", "constrained_tasks", "next_stage", "finished")
    )


class Trainer:
    """Trains ``model`` on ``dataset`` with ``combiner``; see the module docstring.

    Args:
        model: returns ``{task: logits}`` from ``model(sparse, dense)``.
        combiner: any ``LossCombiner`` (NMT is trained stage by stage).
        dataset: a ``PreparedDataset`` whose tasks include the combiner's.
        config: a ``TrainerConfig``.
        run_dir: where checkpoints, logs and metrics go (None: nothing is written).
        objective: per-task losses and metrics (default: binary cross-entropy, AUC).
        overwrite: allow an existing, non-empty ``run_dir``.

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
        >>> result = Trainer(model, nmt, data, TrainerConfig(max_epochs=1)).fit()
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
    ) -> None:
        self.config = config or TrainerConfig()
        self.model = model
        self.combiner = combiner
        self.dataset = dataset
        missing = [t for t in combiner.tasks if t not in dataset.tasks]
        if missing:
            raise ConfigError(
                f"task {missing[0]!r} is not in dataset {dataset.name!r} (tasks: "
                f"{list(dataset.tasks)})"
            )
        self.tasks = tuple(combiner.tasks)
        self.objective: Objective = objective or objective_for(dataset, self.tasks)
        if getattr(combiner, "switch", None) is not None:
            raise ConfigError(
                "the trainer ends stages by early stopping; build NMT without switch="
            )
        self.staged = _is_staged(combiner)
        self.held_out_constraints = (
            self.staged
            and self.config.constraints == "valid"
            and hasattr(combiner, "update_multipliers")
        )
        if self.held_out_constraints:
            # Constraints are checked on the validation split at each evaluation, not per batch.
            cast(Any, combiner).dual_updates = "manual"
        self.num_stages = int(getattr(combiner, "num_stages", 1)) if self.staged else 1
        self.world_size = parallel.world_size()
        self.rank = parallel.rank()
        self.device = resolve_device(self.config.device, parallel.local_rank())
        self.model.to(self.device)
        self.combiner.to(self.device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.overwrite = overwrite
        self._tensorboard: Any = None
        if self.config.precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(
                "trainer.precision 'fp16' needs a CUDA device; use 'bf16' on CPU or 'fp32'"
            )
        self._scaler: Any = (
            torch.amp.GradScaler("cuda") if self.config.precision == "fp16" else None
        )
        # Under data parallelism: DDP wraps the model and the loss (see _parallel_loss).
        self._parallel: nn.Module | None = None
        self._parallel_losses: dict[str, Tensor] = {}
        # Progress and state (all saved in last.pt).
        self.stage_index = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.stage_step = 0
        self.stage_started = False
        self.stage_records: list[dict[str, Any]] = []
        self.reference: dict[str, float] = {}  # validation loss of tasks whose stage ended
        self.best: dict[str, Any] = {}
        self.bad_evals = 0
        self.stop_stage = False
        self.epochs_run = 0.0
        self.wall_time = 0.0
        self.optimizer: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------------------ public API
    def fit(self, resume: bool = False) -> FitResult:
        """Trains to the end (every stage) and evaluates on the test split.

        ``resume=True`` continues from ``run_dir/last.pt`` exactly where it was written.
        """
        self._prepare_run_dir(resume)
        start = time.perf_counter()
        if resume:
            self._load_last()
        else:
            # Rank 0 uses the seed itself; other ranks draw different dropout masks.
            torch.manual_seed(self.config.seed + 7919 * self.rank)
        if self.world_size > 1 and self._parallel is None:
            self._parallel = DistributedDataParallel(
                _LossModule(self.model, self._parallel_loss),
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        elapsed_before = self.wall_time
        try:
            while self.stage_index < self.num_stages:
                if not self.stage_started:
                    self._begin_stage()
                self._run_stage()
                self._end_stage()
        finally:
            self._close_logs()
        valid = self._evaluate("valid")
        test = self._evaluate("test")
        self.wall_time = elapsed_before + time.perf_counter() - start
        result = FitResult(
            valid=valid,
            test=test,
            stages=self.stage_records,
            steps=self.global_step,
            epochs=round(self.epochs_run, 4),
            wall_time_s=round(self.wall_time, 3),
            run_dir=str(self.run_dir) if self.run_dir else None,
        )
        if self._writes:
            assert self.run_dir is not None
            save_checkpoint(
                {"model": self.model.state_dict(), "tasks": list(self.tasks)},
                self.run_dir / "best.pt",
            )
            atomic_write_text(self.run_dir / "metrics.json", json.dumps(result.to_dict(), indent=2))
        parallel.barrier()  # metrics.json exists on rank 0 before any rank returns
        return result

    @property
    def _writes(self) -> bool:
        """Whether this process writes the run directory (rank 0 of a run with one)."""
        return self.run_dir is not None and self.rank == 0

    # ------------------------------------------------------------------------ the stages
    @property
    def stage_tasks(self) -> tuple[str, ...]:
        return tuple(cast(Any, self.combiner).stage_tasks) if self.staged else self.tasks

    @property
    def constrained_tasks(self) -> tuple[str, ...]:
        return tuple(cast(Any, self.combiner).constrained_tasks) if self.staged else ()

    def _begin_stage(self) -> None:
        params = list(self.model.parameters()) + list(self.combiner.parameters())
        self.optimizer = torch.optim.Adam(
            params, lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.epoch = 0
        self.batch_in_epoch = 0
        self.stage_step = 0
        self.best = {}
        self.bad_evals = 0
        self.stop_stage = False
        self.stage_started = True
        if self.constrained_tasks:
            # The stage starts from the previous stage's selection: a feasible first candidate.
            self._evaluate_and_select()

    def _run_stage(self) -> None:
        cfg = self.config
        train = self.dataset.train
        count = getattr(train, "num_batches", None)
        steps_per_epoch = (
            int(count(cfg.batch_size))
            if callable(count)
            else math.ceil(len(train) / cfg.batch_size)  # type: ignore[arg-type]
        )
        bar = self._progress_bar(steps_per_epoch)
        try:
            while not self.stop_stage and self.epoch < cfg.max_epochs:
                generator = torch.Generator().manual_seed(
                    cfg.seed * 1_000_003 + self.stage_index * 10_007 + self.epoch
                )
                if self.world_size > 1:
                    batches = parallel.shard_batches(
                        train, cfg.batch_size, generator, self.rank, self.world_size
                    )
                else:
                    batches = train.batches(cfg.batch_size, shuffle=True, generator=generator)  # type: ignore[attr-defined]
                for index, batch in enumerate(batches):
                    if index < self.batch_in_epoch:
                        continue  # resuming inside an epoch
                    self._train_step(batch, bar)
                    self.batch_in_epoch = index + 1
                    self.epochs_run += 1.0 / steps_per_epoch
                    if cfg.max_steps is not None and self.stage_step >= cfg.max_steps:
                        self.stop_stage = True
                    evaluate = bool(cfg.eval_every) and self.stage_step % cfg.eval_every == 0  # type: ignore[operator]
                    if evaluate or self.stop_stage:
                        self._evaluate_and_select()
                    if self.stop_stage:
                        break
                    if evaluate or (
                        cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0
                    ):
                        self._save_last()
                if self.stop_stage:
                    break
                evaluated_now = bool(cfg.eval_every) and self.stage_step % cfg.eval_every == 0  # type: ignore[operator]
                self.epoch += 1
                self.batch_in_epoch = 0
                if not evaluated_now:
                    self._evaluate_and_select()
                self._save_last()
        finally:
            if bar is not None:
                bar.close()

    def _train_step(self, batch: Batch, bar: Any) -> None:
        assert self.optimizer is not None
        batch = batch.to(self.device)
        if self._parallel is not None:
            total, detached, closure = self._parallel_step(batch)
        else:
            with self._autocast():
                logits = self.model(batch.sparse, batch.dense)
                losses = self.objective.losses(logits, batch)
            self._check_finite(losses)
            total = self.combiner(losses)
            regularization = getattr(self.model, "regularization", None)
            if callable(regularization):
                total = total + regularization()
            self.optimizer.zero_grad(set_to_none=True)
            self._backward_and_step(total)

            def closure() -> dict[str, Tensor]:
                with torch.no_grad(), self._autocast():
                    return self.objective.losses(self.model(batch.sparse, batch.dense), batch)

            detached = {t: v.detach() for t, v in losses.items()}
        self.combiner.step(detached, closure=closure)
        self.global_step += 1
        self.stage_step += 1
        row = self._history_row(float(total.detach()), detached)
        self._history.append(row)
        if self._tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, float):
                    self._tensorboard.add_scalar(key, value, self.global_step)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                {k: f"{v:.4g}" for k, v in row.items() if k.startswith(("loss_", "lambda_"))},
                refresh=False,
            )

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision of the forward pass (``trainer.precision``); nothing for fp32."""
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _backward_and_step(self, total: Tensor) -> None:
        """Backward, gradient clipping and the optimizer step (loss-scaled under fp16)."""
        assert self.optimizer is not None
        if self._scaler is None:
            total.backward()
            if self.config.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            return
        self._scaler.scale(total).backward()
        self._scaler.unscale_(self.optimizer)
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self._scaler.step(self.optimizer)
        self._scaler.update()

    # ------------------------------------------------------------------- data parallel
    def _parallel_step(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor], Any]:
        """One step under DDP on this rank's share of the global batch.

        Returns the global total loss, the global task losses (identical on every rank) and the
        closure handed to ``combiner.step`` (it recomputes the global losses after the update).
        """
        assert self.optimizer is not None and self._parallel is not None
        self.optimizer.zero_grad(set_to_none=True)
        total = self._parallel(batch)
        self._backward_and_step(total)
        rows = len(batch)

        def closure() -> dict[str, Tensor]:
            with torch.no_grad():
                return parallel.all_reduce_losses(self._local_losses(self.model, batch), rows)

        return total, self._parallel_losses, closure

    def _local_losses(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """This rank's per-task batch means (zeros, still in the graph, for an empty share)."""
        with self._autocast():
            logits = model(batch.sparse, batch.dense)
            if len(batch) > 0:
                return self.objective.losses(logits, batch)
        return {t: logits[t].float().sum() * 0.0 for t in self.tasks}

    def _parallel_loss(self, model: nn.Module, batch: Batch) -> Tensor:
        """The loss each rank back-propagates under DDP (called inside DDP's forward).

        With ``b`` this rank's rows, ``B`` the global batch and ``W`` the world size, every task
        loss (and the model's regularization) enters the combiner as
        ``global + (c * local - sg(c * local))`` with ``c = W * b / B``: its value is exactly the
        global loss, identical on every rank, and DDP's average of the ranks' gradients is
        ``sum_r (b_r / B) grad local_r``, the gradient of the global batch. The combiner therefore
        sees what a single process sees, whatever it does with the losses.
        """
        local = self._local_losses(model, batch)
        rows = len(batch)
        extra: dict[str, Tensor] = {}
        regularization = getattr(model, "regularization", None)
        if callable(regularization):
            extra["__regularization__"] = regularization()
        reduced, rows_total = parallel.all_reduce_means({**local, **extra}, rows)
        self._check_finite(reduced)
        scale = self.world_size * rows / rows_total

        def surrogate(value: Tensor, global_value: Tensor) -> Tensor:
            scaled = value * scale
            return global_value + (scaled - scaled.detach())

        losses = {t: surrogate(local[t], reduced[t]) for t in self.tasks}
        self._parallel_losses = {t: reduced[t] for t in self.tasks}
        total = self.combiner(losses)
        if extra:
            total = total + surrogate(extra["__regularization__"], reduced["__regularization__"])
        return total

    def _end_stage(self) -> None:
        best = self.best
        stage_tasks = self.stage_tasks
        self.model.load_state_dict(best["model"])
        record: dict[str, Any] = {
            "stage": self.stage_index + 1,
            "tasks": list(stage_tasks),
            "constrained": list(self.constrained_tasks),
            "steps": self.stage_step,
            "selected_step": best["step"],
            "selected_feasible": best["feasible"],
            "valid": best["metrics"],
        }
        if self.staged:
            if self.held_out_constraints:
                bounds = {t: float(best["metrics"][t]["loss"]) for t in stage_tasks}
            else:
                bounds = self._measure_bounds(stage_tasks)
            record["bound_data"] = "valid" if self.held_out_constraints else "train"
            record["bound"] = bounds
            staged = cast(Any, self.combiner)
            record["multipliers_at_end"] = dict(staged.multipliers)
            staged.next_stage(bound=bounds)
        for task in stage_tasks:
            self.reference[task] = best["metrics"][task]["loss"]
        self.stage_records.append(record)
        self.stage_index += 1
        self.stage_started = False
        if self.run_dir is not None:
            self._save_last()

    # ---------------------------------------------------------------- evaluation, selection
    def _evaluate(self, split_name: str) -> dict[str, dict[str, float]]:
        split = getattr(self.dataset, split_name)
        if self.world_size == 1 or not hasattr(split, "subset"):
            logits, labels, groups = predict(
                self.model, split, self.config.eval_batch_size, self.device, self.tasks
            )
            return self.objective.evaluate(logits, labels, groups)
        # Each rank predicts its contiguous share; rank 0 computes the metrics on the whole
        # split (shares concatenated in rank order = storage order) and broadcasts them.
        start, stop = parallel.shard_range(len(split), self.rank, self.world_size)
        arrays: dict[str, np.ndarray | None] = {}
        if stop > start:
            logits, labels, groups = predict(
                self.model,
                split.subset(slice(start, stop)),
                self.config.eval_batch_size,
                self.device,
                self.tasks,
            )
            arrays = {f"logits/{t}": logits[t] for t in self.tasks}
            arrays.update({f"labels/{t}": labels[t] for t in self.tasks})
            arrays["groups"] = groups
        else:
            arrays = {k: None for t in self.tasks for k in (f"logits/{t}", f"labels/{t}")}
            arrays["groups"] = None
        gathered = parallel.gather_arrays(arrays, to_main_only=True)

        def metrics() -> dict[str, dict[str, float]]:
            full = {k: v for k, v in gathered.items() if v is not None}
            return self.objective.evaluate(
                {t: full[f"logits/{t}"] for t in self.tasks},
                {t: full[f"labels/{t}"] for t in self.tasks},
                full.get("groups"),
            )

        return parallel.run_on_main(metrics, TrainingError)

    def _evaluate_and_select(self) -> None:
        metrics = self._evaluate("valid")
        metric = self.objective.selection_metric
        score = float(np.mean([metrics[t][metric] for t in self.stage_tasks]))
        excess = [
            (metrics[t]["loss"] - self.reference[t] - self._slack(t)) / abs(self.reference[t])
            for t in self.constrained_tasks
        ]
        worst = max(excess, default=0.0)
        feasible = worst <= 0 or self.config.selection == "objective"
        key = (1, score) if feasible else (0, -worst)
        improved = not self.best or key > tuple(self.best["key"])
        if improved:
            self.best = {
                "key": list(key),
                "score": score,
                "feasible": feasible,
                "step": self.stage_step,
                "metrics": metrics,
                "model": copy.deepcopy(
                    {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                ),
            }
            self.bad_evals = 0
        elif feasible:
            # Infeasible candidates (the multipliers still catching up) do not use up patience.
            self.bad_evals += 1
            if self.bad_evals >= self.config.patience:
                self.stop_stage = True
        row: dict[str, Any] = {
            "step": self.global_step,
            "stage": self.stage_index + 1,
            "epoch": round(self.epochs_run, 4),
            "score": score,
            "feasible": int(feasible),
            "improved": int(improved),
        }
        for task, values in metrics.items():
            for name, value in values.items():
                row[f"{name}_{task}"] = value
        if self.held_out_constraints and self.constrained_tasks:
            cast(Any, self.combiner).update_multipliers(
                {t: metrics[t]["loss"] for t in self.constrained_tasks}
            )
        self._evaluations.append(row)
        self._evaluations.flush()
        self._history.flush()

    def _slack(self, task: str) -> float:
        """Tolerance of a constraint checked on validation data: the combiner's own."""
        reference = abs(self.reference[task])
        if self.config.feasibility_tolerance is not None:
            return self.config.feasibility_tolerance * reference
        rho = float(getattr(self.combiner, "tolerances", {}).get(task, 0.0))
        if getattr(self.combiner, "tolerance_mode", "relative") == "absolute":
            return rho
        return rho * reference

    @torch.no_grad()
    def _measure_bounds(self, tasks: tuple[str, ...]) -> dict[str, float]:
        """Mean training loss over one pass of the training split, training mode, no gradient."""
        self.model.train()
        totals = dict.fromkeys(tasks, 0.0)
        rows = 0
        train: Any = self.dataset.train
        sharded = self.world_size > 1 and hasattr(train, "subset")
        if sharded:  # each rank measures its contiguous share; the sums are all-reduced
            share = parallel.shard_range(len(train), self.rank, self.world_size)
            train = train.subset(slice(*share))
        for batch in train.batches(self.config.batch_size, shuffle=False):
            batch = batch.to(self.device)
            with self._autocast():
                losses = self.objective.losses(self.model(batch.sparse, batch.dense), batch)
            for task in tasks:
                totals[task] += float(losses[task]) * len(batch)
            rows += len(batch)
        if sharded:
            summed = parallel.all_reduce_sum(
                torch.tensor([*(totals[t] for t in tasks), float(rows)], dtype=torch.float64)
            ).tolist()
            totals, rows = dict(zip(tasks, summed[:-1], strict=True)), int(summed[-1])
        return {t: totals[t] / rows for t in tasks}

    # ---------------------------------------------------------------------- bookkeeping
    def _history_row(self, total: float, losses: Mapping[str, Tensor]) -> dict[str, Any]:
        values = torch.stack([losses[t].double() for t in self.tasks]).tolist()
        row: dict[str, Any] = {
            "step": self.global_step,
            "stage": self.stage_index + 1,
            "epoch": round(self.epochs_run, 4),
            "lr": self.optimizer.param_groups[0]["lr"] if self.optimizer else self.config.lr,
            "loss": total,
        }
        row.update({f"loss_{t}": v for t, v in zip(self.tasks, values, strict=True)})
        for prefix, attr in (("lambda", "multipliers"), ("bound", "bounds")):
            for task, value in dict(getattr(self.combiner, attr, {}) or {}).items():
                row[f"{prefix}_{task}"] = value
        weights = getattr(self.combiner, "term_weights", None) or getattr(
            self.combiner, "task_weights", None
        )
        for task, value in dict(weights or {}).items():
            row[f"weight_{task}"] = value
        return row

    def _history_columns(self) -> list[str]:
        columns = ["step", "stage", "epoch", "lr", "loss"]
        for prefix in ("loss", "lambda", "bound", "weight"):
            columns += [f"{prefix}_{t}" for t in self.tasks]
        return columns

    def _evaluation_columns(self) -> list[str]:
        columns = ["step", "stage", "epoch", "score", "feasible", "improved"]
        names = ["auc", "logloss", "loss", "gauc", "ndcg", "pairwise_accuracy"]
        return columns + [f"{m}_{t}" for t in self.tasks for m in names]

    def _check_finite(self, losses: Mapping[str, Tensor]) -> None:
        values = torch.stack([losses[t].detach().float() for t in self.tasks])
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            task = self.tasks[int((~finite).nonzero()[0])]
            where = (
                f"; the last good checkpoint is kept at {self.run_dir / 'last.pt'}"
                if self.run_dir is not None and (self.run_dir / "last.pt").exists()
                else ""
            )
            raise TrainingError(
                f"non-finite loss for task {task!r} at step {self.global_step + 1} "
                f"(stage {self.stage_index + 1}){where}; lower trainer.lr or check the data"
            )

    def _progress_bar(self, total: int) -> Any:
        if not self.config.progress or self.rank != 0:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm ships with the cli extra
            return None
        desc = f"stage {self.stage_index + 1}/{self.num_stages} ({'+'.join(self.stage_tasks)})"
        return tqdm(
            total=total * self.config.max_epochs, desc=desc, leave=False, dynamic_ncols=True
        )

    # ------------------------------------------------------------------ run directory
    def _prepare_run_dir(self, resume: bool) -> None:
        if self.run_dir is None or self.world_size > 1:
            if self.run_dir is None and resume:
                raise TrainingError("resume needs a run directory")
            self._history: CsvLog | _NullLog = _NullLog()
            self._evaluations: CsvLog | _NullLog = _NullLog()
            if self.run_dir is not None:
                # Data parallel: rank 0 owns the directory; its failure stops every rank.
                parallel.run_on_main(lambda: self._open_run_dir(resume), TrainingError)
            return
        self._open_run_dir(resume)

    def _open_run_dir(self, resume: bool) -> None:
        assert self.run_dir is not None
        if resume:
            if not (self.run_dir / "last.pt").exists():
                raise TrainingError(f"{self.run_dir}: no last.pt to resume from")
        elif self.run_dir.exists() and any(self.run_dir.iterdir()) and not self.overwrite:
            raise TrainingError(
                f"{self.run_dir} already exists and is not empty; choose another run directory, "
                f"resume it, or pass overwrite"
            )
        elif self.run_dir.exists():
            for name in ("history.csv", "evaluations.csv", "last.pt", "best.pt", "metrics.json"):
                (self.run_dir / name).unlink(missing_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._history = CsvLog(self.run_dir / "history.csv", self._history_columns())
        self._evaluations = CsvLog(self.run_dir / "evaluations.csv", self._evaluation_columns())
        if self.config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _close_logs(self) -> None:
        self._history.close()
        self._evaluations.close()
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _save_last(self) -> None:
        if self.run_dir is None:
            return
        self._history.flush()
        self._evaluations.flush()
        rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        rng_by_rank = parallel.all_gather_objects(rng) if self.world_size > 1 else None
        if not self._writes:
            return
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else {},
            "combiner": self.combiner.state_dict(),
            "rng": rng,
            "position": {
                "stage_index": self.stage_index,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "global_step": self.global_step,
                "stage_step": self.stage_step,
                "stage_started": self.stage_started,
                "stop_stage": self.stop_stage,
                "bad_evals": self.bad_evals,
                "epochs_run": self.epochs_run,
                "wall_time": self.wall_time,
            },
            "best": self.best,
            "reference": self.reference,
            "stage_records": json.dumps(self.stage_records),
            "log_rows": {"history": self._history.rows, "evaluations": self._evaluations.rows},
        }
        if self.optimizer is not None and self._scaler is not None:
            state["scaler"] = self._scaler.state_dict()
        if rng_by_rank is not None:
            state["rng_by_rank"] = rng_by_rank
        save_checkpoint(state, self.run_dir / "last.pt")

    def _load_last(self) -> None:
        run_dir = self.run_dir
        assert run_dir is not None
        if self.world_size > 1:
            # Rank 0 reads the file and sends it: no shared filesystem needed across nodes.
            state = parallel.run_on_main(
                lambda: load_checkpoint(run_dir / "last.pt", map_location="cpu"), TrainingError
            )
        else:
            state = load_checkpoint(run_dir / "last.pt", map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.combiner.load_state_dict(state["combiner"])
        pos = state["position"]
        self.stage_index = int(pos["stage_index"])
        self.epoch = int(pos["epoch"])
        self.batch_in_epoch = int(pos["batch_in_epoch"])
        self.global_step = int(pos["global_step"])
        self.stage_step = int(pos["stage_step"])
        self.stage_started = bool(pos["stage_started"])
        self.stop_stage = bool(pos["stop_stage"])
        self.bad_evals = int(pos["bad_evals"])
        self.epochs_run = float(pos["epochs_run"])
        self.wall_time = float(pos["wall_time"])
        self.best = state["best"]
        self.reference = {k: float(v) for k, v in state["reference"].items()}
        self.stage_records = json.loads(state["stage_records"])
        if self.stage_started:
            params = list(self.model.parameters()) + list(self.combiner.parameters())
            self.optimizer = torch.optim.Adam(
                params, lr=self.config.lr, weight_decay=self.config.weight_decay
            )
            self.optimizer.load_state_dict(state["optimizer"])
        if self._scaler is not None and "scaler" in state:
            self._scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        by_rank = state.get("rng_by_rank")
        if self.world_size > 1 and by_rank is not None and len(by_rank) == self.world_size:
            rng = by_rank[self.rank]  # same world size: each rank continues its own stream
        elif self.rank > 0:
            torch.manual_seed(self.config.seed + 7919 * self.rank + self.global_step)
            rng = None
        if rng is not None:
            torch.set_rng_state(rng["torch"].cpu())
            if rng["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        self._history.truncate(int(state["log_rows"]["history"]))
        self._evaluations.truncate(int(state["log_rows"]["evaluations"]))


class _NullLog:
    """Stands in for the CSV logs when a run has no directory."""

    rows = 0

    def truncate(self, n: int) -> None:
        self.rows = n

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _LossModule(nn.Module):
    """What DDP wraps: the model and the loss of a step, so that DDP looks for unused parameters
    from the loss actually back-propagated (a task whose term has weight 0 this stage leaves its
    tower without gradient, as in a single process), not from every output of the model."""

    def __init__(self, model: nn.Module, loss: Any) -> None:
        super().__init__()
        self.model = model
        self._loss = [loss]  # a list: the trainer's bound method is not a submodule

    def forward(self, batch: Batch) -> Tensor:
        return cast(Tensor, self._loss[0](self.model, batch))
