"""The ``nomoretuning`` command line (also ``python -m nomoretuning``): argument parsing and
dispatch to the protocols (`nomoretuning.cli.protocols`).

Commands: ``train CONFIG``, ``compare CONFIG``, ``grid CONFIG``, ``plot RUN``, ``predict RUN``,
``evaluate RUN``, ``export RUN``, ``demo``.
Bad input ends with a one-line message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from nomoretuning.errors import DataError, NomoretuningError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nomoretuning",
        description="Prioritized multi-task learning: train, compare, grid-search, plot, and "
        "score, evaluate or export a trained run.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("config", type=Path, help="YAML config file")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config key, e.g. trainer.lr=0.01",
        )
        where = "run directory" if name == "train" else "output folder (its runs inside)"
        p.add_argument("--output", type=Path, help=f"{where} (default: the config's output)")
        either = p.add_mutually_exclusive_group()
        either.add_argument(
            "--overwrite",
            action="store_true",
            help="replace an existing output (only the files an earlier output wrote)",
        )
        either.add_argument(
            "--resume",
            nargs="?",
            const="last",
            choices=["last", "previous"],
            help="continue an interrupted output from its last checkpoint (or, with "
            "`--resume previous`, from the one before it)",
        )
        p.add_argument(
            "--cache-dir", type=Path, help="dataset cache (default: $NOMORETUNING_CACHE)"
        )
        return p

    with_config("train", "train one config (one model, one method, one seed)")
    with_config("compare", "compare methods x architectures x seeds (the paper's Table 1)")
    with_config("grid", "the loss-weight grid search that NMT replaces, NMT beside it")
    plot_help = "draw a run's multipliers, bounds and losses (PNG)"
    plot = sub.add_parser("plot", help=plot_help, description=plot_help)
    plot.add_argument("run", type=Path, help="a run directory (of train, or one run of compare)")
    checkpoint_help = "best (the selected model, default) or last (the latest training state)"
    predict = sub.add_parser(
        "predict",
        help="score a file with a trained run (one row per input row)",
        description="Score a file in the run's input format: one output row per input row, in "
        "order, one column per task (its probability; `score` for ranking models).",
    )
    predict.add_argument("run", type=Path, help="a run directory written by `train`")
    predict.add_argument("--data", type=Path, required=True, help="the file to score")
    predict.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    predict.add_argument(
        "--keep", nargs="+", default=[], metavar="COLUMN", help="input columns to carry through"
    )
    evaluate_help = "a trained run's metrics on a labelled file"
    evaluate = sub.add_parser("evaluate", help=evaluate_help, description=evaluate_help)
    evaluate.add_argument("run", type=Path, help="a run directory written by `train`")
    evaluate.add_argument("--data", type=Path, required=True, help="a labelled file")
    evaluate.add_argument("--out", type=Path, help="also write the metrics as JSON here")
    for scoring in (predict, evaluate):
        scoring.add_argument(
            "--chunk-rows", type=int, default=100_000, help="rows read at a time (memory bound)"
        )
        scoring.add_argument("--batch-size", type=int, default=8192, help="rows per forward pass")
    export_help = "write a serving artifact (ONNX or TorchScript)"
    export = sub.add_parser("export", help=export_help, description=export_help)
    export.add_argument("run", type=Path, help="a run directory written by `train`")
    export.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    export.add_argument("--out", type=Path, required=True, help="the artifact to write")
    for scoring in (predict, evaluate, export):
        scoring.add_argument(
            "--checkpoint", choices=["best", "last"], default="best", help=checkpoint_help
        )
        scoring.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    demo_help = "a few-minute comparison on Census-Income (or synthetic)"
    demo = sub.add_parser("demo", help=demo_help, description=demo_help)
    demo.add_argument("--output", type=Path, help="where to write (default: runs/demo-<time>)")
    demo.add_argument("--cache-dir", type=Path, help="dataset cache (default: $NOMORETUNING_CACHE)")
    return parser


def _output(args: argparse.Namespace, configured: str | None, default: str) -> Path:
    if args.output is not None:
        return Path(args.output)
    return Path(configured or default)


def _set_cache(args: argparse.Namespace) -> None:
    if getattr(args, "cache_dir", None) is not None:
        os.environ["NOMORETUNING_CACHE"] = str(args.cache_dir)


def _train(args: argparse.Namespace) -> int:
    from nomoretuning.cli.config import load_config
    from nomoretuning.cli.protocols.train import train_command

    config = load_config(args.config, args.overrides)
    config.overwrite = config.overwrite or args.overwrite
    output = _output(args, config.output, f"runs/{args.config.stem}")
    train_command(config, output, resume=args.resume or False)
    return 0


def _compare(
    args: argparse.Namespace, config_path: Path | None = None, overrides: Sequence[str] = ()
) -> int:
    from nomoretuning.cli.config import load_config
    from nomoretuning.cli.protocols.compare import compare_command
    from nomoretuning.cli.protocols.table3 import table3_command

    path = config_path or args.config
    config = load_config(path, [*getattr(args, "overrides", []), *overrides])
    overwrite = config.overwrite or getattr(args, "overwrite", False)
    output = _output(args, config.output, f"runs/{path.stem}")
    command = table3_command if config.compare.protocol == "table3" else compare_command
    command(config, output, overwrite=overwrite, resume=getattr(args, "resume", None) or False)
    return 0


def _grid(args: argparse.Namespace) -> int:
    from nomoretuning.cli.config import load_config
    from nomoretuning.cli.protocols.grid import grid_command

    config = load_config(args.config, args.overrides)
    output = _output(args, config.output, f"runs/{args.config.stem}-grid")
    grid_command(
        config, output, overwrite=config.overwrite or args.overwrite, resume=args.resume or False
    )
    return 0


def _plot(args: argparse.Namespace) -> int:
    from nomoretuning.cli.plots import plot_run

    for path in plot_run(args.run):
        print(f"plot: {path}")
    return 0


def _positive(value: int, option: str) -> int:
    if value < 1:
        raise DataError(f"{option} must be a positive integer, got {value}")
    return value


def _scoring_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options `predict` and `evaluate` share, checked."""
    return {
        "checkpoint": args.checkpoint,
        "chunk_rows": _positive(args.chunk_rows, "--chunk-rows"),
        "batch_size": _positive(args.batch_size, "--batch-size"),
        "overwrite": args.overwrite,
    }


