"""NMT's priority levels and the per-task settings parsed against them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from torch import Tensor

from nomoretuning import checks
from nomoretuning.core.base import LossCombiner
from nomoretuning.errors import ConfigError

__all__ = [
    "Levels",
    "Stage",
    "observed_losses",
    "parse_level_weights",
    "parse_priorities",
    "parse_tolerances",
    "resolve_values",
    "slack_share",
    "stage_combiner",
    "stage_schedule",
]

Levels = tuple[tuple[str, ...], ...]
"""Tasks by priority level, highest first; a level may hold several tasks."""


class Stage(NamedTuple):
    """One stage: the tasks it minimizes and the tasks it holds under their bounds."""

    tasks: tuple[str, ...]
    constrained: tuple[str, ...]


def stage_schedule(levels: Levels, refine: bool, joint_start: bool = False) -> tuple[Stage, ...]:
    """Stage k minimizes level k under every higher level; with ``refine`` a last stage minimizes
    the top level again under every lower level's bound (what the lower levels achieved), so the
    top task can gain from what the others taught the shared layers; with ``joint_start`` a first
    stage trains every task together (equal weights), so that the top task's stage starts from
    what all the tasks teach the shared layers.

    Example:
        >>> [s.tasks for s in stage_schedule((("a",), ("b",)), refine=True)]
        [('a',), ('b',), ('a',)]
        >>> stage_schedule((("a",), ("b",)), refine=True)[-1].constrained
        ('b',)
        >>> [s.tasks for s in stage_schedule((("a",), ("b",)), False, joint_start=True)]
        [('a', 'b'), ('a',), ('b',)]
    """
    stages = [
        Stage(level, tuple(t for higher in levels[:k] for t in higher))
        for k, level in enumerate(levels)
    ]
    if joint_start and len(levels) > 1:
        stages.insert(0, Stage(tuple(t for level in levels for t in level), ()))
    if refine and len(levels) > 1:
        stages.append(Stage(levels[0], tuple(t for lower in levels[1:] for t in lower)))
    return tuple(stages)


def slack_share(levels: Levels, stage: Stage, task: str) -> float:
    """The share of a higher ``task``'s slack that ``stage`` may spend: with L levels, the stages
    of the levels below task j's level release its slack in equal steps, ``(k - j) / (L - 1 - j)``
    for level k's stage, so the last level's stage has all of it and no stage in between can leave
    the ones after it nothing. 1 for a task ``stage`` does not constrain and for a refinement of
    a higher level; with two levels always 1.

    Example:
        >>> levels = (("a",), ("b",), ("c",))
        >>> stages = stage_schedule(levels, refine=False)
        >>> slack_share(levels, stages[1], "a"), slack_share(levels, stages[2], "a")
        (0.5, 1.0)
        >>> slack_share(levels, stages[2], "b")
        1.0
    """
    if task not in stage.constrained:
        return 1.0
    level_of = {t: k for k, level in enumerate(levels) for t in level}
    here, higher = level_of[stage.tasks[0]], level_of[task]
    if here <= higher:  # a refinement of a higher level under this lower one
        return 1.0
    return (here - higher) / (len(levels) - 1 - higher)


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


def resolve_values(
    what: str,
    given: float | Mapping[str, float] | None,
    tasks: tuple[str, ...],
    stage: int,
    estimate: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """One finite value per stage task from ``next_stage``'s ``bound`` / ``baseline`` argument:
    a float (single-task stage), a dict naming exactly the stage tasks, or None for ``estimate``.

    Example:
        >>> resolve_values("bound", 0.5, ("a",), stage=1)
        {'a': 0.5}
    """
    if given is None:
        if estimate is None or len(estimate) < len(tasks):
            raise RuntimeError(
                f"NMT.next_stage(): no training loss recorded in stage {stage} "
                f"({'+'.join(tasks)!r}); call step() first or pass {what}="
            )
        resolved = {t: number(estimate[t], what, t) for t in tasks}
    elif isinstance(given, Mapping):
        missing = [t for t in tasks if t not in given]
        unknown = [t for t in given if t not in tasks]
        if missing or unknown:
            raise ConfigError(
                f"NMT.next_stage(): {what} must name exactly the stage tasks {list(tasks)}, "
                f"got {sorted(given)}"
            )
        resolved = {t: number(given[t], what, t) for t in tasks}
    else:
        if len(tasks) > 1:
            raise ConfigError(
                f"NMT.next_stage(): stage {stage} has tasks {list(tasks)}; "
                f"pass {what} as a dict per task"
            )
        resolved = {tasks[0]: number(given, what, tasks[0])}
    return resolved  # every value through `number`: finite


def stage_combiner(factory: Callable[[Sequence[str]], LossCombiner], stage: Stage) -> LossCombiner:
    """The inner combiner of ``stage``'s terms (its tasks, then the tasks it holds), checked.

    Example:
        >>> from nomoretuning import EqualWeights
        >>> stage_combiner(EqualWeights, Stage(("b",), ("a",))).tasks
        ('b', 'a')

    Raises:
        ConfigError: ``factory`` returned something else than a combiner of exactly those terms.
    """
    if isinstance(factory, LossCombiner):
        raise ConfigError(
            f"NMT: combiner= takes a factory, e.g. lambda terms: {type(factory).__name__}(terms), "
            "not a combiner: each stage gets its own, over its terms"
        )
    terms = tuple(stage.tasks) + tuple(stage.constrained)
    inner = factory(terms)
    if not isinstance(inner, LossCombiner):
        raise ConfigError(
            f"NMT: combiner factory must return a LossCombiner, got {type(inner).__name__}"
        )
    if set(inner.tasks) != set(terms):
        raise ConfigError(
            f"NMT: combiner factory returned a combiner over {list(inner.tasks)}, "
            f"expected {list(terms)}"
        )
    return inner


def number(value: object, what: str, task: str, where: str = "NMT.next_stage()") -> float:
    """``value`` as a finite float: a number (or a one-element tensor), not a string or a bool.

    Example:
        >>> number(0.5, "bound", "a")
        0.5
    """
    if not isinstance(value, bool) and not isinstance(value, str):
        try:
            result = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError, RuntimeError):
            result = math.nan
        if math.isfinite(result):
            return result
    raise ConfigError(f"{where}: {what} of task {task!r} must be a finite number, got {value!r}")


def observed_losses(
    losses: Mapping[str, Tensor | float], tasks: Sequence[str], constrained: Sequence[str]
) -> dict[str, float]:
    """The constrained tasks' losses given to ``NMT.update_multipliers`` as floats: every
    constrained task's, a finite scalar each; a task NMT does not know is refused.

    Example:
        >>> import torch
        >>> observed_losses({"a": 0.5, "b": torch.tensor(0.25)}, ("a", "b", "c"), ("b",))
        {'b': 0.25}
    """
    where = "NMT.update_multipliers()"
    if not isinstance(losses, Mapping):
        raise ConfigError(f"{where}: losses must be a dict of task losses, got {losses!r}")
    unknown = [t for t in losses if t not in tasks]
    if unknown:
        raise ConfigError(f"{where}: unknown task {unknown[0]!r}; tasks: {list(tasks)}")
    values: dict[str, float] = {}
    for task in constrained:
        if task not in losses:
            raise ConfigError(f"{where}: missing loss of constrained task {task!r}")
        loss = losses[task]  # a float stays a float: a tensor of it would round to float32
        if isinstance(loss, Tensor) and loss.numel() != 1:
            raise ConfigError(
                f"{where}: the loss of task {task!r} must be a finite scalar, got shape "
                f"{tuple(loss.shape)}"
            )
        values[task] = number(loss, "the loss", task, where)
    return values
