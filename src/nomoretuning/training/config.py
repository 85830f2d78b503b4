"""`TrainerConfig`: every setting of a training run, the one source of the trainer's options.

The command line's ``trainer:`` section is derived from this dataclass field by field (see
``nomoretuning.cli.config``), so every option here is settable from YAML with the same default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from nomoretuning import checks
from nomoretuning.errors import ConfigError

__all__ = ["CONSTRAINT_DATA", "PRECISIONS", "SELECTIONS", "START_TEST_STAGES", "TrainerConfig"]

SELECTIONS = ("feasible_first", "objective")
"""How a stage's candidate is chosen (see `nomoretuning.training.selection`)."""
START_TEST_STAGES = ("top", "every")
"""Which of NMT's stages test their best candidate against their start (``start_test``)."""
CONSTRAINT_DATA = ("train", "valid")
"""Which data checks the constraints and drives NMT's dual step
(`nomoretuning.training.constraints`)."""
PRECISIONS = ("fp32", "bf16", "fp16")
"""Forward-pass precision: full, bfloat16 autocast, float16 autocast with loss scaling (CUDA)."""


CHANGEABLE_ON_RESUME = ("progress", "tensorboard", "checkpoint_every", "device", "eval_batch_size")
"""The `TrainerConfig` fields a resumed run may change: how it reports and checkpoints, and on
what hardware and in what memory it runs (`TrainerConfig.resumable`). A resume is exact when none
changes; another ``device`` or ``eval_batch_size`` rounds differently (losses differ in the last
digits, which a near tie between candidates can feel)."""


