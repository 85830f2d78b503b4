"""A trained run loaded for scoring: `load_run` and `TrainedRun` (predict, evaluate, score files).

Example:
    >>> import nomoretuning as nt  # doctest: +SKIP
    >>> run = nt.load_run("runs/census_nmt")  # doctest: +SKIP
    >>> run.predict(frame).head()  # one probability column per task  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from nomoretuning.data.preprocessing import EncodedRows, Preprocessing
from nomoretuning.errors import DataError
from nomoretuning.models import MultiTaskModel
from nomoretuning.serving.run_files import MODEL_FILE, PREPROCESSING_FILE, ModelSpec
from nomoretuning.serving.writers import TableWriter, output_format
from nomoretuning.training.checkpoint import load_checkpoint
from nomoretuning.training.objectives import objective_from_spec
from nomoretuning.training.records import Metrics

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECKPOINTS", "Checkpoint", "TrainedRun", "load_run"]

Checkpoint = Literal["best", "last"]
CHECKPOINTS: tuple[Checkpoint, ...] = ("best", "last")
"""``best``: the model the run selected (``best.pt``, written when it finishes); ``last``: the
latest training state (``last.pt``, also of an unfinished run)."""

PathLike = str | os.PathLike[str]
Progress = Callable[[int], None]
"""Called with the number of rows of each piece once it is scored."""


class TrainedRun:
    """A run's model (in eval mode), its `ModelSpec` and its `Preprocessing`.

    Outputs: one column per task holding its predicted probability; a ranking run's single-score
    model gives one column ``score`` (its ranking score, a logit); a ranking run of another model,
    one score column per task.
    """

    def __init__(
        self,
        run_dir: Path,
        spec: ModelSpec,
        model: MultiTaskModel,
        preprocessing: Preprocessing | None,
        checkpoint: Checkpoint,
        device: torch.device,
    ) -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.model = model
        self._preprocessing = preprocessing
        self.checkpoint = checkpoint
        self.device = device

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.spec.tasks

    @property
    def preprocessing(self) -> Preprocessing:
        """The run's preprocessing.

        Raises:
            DataError: the run has none (its dataset was built by hand).
        """
        if self._preprocessing is None:
            raise DataError(
                f"{self.run_dir}: no {PREPROCESSING_FILE} (the run's dataset records no input "
                "format), so its model can be used on encoded tensors only (run.model)"
            )
        return self._preprocessing

    @property
    def ranking(self) -> bool:
        return self._preprocessing is not None and self._preprocessing.ranking

    @property
    def output_columns(self) -> tuple[str, ...]:
        """The columns `predict` returns, in order."""
        if self.ranking and self.spec.name == "single_score":
            return ("score",)
        return self.tasks

    # --------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def logits(self, rows: EncodedRows, batch_size: int = 8192) -> dict[str, np.ndarray]:
        """The model's float32 logits per task for encoded rows."""
        out: dict[str, list[np.ndarray]] = {t: [] for t in self.tasks}
        for start in range(0, len(rows), batch_size):
            sparse = torch.from_numpy(rows.sparse[start : start + batch_size]).to(self.device)
            dense = torch.from_numpy(rows.dense[start : start + batch_size]).to(self.device)
            result = self.model(sparse, dense)
            for task in self.tasks:
                out[task].append(result[task].float().cpu().numpy())
        empty = np.zeros(0, dtype=np.float32)
        return {t: np.concatenate(v) if v else empty for t, v in out.items()}

    def predict_rows(self, rows: EncodedRows, batch_size: int = 8192) -> dict[str, np.ndarray]:
        """The output columns (see `output_columns`) for encoded rows, as float64 arrays."""
        return self._outputs(self.logits(rows, batch_size))

    def _outputs(self, logits: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.ranking:
            if self.output_columns == ("score",):
                return {"score": logits[self.tasks[0]].astype(np.float64)}
            return {t: logits[t].astype(np.float64) for t in self.tasks}
        return {t: 1.0 / (1.0 + np.exp(-logits[t].astype(np.float64))) for t in self.tasks}

    def _frame(self, rows: EncodedRows, batch_size: int) -> pd.DataFrame:
        import pandas as pd

        scores = pd.DataFrame(self.predict_rows(rows, batch_size))
        if rows.kept is None:
            return scores
        clash = [c for c in rows.kept.columns if c in scores.columns]
        if clash:
            raise DataError(
                f"--keep {clash[0]!r}: the output already has a column of that name (the "
                "scores); keep another column"
            )
        return pd.concat([rows.kept, scores], axis=1)

    def predict(
        self, data: pd.DataFrame, *, keep: Sequence[str] = (), batch_size: int = 8192
    ) -> pd.DataFrame:
        """Scores a table with the run's named columns (features, and the group column if any):
        one row per input row, in order and under the input's index (so that
        ``frame["p"] = run.predict(frame)["task"]`` lines up on a filtered frame too), with the
        ``keep`` columns first.

        Raises:
            DataError: a missing column (named) or a bad value.
        """
        rows = self.preprocessing.encode(data, "data", keep=keep)
        scores = self._frame(rows, batch_size)
        scores.index = data.index
        return scores

    def predict_file(
        self,
        path: PathLike,
        out: PathLike,
        *,
        keep: Sequence[str] = (),
        chunk_rows: int = 100_000,
        batch_size: int = 8192,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Scores a file in the run's input format into ``out`` (CSV or Parquet by extension),
        piece by piece in bounded memory; returns the number of rows.

        ``out`` appears only once every row is scored; an existing ``out`` is refused unless
        ``overwrite``, and is left untouched when scoring fails.

        Raises:
            DataError: a bad input (named file, row or column) or output.
        """
        target = Path(out)
        output_format(target)
        if target.exists() and not overwrite:
            raise DataError(f"{target} already exists; pick another --out or pass --overwrite")
        if target.resolve() == Path(path).resolve():
            raise DataError(f"{target}: --out is the input file; write the scores elsewhere")
        total = 0
        with TableWriter(target) as writer:
            for rows in self.preprocessing.read(path, keep=keep, chunk_rows=chunk_rows):
                writer.write(self._frame(rows, batch_size))
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
        return total

    def evaluate(
        self,
        data: PathLike | pd.DataFrame,
        *,
        chunk_rows: int = 100_000,
        batch_size: int = 8192,
        progress: Progress | None = None,
    ) -> Metrics:
        """The run's metrics on labelled rows: a file in the run's input format or a table.

        Binary tasks: ``auc``, ``logloss`` (= ``loss``) and ``gauc`` when the run has a group
        column; ranking tasks: ``ndcg``, ``pairwise_accuracy``, ``loss``.

        Raises:
            DataError: a bad input, or a task's label column missing.
        """
        import pandas as pd

        prep = self.preprocessing
        pieces: Iterable[EncodedRows]
        if isinstance(data, pd.DataFrame):
            pieces = [prep.encode(data, "data", labels=True)]
        else:
            pieces = prep.read(data, labels=True, chunk_rows=chunk_rows)
        logits: dict[str, list[np.ndarray]] = {t: [] for t in self.tasks}
        labels: dict[str, list[np.ndarray]] = {t: [] for t in self.tasks}
        groups: list[np.ndarray] = []
        for rows in pieces:
            assert rows.labels is not None
            for task, values in self.logits(rows, batch_size).items():
                logits[task].append(values)
                labels[task].append(rows.labels[task])
            if rows.groups is not None:
                groups.append(rows.groups)
            if progress is not None:
                progress(len(rows))
        objective = objective_from_spec(prep.objective, self.tasks)
        return objective.evaluate(
            {t: np.concatenate(v) for t, v in logits.items()},
            {t: np.concatenate(v) for t, v in labels.items()},
            np.concatenate(groups) if groups else None,
        )


def load_run(
    run_dir: PathLike,
    checkpoint: Checkpoint = "best",
    device: str | torch.device = "cpu",
) -> TrainedRun:
    """Loads a run directory written by ``nomoretuning train`` for scoring.

    Args:
        run_dir: the run directory (it holds ``model.json``, ``preprocessing.json`` and the
            checkpoints).
        checkpoint: ``"best"`` (the selected model, default) or ``"last"`` (see `CHECKPOINTS`).
        device: where the model runs.

    Raises:
        DataError: not a run directory, a missing or mismatched checkpoint, with the fix.

    Example:
        >>> run = load_run("runs/census_nmt")  # doctest: +SKIP
        >>> run.tasks, run.output_columns  # doctest: +SKIP
        (('income', 'marital'), ('income', 'marital'))
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such run directory; pass the output of `nomoretuning train`")
    if checkpoint not in CHECKPOINTS:
        raise DataError(f"checkpoint {checkpoint!r} is unknown; use one of {list(CHECKPOINTS)}")
    if not (folder / MODEL_FILE).is_file():
        runs = sorted(p.name for p in folder.iterdir() if (p / MODEL_FILE).is_file())
        if runs and all(ModelSpec.load(folder / r / MODEL_FILE).tasks == (r,) for r in runs):
            raise DataError(
                f"{folder} holds one single-task run per task ({', '.join(runs)}); score "
                f"each of them, e.g. {folder / runs[0]}"
            )
        if runs:
            raise DataError(
                f"{folder} is not a run directory (no {MODEL_FILE}); it holds the runs "
                f"{', '.join(runs)}: pass one of them, e.g. {folder / runs[0]}"
            )
    spec = ModelSpec.load(folder / MODEL_FILE)
    preprocessing_file = folder / PREPROCESSING_FILE
    preprocessing = Preprocessing.load(preprocessing_file) if preprocessing_file.is_file() else None
    weights = folder / f"{checkpoint}.pt"
    if not weights.is_file():
        hint = (
            "the run has not finished; score its latest state with --checkpoint last"
            if checkpoint == "best"
            else "the run never saved a checkpoint; train it first"
        )
        raise DataError(f"{weights}: no such checkpoint ({hint})")
    try:
        state = load_checkpoint(weights)["model"]
    except Exception as error:
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise DataError(
            f"{weights}: unreadable checkpoint ({reason}); train the run again"
        ) from None
    model = spec.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0][:160]
        raise DataError(
            f"{weights} does not fit {folder / MODEL_FILE} ({first}); were the files of two runs "
            "mixed? train the run again"
        ) from None
    target = torch.device(device)
    model.to(target).eval()
    return TrainedRun(folder, spec, model, preprocessing, checkpoint, target)
