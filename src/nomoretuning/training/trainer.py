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
- restores the stage's best parameters, measures the bound ``L*`` of the stage tasks as their mean
  training loss over one full pass of the training split in training mode without gradients (the
  way the constraint is evaluated during training: same mode, same per-batch mean reduction, same
  data), and hands it to ``next_stage``.

Checkpoints (``last.pt``: everything needed to resume exactly; ``best.pt``: the selected model) are
written atomically at every evaluation and every ``checkpoint_every`` steps.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import Tensor, nn

from nomoretuning.core.base import LossCombiner
from nomoretuning.data.batching import Batch, PreparedDataset
from nomoretuning.errors import ConfigError, NomoretuningError
from nomoretuning.training.checkpoint import atomic_write_text, load_checkpoint, save_checkpoint
from nomoretuning.training.history import CsvLog
from nomoretuning.training.objectives import BinaryObjective, Objective, predict

__all__ = ["FitResult", "Trainer", "TrainerConfig", "TrainingError"]


class TrainingError(NomoretuningError, RuntimeError):
    """Training cannot go on (non-finite loss, a run directory in the way, a bad resume)."""


@dataclass
class TrainerConfig:
    """Settings of one training run. Every field has a default.

    Example:
        >>> TrainerConfig(batch_size=4096, eval_every=200).patience
        2
    """

    seed: int = 0
    batch_size: int = 1024
    eval_batch_size: int = 16384
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0
    max_epochs: int = 10
    max_steps: int | None = None
    eval_every: int | None = None
    patience: int = 2
    selection: Literal["feasible_first", "objective"] = "feasible_first"
    feasibility_tolerance: float | None = None
    checkpoint_every: int | None = None
    device: str = "auto"
    progress: bool = False
    tensorboard: bool = False

    def __post_init__(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"trainer.{name} must be a positive integer, got {value!r}")
        for name in ("max_steps", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"trainer.{name} must be a positive integer or null, got {value!r}"
                )
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"trainer.lr must be > 0, got {self.lr!r}")
        if not self.weight_decay >= 0:
            raise ConfigError(f"trainer.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"trainer.grad_clip must be > 0 or null, got {self.grad_clip!r}")
        if self.selection not in ("feasible_first", "objective"):
            raise ConfigError(
                f"trainer.selection must be 'feasible_first' or 'objective', got {self.selection!r}"
            )
        if self.feasibility_tolerance is not None and not self.feasibility_tolerance >= 0:
            raise ConfigError(
                f"trainer.feasibility_tolerance must be >= 0, got {self.feasibility_tolerance!r}"
            )


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
        self.objective: Objective = objective or BinaryObjective(self.tasks)
        if getattr(combiner, "switch", None) is not None:
            raise ConfigError(
                "the trainer ends stages by early stopping; build NMT without switch="
            )
        self.staged = _is_staged(combiner)
        self.num_stages = int(getattr(combiner, "num_stages", 1)) if self.staged else 1
        self.device = _resolve_device(self.config.device)
        self.model.to(self.device)
        self.combiner.to(self.device)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.overwrite = overwrite
        self._tensorboard: Any = None
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
            torch.manual_seed(self.config.seed)
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
        if self.run_dir is not None:
            save_checkpoint(
                {"model": self.model.state_dict(), "tasks": list(self.tasks)},
                self.run_dir / "best.pt",
            )
            atomic_write_text(self.run_dir / "metrics.json", json.dumps(result.to_dict(), indent=2))
        return result

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
        logits = self.model(batch.sparse, batch.dense)
        losses = self.objective.losses(logits, batch)
        self._check_finite(losses)
        total = self.combiner(losses)
        regularization = getattr(self.model, "regularization", None)
        if callable(regularization):
            total = total + regularization()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()

        def closure() -> dict[str, Tensor]:
            with torch.no_grad():
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
            bounds = self._measure_bounds(stage_tasks)
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
        logits, labels, groups = predict(
            self.model, split, self.config.eval_batch_size, self.device, self.tasks
        )
        return self.objective.evaluate(logits, labels, groups)

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
        for batch in self.dataset.train.batches(self.config.batch_size, shuffle=False):  # type: ignore[attr-defined]
            batch = batch.to(self.device)
            losses = self.objective.losses(self.model(batch.sparse, batch.dense), batch)
            for task in tasks:
                totals[task] += float(losses[task]) * len(batch)
            rows += len(batch)
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
        if not self.config.progress:
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
        if self.run_dir is None:
            if resume:
                raise TrainingError("resume needs a run directory")
            self._history: CsvLog | _NullLog = _NullLog()
            self._evaluations: CsvLog | _NullLog = _NullLog()
            return
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
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else {},
            "combiner": self.combiner.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
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
        save_checkpoint(state, self.run_dir / "last.pt")

    def _load_last(self) -> None:
        assert self.run_dir is not None
        state = load_checkpoint(self.run_dir / "last.pt", map_location=self.device)
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
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
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


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"trainer.device {name!r} is not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.device is {name!r} but CUDA is not available; use 'cpu' or 'auto'"
        )
    return device
