"""``nomoretuning predict``, ``evaluate`` and ``export``: from a trained run to scores, metrics and
a serving artifact (`nomoretuning.serving`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from nomoretuning.cli.outputs import OUTPUT_FILES
from nomoretuning.errors import DataError
from nomoretuning.files import json_text
from nomoretuning.serving.run import Checkpoint, Progress, load_run
from nomoretuning.serving.run_files import PREPROCESSING_FILE
from nomoretuning.training.checkpoint import atomic_write_text
from nomoretuning.training.records import Metrics

__all__ = [
    "check_out",
    "evaluate_command",
    "export_command",
    "format_metrics",
    "predict_command",
]


@contextmanager
def _bar(description: str, enabled: bool) -> Iterator[Progress | None]:
    """A tqdm bar counting rows (None when disabled or tqdm is missing)."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the cli extra
        yield None
        return
    # disable=None: a bar on a terminal only (no carriage-return noise in logs and pipes)
    bar = tqdm(
        desc=description,
        unit=" rows",
        unit_scale=True,
        dynamic_ncols=True,
        leave=False,
        disable=None,
    )
    try:
        yield bar.update
    finally:
        bar.close()


def predict_command(
    run_dir: Path,
    data: Path,
    out: Path,
    *,
    keep: Sequence[str] = (),
    checkpoint: Checkpoint = "best",
    chunk_rows: int = 100_000,
    batch_size: int = 8192,
    overwrite: bool = False,
    progress: bool = True,
) -> int:
    """Scores ``data`` with the run's model into ``out``; prints where and how many rows."""
    check_out(out, run_dir, data)
    run = load_run(run_dir, checkpoint)
    with _bar(f"scoring {data.name}", progress) as bar:
        rows = run.predict_file(
            data,
            out,
            keep=keep,
            chunk_rows=chunk_rows,
            batch_size=batch_size,
            overwrite=overwrite,
            progress=bar,
        )
    columns = ", ".join([*keep, *run.output_columns])
    print(f"scored {rows} rows of {data} with {run_dir} ({checkpoint}): {out} ({columns})")
    return rows


def format_metrics(metrics: Metrics) -> str:
    """A plain table: one row per task, one column per metric.

    Example:
        >>> print(format_metrics({"income": {"auc": 0.94, "logloss": 0.17, "loss": 0.17}}))
        task    auc     logloss
        income  0.9400  0.1700
    """
    names = sorted({m for values in metrics.values() for m in values if m != "loss"})
    width = max([4, *(len(t) for t in metrics)]) + 2
    lines = ["task".ljust(width) + "".join(n.ljust(max(len(n), 6) + 2) for n in names).rstrip()]
    for task, values in metrics.items():
        cells = "".join(
            f"{values.get(n, float('nan')):.4f}".ljust(max(len(n), 6) + 2) for n in names
        )
        lines.append((task.ljust(width) + cells).rstrip())
    return "\n".join(lines)


def evaluate_command(
    run_dir: Path,
    data: Path,
    *,
    out: Path | None = None,
    checkpoint: Checkpoint = "best",
    chunk_rows: int = 100_000,
    batch_size: int = 8192,
    overwrite: bool = False,
    progress: bool = True,
) -> Metrics:
    """The run's metrics on a labelled file, printed as a table (and written as JSON to ``out``,
    an undefined metric as null)."""
    if out is not None:
        if out.suffix.lower() != ".json":
            raise DataError(f"--out {out}: the metrics are written as JSON; name a .json file")
        check_out(out, run_dir, data)
        if out.exists() and not overwrite:
            raise DataError(f"{out} already exists; pick another --out or pass --overwrite")
    run = load_run(run_dir, checkpoint)
    with _bar(f"evaluating {data.name}", progress) as bar:
        metrics = run.evaluate(data, chunk_rows=chunk_rows, batch_size=batch_size, progress=bar)
    print(f"{data} with {run_dir} ({checkpoint}):")
    print(format_metrics(metrics))
    if out is not None:
        atomic_write_text(out, json_text(metrics))
        print(f"metrics: {out}")
    return metrics


def check_out(out: Path, run_dir: Path, data: Path | None = None) -> None:
    """Refuses an ``--out`` that would replace the input ``data`` or a file of the run.

    Raises:
        DataError: naming the clash.
    """
    target = out.resolve()
    if data is not None and target == data.resolve():
        raise DataError(f"--out {out} is the input file; write elsewhere")
    if target.parent == run_dir.resolve() and out.name in OUTPUT_FILES:
        raise DataError(f"--out {out} is a file of the run {run_dir}; write elsewhere")


def _same_file(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


_DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".parquet", ".pq", ".yaml", ".yml", ".gz")
_OTHER_SUFFIXES = {
    "onnx": (".pt", ".pth", ".ts", *_DATA_SUFFIXES),
    "torchscript": (".onnx", *_DATA_SUFFIXES),
}
"""The ``--out`` suffixes that name something else than an artifact of each format."""


def export_command(
    run_dir: Path,
    out: Path,
    *,
    format: str,
    checkpoint: Checkpoint = "best",
    overwrite: bool = False,
) -> Path:
    """Writes the run's serving artifact to ``out`` and its preprocessing beside it."""
    from nomoretuning.serving.export import export_model

    wanted = ".onnx" if format == "onnx" else ".pt"
    if out.suffix.lower() in _OTHER_SUFFIXES[format]:
        raise DataError(
            f"--out {out}: a {format} model would be written under a {out.suffix} name; "
            f"name it {out.stem}{wanted}"
        )

    beside = out.with_name(f"{out.stem}.{PREPROCESSING_FILE}")
    source = run_dir / PREPROCESSING_FILE
    for target in (out, beside):
        check_out(target, run_dir)
        if target.exists() and not overwrite:
            same = target == beside and source.is_file() and _same_file(source, beside)
            if not same:
                raise DataError(f"{target} already exists; pick another --out or pass --overwrite")
    run = load_run(run_dir, checkpoint)
    export_model(run.model, run.tasks, out, format)
    if source.is_file():
        shutil.copyfile(source, beside)
        print(f"exported {run_dir} ({checkpoint}) as {format}: {out}; preprocessing: {beside}")
    else:
        print(f"exported {run_dir} ({checkpoint}) as {format}: {out}")
    return out
