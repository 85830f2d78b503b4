"""Shared pieces of the benchmarks: the real data, the benchmark model, the machine's description.

Not a package: each benchmark puts this folder on ``sys.path`` and imports it.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from nomoretuning.data import PreparedDataset, find_census_income, load_census_income
from nomoretuning.errors import NomoretuningError
from nomoretuning.models import build_model
from nomoretuning.training import TrainerConfig

SHARED_CENSUS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "census-income-kdd"
    / "census-income.test.gz"
)  # fmt: skip

# The MMoE every benchmark trains, and torch-rechub's MTLTrainer trains in bench_trainer.py with the
# same layers (torch-rechub's MLPs put batch norm after every hidden linear layer): 8 experts of
# [128, 64], towers [16], embedding dim 16 for every sparse field, linear softmax gates, batch norm,
# no dropout, no embedding L2: about 0.62M parameters on Census-Income with two tasks.
MMOE: dict[str, Any] = {
    "num_experts": 8,
    "expert_dims": (128, 64),
    "gate_dims": (),
    "tower_dims": (16,),
    "embedding_dim": 16,
    "embedding_l2": 0.0,
    "batch_norm": True,
}


def add_set_flag(parser: argparse.ArgumentParser) -> None:
    """``--set OPTION=VALUE`` (repeatable): a trainer option for every run; read by `options`."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="a trainer option for every run (YAML value), to measure an alternative default",
    )


def options(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """The ``OPTION=VALUE`` items of a repeated flag as a dict, each value read as YAML.

    >>> options(["fit_later_heads=true", "metric_guard=1"])
    {'fit_later_heads': True, 'metric_guard': 1}
    """
    import yaml

    found: dict[str, Any] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise SystemExit(f"{flag} {item!r}: give OPTION=VALUE, e.g. {flag} metric_guard=1")
        found[name.strip()] = yaml.safe_load(value)
    return found


def trainer_options(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """`options`, each checked by `TrainerConfig` before any training: an unknown or invalid
    option is refused in one line.

    >>> trainer_options(["fit_later_heads=false"])
    {'fit_later_heads': False}
    """
    return _checked(options(items, flag), flag, lambda found: TrainerConfig(**found))


def nmt_options(items: Iterable[str], flag: str = "--nmt") -> dict[str, Any]:
    """`options`, each checked by `nomoretuning.NMT` before any training.

    >>> nmt_options(["dual=ascent"])
    {'dual': 'ascent'}
    """
    from nomoretuning import NMT

    return _checked(options(items, flag), flag, lambda found: NMT(["a", "b"], **found))


def _checked(
    found: dict[str, Any], flag: str, build: Callable[[dict[str, Any]], object]
) -> dict[str, Any]:
    """``found`` once ``build(found)`` accepts it; its error, in one line, otherwise."""
    try:
        build(found)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"{flag}: {error}") from None
    return found


def three_numbers(text: str, kind: type[Any], flag: str, example: str) -> tuple[Any, Any, Any]:
    """Three positive numbers of ``kind`` from ``"a,b,c"``, or a one-line error naming ``flag``.

    Example:
        >>> three_numbers("0.7,0.2,0.1", float, "--census-split", "0.8,0.1,0.1")
        (0.7, 0.2, 0.1)
    """
    try:
        values = tuple(kind(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise SystemExit(f"{flag} {text!r}: give three positive numbers, e.g. {example}")
    return values[0], values[1], values[2]


def census_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The raw Census-Income file: ``explicit``, the dataset cache, or ``../shared/data``."""
    if explicit is not None:
        return Path(explicit)
    found = find_census_income()
    if found is not None:
        return Path(found)
    if SHARED_CENSUS.is_file():
        return SHARED_CENSUS
    raise SystemExit(
        "Census-Income not found: pass --census PATH (census-income.test.gz) or set "
        "NOMORETUNING_CACHE to its folder"
    )


def census(
    path: str | os.PathLike[str] | None = None,
    tasks: tuple[str, ...] = ("income", "marital"),
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> PreparedDataset:
    """The real Census-Income data, split 80/10/10 (or ``split``) with seed 0."""
    return load_census_income(census_path(path), tasks=tasks, split=split)


def mmoe(data: PreparedDataset, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """The benchmark MMoE (see ``MMOE``) for ``data``'s features and tasks."""
    torch.manual_seed(seed)
    return build_model("mmoe", data.features, list(data.tasks), **{**MMOE, **overrides})


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(threads: int) -> str:
    """One line: CPU model, cores, torch version, threads, load average now."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores (nproc), torch {torch.__version__}, "
        f"{threads} torch thread(s), python {platform.python_version()}, load average {load}"
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved(
    candidates: dict[str, Callable[[], None]], rounds: int, repeat: int
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, measured round-robin (``repeat`` calls per turn) so
    that a change in the machine's load hits every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(repeat):
                fn()
            times[name].append((time.perf_counter() - start) / repeat)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer of at least ``minimum`` (a usage error otherwise).

    Example:
        >>> at_least(2)("3"), positive_int("1")
        (3, 1)
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


positive_int = at_least(1)
"""An argparse ``type``: a positive integer."""


def run(main: Callable[[], object]) -> None:
    """Runs a benchmark's ``main``: the library's bad-input errors end it with their one line and
    exit status 2, not a traceback; an integer ``main`` returns is the exit status."""
    try:
        result = main()
    except NomoretuningError as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(result if isinstance(result, int) else 0)
