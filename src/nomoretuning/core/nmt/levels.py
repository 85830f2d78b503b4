"""NMT's priority levels and the per-task settings parsed against them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nomoretuning import checks
from nomoretuning.errors import ConfigError

__all__ = ["Levels", "parse_level_weights", "parse_priorities", "parse_tolerances"]

Levels = tuple[tuple[str, ...], ...]
"""Tasks by priority level, highest first; a level may hold several tasks."""


def parse_priorities(priorities: Sequence[str | Sequence[str]]) -> Levels:
    """Priority levels from a list of task names or lists of names (shared levels).

    Example:
        >>> parse_priorities(["ctr", ["cvr", "like"], "gmv"])
        (('ctr',), ('cvr', 'like'), ('gmv',))
    """
    if isinstance(priorities, str) or not isinstance(priorities, Sequence):
        raise ConfigError(
            f"NMT: priorities must be a list of task names (highest first), got {priorities!r}"
        )
    if len(priorities) == 0:
        raise ConfigError("NMT: priorities must name at least one task")
    levels: list[tuple[str, ...]] = []
    for entry in priorities:
        if isinstance(entry, str):
            levels.append((entry,))
        elif isinstance(entry, Sequence) and len(entry) > 0:
            levels.append(tuple(entry))
        else:
            raise ConfigError(
                f"NMT: each priority level must be a task name or a list, got {entry!r}"
            )
    checks.task_names([t for level in levels for t in level], "NMT priorities")
    return tuple(levels)


def parse_tolerances(
    tolerance: float | Mapping[str, float], tasks: Sequence[str], default: float
) -> dict[str, float]:
    """One tolerance ``rho_j >= 0`` per task: one value for all, or a dict (others: ``default``)."""
    if isinstance(tolerance, Mapping):
        unknown = [t for t in tolerance if t not in tasks]
        if unknown:
            raise ConfigError(f"NMT: tolerance names unknown task {unknown[0]!r}")
        values = {t: tolerance.get(t, default) for t in tasks}
    else:
        values = dict.fromkeys(tasks, tolerance)
    return {
        t: checks.positive_number(rho, f"NMT: tolerance of task {t!r}", allow_zero=True)
        for t, rho in values.items()
    }


def parse_level_weights(
    level_weights: Mapping[str, float] | None, levels: Levels
) -> dict[str, float]:
    """Relative weights of the tasks inside each level, normalized to sum to 1 per level."""
    tasks = [t for level in levels for t in level]
    raw = dict.fromkeys(tasks, 1.0)
    if level_weights is not None:
        unknown = [t for t in level_weights if t not in tasks]
        if unknown:
            raise ConfigError(f"NMT: level_weights names unknown task {unknown[0]!r}")
        for task, w in level_weights.items():
            if not isinstance(w, int | float) or not math.isfinite(w) or w <= 0:
                raise ConfigError(f"NMT: level weight of task {task!r} must be > 0, got {w!r}")
            raw[task] = float(w)
    normalized: dict[str, float] = {}
    for level in levels:
        total = sum(raw[t] for t in level)
        normalized.update({t: raw[t] / total for t in level})
    return normalized
