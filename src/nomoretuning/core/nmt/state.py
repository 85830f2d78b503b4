"""NMT's state: the running stage, the recorded bounds, each constraint's dual state and the
recent losses that track a stage's bound; saved in ``state_dict()``."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from nomoretuning.core.nmt.dual import MultiplierState
from nomoretuning.errors import ConfigError

__all__ = ["NMTSettings", "NMTState", "upgrade_inner_keys"]


@dataclass(frozen=True)
class NMTSettings:
    """The settings a saved NMT state only fits: priorities, schedule and dual rule.

    Example:
        >>> saved = NMTSettings((("a",), ("b",)), False, True, "R()").to_dict()
        >>> NMTSettings((("a",), ("b",)), False, True, "R()").check(saved)
        >>> NMTSettings((("a",), ("b",)), False, True, "S()").check(saved)
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: NMT state was saved with the dual rule R(), this NMT has S(): build it with the same dual= and dual_lr=
    """  # noqa: E501

    levels: tuple[tuple[str, ...], ...]
    refine: bool
    joint_start: bool
    dual: str
    """The rule's description (`nomoretuning.core.nmt.dual.describe_rule`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": [list(level) for level in self.levels],
            "refine": self.refine,
            "joint_start": self.joint_start,
            "dual": self.dual,
        }

    def check(self, data: Mapping[str, Any]) -> None:
        """Raises a `ConfigError` naming both when ``data`` was saved under other settings
        (states of 0.1 record no dual rule: any rule loads them)."""
        levels = tuple(tuple(level) for level in data["levels"])
        refine = bool(data.get("refine", False))
        joint = bool(data.get("joint_start", False))
        if levels != self.levels or refine != self.refine or joint != self.joint_start:
            raise ConfigError(
                f"NMT state was saved for priorities {[list(x) for x in levels]} (refine "
                f"{refine}, joint_start {joint}), this NMT has {[list(x) for x in self.levels]} "
                f"(refine {self.refine}, joint_start {self.joint_start})"
            )
        saved_rule = data.get("dual")
        if saved_rule is not None and saved_rule != self.dual:
            raise ConfigError(
                f"NMT state was saved with the dual rule {saved_rule}, this NMT has "
                f"{self.dual}: build it with the same dual= and dual_lr="
            )


@dataclass
class NMTState:
    """Everything NMT changes while it trains (its settings live on the NMT itself).

    Example:
        >>> state = NMTState(history=10)
        >>> state.bounds["a"] = 0.5
        >>> NMTState.from_dict(state.to_dict(), history=10).bounds
        {'a': 0.5}
    """

    history: int
    stage_index: int = 0
    finished: bool = False
    bounds: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    duals: dict[str, MultiplierState] = field(default_factory=dict)
    steps_in_stage: int = 0
    total_steps: int = 0
    steps_since_dual: int = 0
    recent: dict[str, deque[float]] = field(default_factory=dict)
    objective_history: deque[float] = field(default_factory=deque)

    def new_stage(self, tasks: tuple[str, ...], duals: dict[str, MultiplierState]) -> None:
        """Resets what belongs to one stage: its duals, step counts and recent losses."""
        self.duals = duals
        self.steps_in_stage = 0
        self.steps_since_dual = 0
        self.recent = {t: deque(maxlen=self.history) for t in tasks}
        self.objective_history = deque(maxlen=self.history)

    def to_dict(self) -> dict[str, Any]:
        duals = self.duals
        return {
            "stage_index": self.stage_index,
            "finished": self.finished,
            "bounds": dict(self.bounds),
            "baselines": dict(self.baselines),
            "multipliers": {t: s.multiplier for t, s in duals.items()},
            "integrals": {t: s.integral for t, s in duals.items()},
            "smoothed": {t: s.smoothed for t, s in duals.items() if s.smoothed is not None},
            "violations": {t: s.violation for t, s in duals.items() if s.violation is not None},
            "scales": {t: s.scale for t, s in duals.items() if s.scale is not None},
            "steps_in_stage": self.steps_in_stage,
            "total_steps": self.total_steps,
            "steps_since_dual": self.steps_since_dual,
            "recent": {t: list(v) for t, v in self.recent.items()},
            "objective_history": list(self.objective_history),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], history: int) -> NMTState:
        smoothed, violations = data["smoothed"], data["violations"]
        scales = data.get("scales", {})
        return cls(
            history=history,
            stage_index=int(data["stage_index"]),
            finished=bool(data["finished"]),
            bounds={k: float(v) for k, v in data["bounds"].items()},
            baselines={k: float(v) for k, v in data.get("baselines", {}).items()},
            duals={
                t: MultiplierState(
                    multiplier=float(value),
                    integral=float(data["integrals"][t]),
                    smoothed=float(smoothed[t]) if t in smoothed else None,
                    violation=float(violations[t]) if t in violations else None,
                    scale=float(scales[t]) if t in scales else None,
                )
                for t, value in data["multipliers"].items()
            },
            steps_in_stage=int(data["steps_in_stage"]),
            total_steps=int(data["total_steps"]),
            steps_since_dual=int(data.get("steps_since_dual", 0)),
            recent={
                t: deque((float(x) for x in v), maxlen=history) for t, v in data["recent"].items()
            },
            objective_history=deque((float(x) for x in data["objective_history"]), maxlen=history),
        )


def upgrade_inner_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """A load-state pre-hook of NMT: reads a state saved when NMT held one combiner, the running
    stage's (keys ``inner.*``, version 0.1), into that stage's entry of ``stage_combiners``;
    the other stages' combiners keep their own state.

    Example:
        >>> import nomoretuning as nt
        >>> nmt = nt.NMT(["a", "b"], combiner=lambda terms: nt.FAMO(terms))
        >>> nmt.next_stage()
        >>> saved = {  # as 0.1 saved it: the running stage's combiner under "inner."
        ...     k.replace("stage_combiners.1.", "inner."): v
        ...     for k, v in nmt.state_dict().items()
        ...     if not k.startswith("stage_combiners.") or k.startswith("stage_combiners.1.")
        ... }
        >>> "inner.logits" in saved
        True
        >>> fresh = nt.NMT(["a", "b"], combiner=lambda terms: nt.FAMO(terms))
        >>> fresh.load_state_dict(saved)
        <All keys matched successfully>
        >>> fresh.stage
        2
    """
    old = prefix + "inner."
    keys = [key for key in state_dict if key.startswith(old)]
    combiners = getattr(module, "stage_combiners", None)
    if not keys or not isinstance(combiners, nn.ModuleList):
        return
    extra = state_dict.get(prefix + "_extra_state")
    stage = int(extra["stage_index"]) if isinstance(extra, Mapping) else 0
    for key in keys:
        state_dict[f"{prefix}stage_combiners.{stage}.{key[len(old) :]}"] = state_dict.pop(key)
    for index, combiner in enumerate(combiners):
        if index != stage:
            for name, value in combiner.state_dict().items():
                state_dict.setdefault(f"{prefix}stage_combiners.{index}.{name}", value)
