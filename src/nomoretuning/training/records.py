"""Typed records of a training run: what each stage did and what ``Trainer.fit`` returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FitResult", "Metrics", "StageRecord", "StartComparison", "describe_stages"]

Metrics = dict[str, dict[str, float]]
"""``{task: {metric: value}}`` on one split (``loss`` among the metrics)."""


@dataclass
class StartComparison:
    """The paired test of one of NMT's stages (the top task's, or with
    ``trainer.start_test_stages: every`` any after the joint start): its best candidate against
    its start (``trainer.start_test``), on the validation split.

    Attributes:
        difference: the best candidate's validation metric minus the start's.
        standard_error: the paired standard error of ``difference`` (DeLong's for AUC, per
            query for NDCG; NaN where the comparison cannot be made).
        threshold: the standard errors ``difference`` had to reach (``start_test``).
        kept_start: whether the start stayed the stage's selection.

    Example:
        >>> StartComparison(0.003, 0.002, 2.0, kept_start=True).z
        1.5
    """

    difference: float
    standard_error: float
    threshold: float
    kept_start: bool

    @property
    def z(self) -> float:
        """``difference`` in standard errors (NaN where the error is 0 or unknown)."""
        error = self.standard_error
        return self.difference / error if error > 0 else float("nan")


@dataclass
class StageRecord:
    """One finished stage.

    Attributes:
        stage: 1-based stage number.
        tasks: the tasks the stage minimized.
        constrained: the tasks held under their bounds.
        steps: optimizer steps taken in the stage.
        selected_step: the stage step of the selected candidate (0: the starting point).
        selected_feasible: whether the selected candidate met every constraint on validation.
        valid: the selected candidate's validation metrics.
        bound_data: ``"valid"`` or ``"train"``: where the stage tasks' bounds were measured
            (staged combiners only).
        bound: the bounds ``L*`` recorded for the stage tasks (staged combiners only).
        multipliers_at_end: the multipliers when the stage ended (staged combiners only).
        baseline: the loss of a constant prediction on the bound's data (staged combiners only).
        start_comparison: the stage's test of its best against its start (the top-task stage,
            or every stage with ``start_test_stages: every``; with ``start_test`` set, when the
            best was not the start).
        test: the selected candidate's test metrics (with ``trainer.stage_test`` only).
    """

    stage: int
    tasks: list[str]
    constrained: list[str]
    steps: int
    selected_step: int
    selected_feasible: bool
    valid: Metrics
    bound_data: str | None = None
    bound: dict[str, float] | None = None
    multipliers_at_end: dict[str, float] | None = None
    baseline: dict[str, float] | None = None
    start_comparison: StartComparison | None = None
    test: Metrics | None = None

    def to_dict(self) -> dict[str, Any]:
        """As plain data; the fields of staged combiners only are left out when unset.

        Example:
            >>> StageRecord(1, ["a"], [], 10, 8, True, {}).to_dict()["selected_step"]
            8
        """
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self, metric: str) -> str:
        """One line for a person: what the stage trained, what it selected and why, and the
        selected candidate's validation ``metric`` (the objective's selection metric).

        Example:
            >>> stage = StageRecord(2, ["like"], ["click"], 32, 0, True,
            ...                     {"like": {"auc": 0.61}, "click": {"auc": 0.64}},
            ...                     multipliers_at_end={"click": 0.5})
            >>> stage.describe("auc")
            'stage 2, like under click: 32 steps, kept its start; validation auc like 0.6100, \
click 0.6400; multiplier click 0.5'
        """
        trained = " + ".join(self.tasks)
        if self.constrained:
            trained += " under " + ", ".join(self.constrained)
        parts = [f"stage {self.stage}, {trained}: {self.steps} steps, {self._selection(metric)}"]
        shown = [t for t in [*self.tasks, *self.constrained] if metric in self.valid.get(t, {})]
        if shown:
            values = ", ".join(f"{t} {self.valid[t][metric]:.4f}" for t in shown)
            parts.append(f"validation {metric} {values}")
        if self.constrained and self.multipliers_at_end:
            values = ", ".join(f"{t} {v:.2g}" for t, v in self.multipliers_at_end.items())
            parts.append(f"multiplier {values}")
        return "; ".join(parts)

    def _selection(self, metric: str) -> str:
        step = self.selected_step
        selected = "kept its start" if step == 0 else f"selected step {step}"
        if not self.selected_feasible:
            selected += " (no candidate met every constraint: the least violating)"
        comparison = self.start_comparison
        if comparison is None:
            return selected
        if math.isnan(comparison.z):
            return f"{selected} (its best could not be compared with its start)"
        return (
            f"{selected} (its best {comparison.difference:+.4f} {metric} over its start, "
            f"{comparison.z:.1f} standard errors; {comparison.threshold:g} needed)"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRecord:
        """The inverse of `to_dict`.

        Example:
            >>> record = StageRecord(2, ["a"], [], 10, 0, True, {})
            >>> record.start_comparison = StartComparison(0.001, 0.001, 2.0, kept_start=True)
            >>> StageRecord.from_dict(record.to_dict()) == record
            True
        """
        data = dict(data)
        comparison = data.pop("start_comparison", None)
        if comparison is not None:
            data["start_comparison"] = StartComparison(**comparison)
        return cls(**data)


@dataclass
class FitResult:
    """What ``Trainer.fit`` returns (also written to ``metrics.json``)."""

    valid: Metrics
    test: Metrics
    stages: list[StageRecord]
    steps: int
    epochs: float
    wall_time_s: float
    run_dir: str | None = None
    selection_metric: str | None = None
    """The validation metric the stages selected by (``auc``, ``ndcg``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = [s.to_dict() for s in self.stages]
        return data


def describe_stages(stages: Sequence[StageRecord], metric: str) -> list[str]:
    """`StageRecord.describe` of each stage, in order (what ``nomoretuning train`` prints).

    Example:
        >>> joint = StageRecord(1, ["click", "like"], [], 80, 48, True,
        ...                     {"click": {"auc": 0.6468}, "like": {"auc": 0.6191}})
        >>> top = StageRecord(2, ["click"], [], 72, 0, True, {"click": {"auc": 0.6468}},
        ...                   start_comparison=StartComparison(0.0018, 0.0016, 2.0, True))
        >>> print("\\n".join(describe_stages([joint, top], "auc")))
        stage 1, click + like: 80 steps, selected step 48; validation auc click 0.6468, like 0.6191
        stage 2, click: 72 steps, kept its start (its best +0.0018 auc over its start, \
1.1 standard errors; 2 needed); validation auc click 0.6468
    """
    return [stage.describe(metric) for stage in stages]
