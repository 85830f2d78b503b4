"""Where a run is: the trainer's position and what it has recorded, saved in ``last.pt``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from nomoretuning.training.records import StageRecord

__all__ = ["OwnGenerator", "TrainerState", "restore_rng_state", "rng_state"]


@dataclass
class TrainerState:
    """The position of a run (stage, epoch, batch, steps) and the stages it has finished.

    Example:
        >>> state = TrainerState(global_step=7)
        >>> state.begin_stage()
        >>> restored = TrainerState()
        >>> restored.load_state_dict(state.state_dict())
        >>> restored.global_step, restored.stage_started
        (7, True)
    """

    stage_index: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    stage_step: int = 0
    stage_started: bool = False
    stop_stage: bool = False
    epochs_run: float = 0.0
    wall_time: float = 0.0
    stage_records: list[StageRecord] = field(default_factory=list)

    def begin_stage(self) -> None:
        """The position at the start of the running stage."""
        self.epoch = 0
        self.batch_in_epoch = 0
        self.stage_step = 0
        self.stop_stage = False
        self.stage_started = True

    def end_stage(self, record: StageRecord) -> None:
        self.stage_records.append(record)
        self.stage_index += 1
        self.stage_started = False

    def state_dict(self) -> dict[str, Any]:
        position = {k: v for k, v in asdict(self).items() if k != "stage_records"}
        return {
            "position": position,
            "stage_records": json.dumps([r.to_dict() for r in self.stage_records]),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        position = state["position"]
        self.stage_index = int(position["stage_index"])
        self.epoch = int(position["epoch"])
        self.batch_in_epoch = int(position["batch_in_epoch"])
        self.global_step = int(position["global_step"])
        self.stage_step = int(position["stage_step"])
        self.stage_started = bool(position["stage_started"])
        self.stop_stage = bool(position["stop_stage"])
        self.epochs_run = float(position["epochs_run"])
        self.wall_time = float(position["wall_time"])
        self.stage_records = [StageRecord.from_dict(r) for r in json.loads(state["stage_records"])]


@runtime_checkable
class OwnGenerator(Protocol):
    """Draws from a generator of its own, which a checkpoint keeps beside the global ones
    (`PairwiseObjective(seed=...)`'s pair sampler; None: it draws from torch's)."""

    @property
    def generator(self) -> torch.Generator | None: ...


def rng_state(owner: object = None) -> dict[str, Any]:
    """This process's random number generators: torch's, CUDA's when present, and ``owner``'s
    own when it is an `OwnGenerator` with one.

    Example:
        >>> from nomoretuning.training.objectives import PairwiseObjective
        >>> objective = PairwiseObjective(["pay"], max_pairs_per_group=2, seed=3)
        >>> saved = rng_state(objective)
        >>> first = torch.rand(2, generator=objective.generator)
        >>> restore_rng_state(saved, objective)
        >>> torch.equal(torch.rand(2, generator=objective.generator), first)
        True
    """
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if isinstance(owner, OwnGenerator) and owner.generator is not None:
        state["own"] = owner.generator.get_state()
    return state


def restore_rng_state(state: Mapping[str, Any], owner: object = None) -> None:
    """Puts back what `rng_state` returned (``owner``'s generator too, when it has one)."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if isinstance(owner, OwnGenerator) and owner.generator is not None and "own" in state:
        owner.generator.set_state(state["own"].cpu())
