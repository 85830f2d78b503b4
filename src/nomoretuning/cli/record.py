"""`RunRecord`: what one run reports, the entries of ``results.json`` and ``grid.json``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from nomoretuning.errors import ConfigError

__all__ = ["Metrics", "RunRecord"]

Metrics = dict[str, dict[str, float]]
"""``{task: {metric: value}}``, e.g. ``{"income": {"auc": 0.94, "logloss": 0.17}}``."""


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One run of a protocol. `to_dict` gives its JSON form, keys in this order; the optional
    fields (None) are left out.

    Attributes:
        model: the architecture (``single_task`` for the merged single-task runs of a comparison).
        method: the method's label (``nmt``, ``famo+nmt``, ``fixed``, ...).
        run: the Table 3 row (``pay+relevance``, ...); Table 3 only.
        tasks: the tasks trained, in priority order; Table 3 only.
        seed: the run's seed.
        test: metrics on the test split (Table 3: of every task of the protocol).
        valid: metrics on the validation split of the selected model.
        wall_time_s: training time in seconds.
        epochs: epochs trained (summed over the stages).
        steps: optimizer steps (summed over the stages).
        stages: the trainer's record of each stage; None for the merged single-task record
            (each task's run has its own ``metrics.json``).
        run_dir: the run directory.
        weights: the loss weights of a grid point; grid points only.

    Example:
        >>> record = RunRecord(model="mmoe", method="nmt", seed=0, test={}, valid={},
        ...                    wall_time_s=1.5, epochs=2.0, steps=40, stages=[], run_dir="r")
        >>> list(record.to_dict())
        ['model', 'method', 'seed', 'test', 'valid', 'wall_time_s', 'epochs', 'steps', 'stages', \
'run_dir']
        >>> RunRecord.from_dict(record.to_dict()) == record
        True
    """

    model: str
    method: str
    run: str | None = None
    tasks: list[str] | None = None
    seed: int
    test: Metrics
    valid: Metrics
    wall_time_s: float
    epochs: float
    steps: int
    stages: list[dict[str, Any]] | None = None
    run_dir: str
    weights: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as written to ``results.json`` (optional fields only when set)."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Reads a record of ``results.json`` back.

        Raises:
            ConfigError: a key that is not a record field, or a required field missing.
        """
        names = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"not a run record: unknown keys {unknown}")
        try:
            return cls(**data)
        except TypeError as error:  # a required field is missing
            raise ConfigError(f"not a run record: {error}") from None