def _predict(args: argparse.Namespace) -> int:
    from nomoretuning.cli.scoring import predict_command

    predict_command(args.run, args.data, args.out, keep=args.keep, **_scoring_options(args))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from nomoretuning.cli.scoring import evaluate_command

    evaluate_command(args.run, args.data, out=args.out, **_scoring_options(args))
    return 0


def _export(args: argparse.Namespace) -> int:
    from nomoretuning.cli.scoring import export_command

    export_command(
        args.run, args.out, format=args.format, checkpoint=args.checkpoint, overwrite=args.overwrite
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nomoretuning.data import find_census_income

    census = find_census_income()
    name = "demo_census.yaml" if census is not None else "demo_synthetic.yaml"
    if census is not None:
        print(f"demo: real data, UCI Census-Income (KDD) at {census}")
    else:
        print(
            "demo: the Census-Income file is not in the dataset cache "
            "(set NOMORETUNING_CACHE to its folder); running on SYNTHETIC click logs instead"
        )
    config = resources.files("nomoretuning") / "configs" / name
    output = args.output or Path("runs") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    with resources.as_file(config) as path:
        namespace = argparse.Namespace(output=output, overwrite=False, resume=None, overrides=[])
        return _compare(namespace, config_path=path)


@contextlib.contextmanager
def _process_group() -> Iterator[None]:
    """Under torchrun (``WORLD_SIZE`` > 1): joins the process group for the command, and silences
    the standard output of every rank but 0. A single process: nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        yield
        return
    from nomoretuning.training import distributed

    distributed.init_from_env()
    try:
        if distributed.is_main_process():
            yield
        else:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                yield
    finally:
        distributed.destroy()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    _set_cache(args)
    commands = {
        "train": _train,
        "compare": _compare,
        "grid": _grid,
        "plot": _plot,
        "predict": _predict,
        "evaluate": _evaluate,
        "export": _export,
        "demo": _demo,
    }
    formatwarning = warnings.formatwarning
    warnings.formatwarning = _one_line_warning  # put back below: main() may run in a notebook
    try:
        with _process_group():
            return commands[args.command](args)
    except NomoretuningError as error:
        print(f"nomoretuning: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = args.command in ("train", "compare", "grid")
        print(
            "nomoretuning: interrupted" + ("; continue with --resume" if resumable else ""),
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader of the output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a path that cannot be read or written, named by the error
        print(f"nomoretuning: error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as the command line shows it: one line, without the library's source line."""
    return f"nomoretuning: warning: {message}\n"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nomoretuning")
    except PackageNotFoundError:  # pragma: no cover - a checkout not installed
        return "unknown"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
