"""A run's logs: ``history.csv`` (one row per step), ``evaluations.csv`` (one row per
evaluation), optional TensorBoard scalars and the progress bar of a stage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nomoretuning.training.checkpoint import CheckpointFiles, atomic_write_text
from nomoretuning.training.errors import TrainingError
from nomoretuning.training.history import CsvLog
from nomoretuning.training.selection import Candidate

__all__ = ["EVALUATION_METRICS", "RUN_FILES", "RunLogs", "prepare_run_directory", "progress_bar"]

RUN_FILES = (
    "history.csv",
    "evaluations.csv",
    "last.pt",
    "previous.pt",
    "best.pt",
    "metrics.json",
)
"""The files a run writes into its directory (``overwrite`` replaces exactly these)."""

EVALUATION_METRICS = ("auc", "logloss", "loss", "gauc", "ndcg", "pairwise_accuracy")
"""The metric columns of ``evaluations.csv`` (those a task's objective does not report stay
empty)."""


class _NullLog:
    """Stands in for a CSV log when a run has no directory (or on ranks other than 0)."""

    rows = 0

    def truncate(self, n: int) -> None:
        self.rows = n

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RunLogs:
    """The logs of one run over ``tasks``; without a directory every call is a no-op.

    Example:
        >>> import tempfile, pathlib
        >>> logs = RunLogs(("a",), pathlib.Path(tempfile.mkdtemp()))
        >>> logs.step({"step": 1, "stage": 1, "loss_a": 0.5}); logs.close()
        >>> (logs.directory / "history.csv").read_text().splitlines()[1][:8]
        '1,1,,,,0'
    """

    def __init__(
        self, tasks: tuple[str, ...], directory: Path | None, tensorboard: bool = False
    ) -> None:
        self.tasks = tasks
        self.directory = directory
        self.history: CsvLog | _NullLog = _NullLog()
        self.evaluations: CsvLog | _NullLog = _NullLog()
        self._tensorboard: Any = None
        if directory is not None:
            self.history = CsvLog(directory / "history.csv", self.history_columns(tasks))
            self.evaluations = CsvLog(directory / "evaluations.csv", self.evaluation_columns(tasks))
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tensorboard = SummaryWriter(str(directory / "tensorboard"))

    @staticmethod
    def history_columns(tasks: tuple[str, ...]) -> list[str]:
        columns = ["step", "stage", "epoch", "lr", "loss"]
        for prefix in ("loss", "lambda", "bound", "weight"):
            columns += [f"{prefix}_{t}" for t in tasks]
        return columns

    @staticmethod
    def evaluation_columns(tasks: tuple[str, ...]) -> list[str]:
        columns = ["step", "stage", "epoch", "score", "feasible", "improved"]
        return columns + [f"{m}_{t}" for t in tasks for m in EVALUATION_METRICS]

    def step(self, row: Mapping[str, Any]) -> None:
        """One training step's row (also sent to TensorBoard)."""
        self.history.append(row)
        if self._tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, float):
                    self._tensorboard.add_scalar(key, value, row["step"])

    def evaluation(
        self, candidate: Candidate, improved: bool, *, step: int, stage: int, epoch: float
    ) -> None:
        """One evaluation's row; both logs are flushed."""
        row: dict[str, Any] = {
            "step": step,
            "stage": stage,
            "epoch": epoch,
            "score": candidate.score,
            "feasible": int(candidate.feasible),
            "improved": int(improved),
        }
        for task, values in candidate.metrics.items():
            for name, value in values.items():
                row[f"{name}_{task}"] = value
        self.evaluations.append(row)
        self.flush()

    @property
    def rows(self) -> dict[str, int]:
        """Rows written so far (checkpoints store them; resume truncates to them)."""
        return {"history": self.history.rows, "evaluations": self.evaluations.rows}

    def truncate(self, rows: Mapping[str, int], step: int | None = None) -> None:
        """Forgets what was logged after a checkpoint: its ``rows``, and in TensorBoard every
        point after its global ``step`` (the steps the resumed run takes again)."""
        self.history.truncate(int(rows["history"]))
        self.evaluations.truncate(int(rows["evaluations"]))
        if self._tensorboard is not None and step is not None:
            from torch.utils.tensorboard import SummaryWriter

            directory = self._tensorboard.log_dir
            self._tensorboard.close()
            self._tensorboard = SummaryWriter(directory, purge_step=step + 1)

    def flush(self) -> None:
        self.evaluations.flush()
        self.history.flush()

    def close(self) -> None:
        self.history.close()
        self.evaluations.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def progress_bar(enabled: bool, total: int, description: str) -> Any:
    """A tqdm bar of ``total`` steps (None when disabled or tqdm is missing)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the cli extra
        return None
    return tqdm(total=total, desc=description, leave=False, dynamic_ncols=True)


def prepare_run_directory(
    run_dir: Path,
    checkpoints: CheckpointFiles,
    resume: str | None,
    overwrite: bool,
    files: Mapping[str, str] | None = None,
) -> None:
    """Makes ``run_dir`` ready: to resume (its checkpoint ``resume`` must exist), or for a new
    run (empty, or ``overwrite``: the run files of an earlier run are removed, nothing else);
    then writes ``files`` (name -> text, the run's own description) into it atomically (on a
    resume, only those missing: the run keeps the description it started with)."""
    if resume is not None:
        if resume == "last":
            checkpoints.finish_interrupted_save()
        if not checkpoints.exists(resume):
            raise TrainingError(
                f"{run_dir}: no {checkpoints.path(resume).name} to resume from; "
                f"{checkpoints.fallback(resume)}"
            )
    elif run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise TrainingError(
            f"{run_dir} already exists and is not empty; choose another run directory, "
            f"resume it, or pass overwrite"
        )
    elif run_dir.exists():
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():  # a resumed run keeps those it started with
        if resume is None or not (run_dir / name).exists():
            atomic_write_text(run_dir / name, text)