@dataclass
class TrainerConfig:
    """Settings of one training run. Every field has a default.

    Attributes:
        seed: seeds the model's dropout, the batch order and every other draw of the run.
        batch_size: rows per training step (the *global* batch under torchrun).
        eval_batch_size: rows per forward pass when evaluating.
        lr: Adam's learning rate (a fresh Adam per stage).
        weight_decay: Adam's weight decay.
        grad_clip: maximum global gradient norm (None: no clipping).
        max_epochs: epochs per stage at the most.
        max_steps: steps per stage at the most (None: no limit).
        eval_every: evaluate every this many steps, and at each epoch end (None: only as often
            as ``evaluations_per_epoch`` says).
        evaluations_per_epoch: evaluate at least this many times per epoch, evenly spaced (the
            ``eval_every`` cadence, where it is finer, wins): a stage then picks from the same
            candidates whatever cadence is set (1: epoch ends only).
        patience: how long a stage may go without a better candidate (see
            `nomoretuning.training.selection.CandidateSelection`), in ``patience_unit``.
        patience_unit: ``"evaluations"`` (feasible evaluations) or ``"epochs"`` (of training
            without progress).
        constrained_patience: the patience of a constrained stage (NMT's stages after the top
            task's), in ``patience_unit`` (None, the default: ``patience``; measured in
            docs/defaults_history.md).
        selection: ``"feasible_first"`` or ``"objective"`` (see `nomoretuning.training.selection`).
        feasibility_tolerance: relative tolerance of the validation constraints used for selection
            (None: the combiner's own tolerance).
        metric_guard: a candidate is also infeasible when a constrained task's validation
            selection metric falls below its value when that task's stage ended by more than
            this many standard deviations of it between evaluations of that stage (1, the
            default; None: the constraints on the loss alone; measured in docs/defaults_history.md).
        selection_band: a stage chooses by the one-standard-error rule: among the feasible
            candidates within this many standard deviations of the best score (the score's
            noise between evaluations), the best for the other tasks in priority order (None,
            the default: the best score; see `nomoretuning.training.selection`).
        start_test: NMT's top-task stage keeps its starting point, the joint start, unless its
            best candidate's validation metric is higher by at least this many standard errors
            of the difference (2, the default; paired over the validation rows, DeLong's for AUC,
            over the queries for NDCG; None: the best candidate; measured in docs/defaults_history.md).
        start_test_stages: which stages the start test applies to: ``"top"`` (the default, the
            top-task stage) or ``"every"`` (every stage after the joint start: a constrained
            stage then keeps its start unless its own task gains that many standard errors).
        constraints: ``"valid"``: held-out bounds and dual steps; ``"train"``: bounds from a
            training pass and per-step dual steps from training losses.
        constraint_every: with held-out constraints, a dual step every this many steps from a
            running estimate on the constraint set (one more chunk of ``batch_size`` rows
            evaluated each time; None: one dual step per evaluation, from the validation losses).
        constraint_rows: the size of the constraint set: at most this many validation rows.
        freeze_constrained: in a constrained stage, leave the constrained tasks' own parameters
            (their towers and gates, where the model says which they are) as their stage left
            them: a higher task is then held by the shared layers, and it cannot overfit on
            its own while a lower task trains.
        fit_later_heads: in each NMT stage, also fit the own parameters of the tasks whose
            stages come later on their own losses (no gradient of theirs reaches a parameter
            the earlier tasks use, so those train exactly as without it): each later task then
            starts its stage with a head fitted to the current shared layers
            (`nomoretuning.training.later_heads`; on by default, measured in docs/defaults_history.md).
        checkpoint_every: also write ``last.pt`` every this many steps (None: at evaluations).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: one of `PRECISIONS`.
        progress: show a progress bar per stage.
        tensorboard: also log to TensorBoard (``run_dir/tensorboard``).
        stage_test: also evaluate each stage's selection on the test split
            (`nomoretuning.training.records.StageRecord.test`: what each stage gave, such as
            NMT's joint start, which is joint training with equal weights); never used to choose.

    Example:
        >>> TrainerConfig(batch_size=4096, eval_every=200).patience
        1.0
        >>> TrainerConfig(precision="fp8")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: trainer.precision must be one of ['fp32', 'bf16', 'fp16'], got 'fp8'
    """  # noqa: E501

    seed: int = 0
    batch_size: int = 1024
    eval_batch_size: int = 16384
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 10.0
    max_epochs: int = 20
    max_steps: int | None = None
    eval_every: int | None = None
    evaluations_per_epoch: int = 4
    patience: float = 1.0
    patience_unit: Literal["evaluations", "epochs"] = "epochs"
    constrained_patience: float | None = None
    selection: Literal["feasible_first", "objective"] = "feasible_first"
    feasibility_tolerance: float | None = None
    metric_guard: float | None = 1.0
    selection_band: float | None = None
    start_test: float | None = 2.0
    start_test_stages: Literal["top", "every"] = "top"
    constraints: Literal["train", "valid"] = "train"
    constraint_every: int | None = 20
    constraint_rows: int = 65536
    freeze_constrained: bool = True
    fit_later_heads: bool = True
    checkpoint_every: int | None = None
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    progress: bool = True
    tensorboard: bool = False
    stage_test: bool = False

    def resumable(self) -> dict[str, object]:
        """The settings a run must keep to be resumed: every field but `CHANGEABLE_ON_RESUME`.

        Example:
            >>> "lr" in TrainerConfig().resumable(), "device" in TrainerConfig().resumable()
            (True, False)
        """
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in CHANGEABLE_ON_RESUME
        }

    def __post_init__(self) -> None:
        for name in (
            "batch_size",
            "eval_batch_size",
            "max_epochs",
            "constraint_rows",
            "evaluations_per_epoch",
        ):
            checks.positive_int(getattr(self, name), f"trainer.{name}")
        for name in ("max_steps", "eval_every", "checkpoint_every", "constraint_every"):
            checks.optional_positive_int(getattr(self, name), f"trainer.{name}")
        if not checks.is_integer(self.seed) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"trainer.seed must be an integer in [0, 2**63), got {self.seed!r}")
        self.lr = checks.positive_number(self.lr, "trainer.lr")
        checks.one_of(self.patience_unit, "trainer.patience_unit", ("evaluations", "epochs"))
        self.patience = self._checked_patience(self.patience, "trainer.patience")
        if self.constrained_patience is not None:
            self.constrained_patience = self._checked_patience(
                self.constrained_patience, "trainer.constrained_patience"
            )
        self.weight_decay = checks.positive_number(
            self.weight_decay, "trainer.weight_decay", allow_zero=True
        )
        if self.grad_clip is not None:
            self.grad_clip = checks.positive_number(self.grad_clip, "trainer.grad_clip")
        for name in ("feasibility_tolerance", "metric_guard", "selection_band", "start_test"):
            if getattr(self, name) is not None:
                setattr(
                    self,
                    name,
                    checks.positive_number(getattr(self, name), f"trainer.{name}", allow_zero=True),
                )
        checks.one_of(self.selection, "trainer.selection", SELECTIONS)
        checks.one_of(self.start_test_stages, "trainer.start_test_stages", START_TEST_STAGES)
        checks.one_of(self.constraints, "trainer.constraints", CONSTRAINT_DATA)
        checks.one_of(self.precision, "trainer.precision", PRECISIONS)
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"trainer.device must be a device name, got {self.device!r}")
        for name in (
            "progress",
            "tensorboard",
            "freeze_constrained",
            "fit_later_heads",
            "stage_test",
        ):
            checks.boolean(getattr(self, name), f"trainer.{name}")

    def _checked_patience(self, value: object, name: str) -> float:
        value = checks.positive_number(value, name)
        if self.patience_unit == "evaluations":
            return checks.positive_int(int(value) if float(value).is_integer() else value, name)
        return value

    def stage_selection(self, constrained: bool) -> tuple[bool, float]:
        """For a stage after the first: whether its start is tested (``start_test_stages``)
        and its patience (``constrained_patience`` in a constrained stage, where set).

        Example:
            >>> TrainerConfig(constrained_patience=0.5).stage_selection(constrained=True)
            (False, 0.5)
            >>> TrainerConfig(constrained_patience=0.5).stage_selection(constrained=False)
            (True, 1.0)
        """
        tested = not constrained or self.start_test_stages == "every"
        own = self.constrained_patience if constrained else None
        return tested, self.patience if own is None else own

    def evaluation_interval(self, steps_per_epoch: int) -> int:
        """Steps between two evaluations in an epoch of ``steps_per_epoch`` steps (each epoch
        also ends with one).

        Example:
            >>> TrainerConfig().evaluation_interval(100)
            25
            >>> TrainerConfig(eval_every=10).evaluation_interval(100)
            10
            >>> TrainerConfig(evaluations_per_epoch=1).evaluation_interval(100)
            100
        """
        interval = max(1, steps_per_epoch // self.evaluations_per_epoch)
        return interval if self.eval_every is None else min(self.eval_every, interval)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Every option's name, in declaration order.

        Example:
            >>> TrainerConfig.option_names()[:3]
            ('seed', 'batch_size', 'eval_batch_size')
        """
        return tuple(f.name for f in fields(cls))
