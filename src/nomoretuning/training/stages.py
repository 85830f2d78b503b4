"""The trainer's view of a combiner's stages: NMT's own, or one stage of every task.

`StagePlan` is the only place that asks whether a combiner is staged, so the stage loop itself
has no branches on the kind of combiner.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from nomoretuning.core.base import Closure, LossCombiner, StagedCombiner, is_staged
from nomoretuning.errors import ConfigError

__all__ = ["StagePlan"]


class StagePlan:
    """Stages of ``combiner``: a `StagedCombiner` is trained stage by stage (never by name); any
    other combiner is one stage over all its tasks.

    Example:
        >>> import nomoretuning as nt
        >>> plan = StagePlan(nt.NMT(["a", "b"]))
        >>> plan.num_stages, plan.stage_tasks, plan.constrained_tasks
        (3, ('a', 'b'), ())
        >>> StagePlan(nt.EqualWeights(["a", "b"])).stage_tasks
        ('a', 'b')
    """

    def __init__(self, combiner: LossCombiner) -> None:
        self.combiner = combiner
        self.staged: StagedCombiner | None = combiner if is_staged(combiner) else None
        if self.staged is not None and self.staged.switch is not None:
            raise ConfigError(
                "the trainer ends stages by early stopping; build NMT without switch="
            )

    def check_fresh(self) -> None:
        """Refuses a staged combiner that has left its first stage: a new run starts at stage 1
        (a run continues from its checkpoint with ``fit(resume=True)``).

        Example:
            >>> import nomoretuning as nt
            >>> nmt = nt.NMT(["a", "b"])
            >>> nmt.next_stage()
            >>> StagePlan(nmt).check_fresh()
            Traceback (most recent call last):
            ...
            nomoretuning.errors.ConfigError: the NMT given to the trainer is at stage 2 of 3...
        """
        staged = self.staged
        if staged is not None and (staged.stage != 1 or staged.finished):
            where = (
                f"has finished all {staged.num_stages} stages"
                if staged.finished
                else f"is at stage {staged.stage} of {staged.num_stages}"
            )
            raise ConfigError(
                f"the NMT given to the trainer {where}; a new run starts at stage 1: pass a "
                "new NMT (or fit(resume=True) to continue a run)"
            )

    @property
    def num_stages(self) -> int:
        return self.staged.num_stages if self.staged is not None else 1

    @property
    def stage_tasks(self) -> tuple[str, ...]:
        """The tasks the running stage minimizes."""
        return tuple(self.staged.stage_tasks) if self.staged else tuple(self.combiner.tasks)

    @property
    def constrained_tasks(self) -> tuple[str, ...]:
        """The tasks held under their bounds in the running stage."""
        return tuple(self.staged.constrained_tasks) if self.staged else ()

    @property
    def other_tasks(self) -> tuple[str, ...]:
        """The tasks the running stage does not minimize, in priority order (the constrained
        ones first): the tie-break of `nomoretuning.training.selection.CandidateSelection.choose`.

        Example:
            >>> import nomoretuning as nt
            >>> plan = StagePlan(nt.NMT(["a", "b", "c"]))
            >>> plan.staged.next_stage(bound={})  # the joint start ends
            >>> plan.stage_tasks, plan.other_tasks
            (('a',), ('b', 'c'))
        """
        stage = set(self.stage_tasks)
        return tuple(t for t in self.combiner.tasks if t not in stage)

    @property
    def later_tasks(self) -> tuple[str, ...]:
        """The tasks whose stages come after the running one (neither minimized nor held).

        Example:
            >>> import nomoretuning as nt
            >>> plan = StagePlan(nt.NMT(["a", "b", "c"]))
            >>> plan.later_tasks  # the joint start minimizes every task
            ()
            >>> plan.staged.next_stage(bound={})
            >>> plan.later_tasks
            ('b', 'c')
        """
        held = set(self.stage_tasks) | set(self.constrained_tasks)
        return tuple(t for t in self.combiner.tasks if t not in held)

    @property
    def records_bound(self) -> bool:
        """Whether the running stage's end records a bound (a staged combiner's stage other than
        a joint start): only then does the trainer measure one."""
        return self.staged is not None and self.staged.records_bound

    @property
    def multipliers(self) -> dict[str, float]:
        return self.staged.multipliers if self.staged else {}

    @property
    def bounds(self) -> dict[str, float]:
        return self.staged.bounds if self.staged else {}

    def step(
        self, losses: Mapping[str, Tensor], closure: Closure | None, *, update_dual: bool
    ) -> None:
        """The combiner's post-step update; ``update_dual`` says whether these (training)
        losses drive a staged combiner's multipliers."""
        if self.staged is not None:
            self.staged.step(losses, closure=closure, update_dual=update_dual)
        else:
            self.combiner.step(losses, closure=closure)

    def next_stage(
        self, bounds: Mapping[str, float], baselines: Mapping[str, float] | None = None
    ) -> None:
        """Ends a staged combiner's running stage with the stage tasks' ``bounds`` (and the
        losses of a constant prediction on the same data, ``baselines``)."""
        if self.staged is not None:
            given = None if baselines is None else dict(baselines)
            self.staged.next_stage(bound=dict(bounds), baseline=given)
