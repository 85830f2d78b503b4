"""NMT: prioritized multi-task learning by the Lagrangian differential multiplier method.

Tasks are given by priority, highest first; a priority level may hold several tasks. Training runs
in stages. Stage 1 minimizes level 1. Stage k minimizes level k subject to
``L_j <= L_j* + eps_j`` for every task j of a higher level, through the re-scaled Lagrangian

    L~ = (L_k + sum_j lambda_j (L_j - L_j* - eps_j)) / (1 + sum_j lambda_j)

(gradient descent on the parameters) and projected gradient ascent on each multiplier,
``lambda_j <- max(0, lambda_j + dual_lr * g_j)`` with the raw, detached violation
``g_j = L_j - L_j* - eps_j`` (never the autograd derivative of L~, whose sign is wrong when the
constraint is violated). See ``docs/method.md`` for the composition with other combiners.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from nomoretuning import checks
from nomoretuning.core.base import Closure, LossCombiner, check_losses
from nomoretuning.core.nmt import constraint
from nomoretuning.core.nmt.dual import DualRule, MultiplierState, PIController, ProjectedAscent
from nomoretuning.core.nmt.levels import parse_level_weights, parse_priorities, parse_tolerances
from nomoretuning.core.switching import StageSwitch
from nomoretuning.core.weighting import EqualWeights
from nomoretuning.errors import ConfigError

__all__ = ["NMT"]

CombinerFactory = Callable[[Sequence[str]], LossCombiner]


class NMT(LossCombiner):
    """Staged, prioritized multi-task training with Lagrange multipliers (no loss weights).

    Args:
        priorities: tasks by priority, highest first. An entry may be a task name or a sequence
            of names that share one level (combined by ``combiner``, equal weights by default).
        tolerance: slack ``rho`` of each constraint, one float or a dict per task; relative to
            the bound by default (``eps_j = rho * |L_j*|``), absolute with
            ``tolerance_mode="absolute"``.
        tolerance_mode: ``"relative"`` (default) or ``"absolute"``.
        dual: multiplier update rule: ``"ascent"`` (projected gradient ascent, default) or
            ``"pi"`` (a PI controller on the violation, for damping oscillations); see
            `nomoretuning.core.nmt.dual`.
        dual_lr: step size of the multiplier update (default 100: with the default relative
            violation, an excess of 1 % over the bound, the size of the default tolerance, raises
            lambda by 1 per update).
        pi_gains: ``(kp, ki)`` of the PI controller: ``I <- max(0, I + dual_lr*ki*g)``,
            ``lambda = max(0, I + dual_lr*kp*g)``.
        smoothing: EMA coefficient in [0, 1) applied to the violation before the dual update
            (0 = no smoothing).
        violation: what the dual step adds: ``"relative"`` (default) divides the violation by
            ``|L_j*|`` so that ``dual_lr`` does not depend on the loss scale; ``"raw"`` uses
            ``L_j - L_j* - eps_j`` as is.
        initial_multiplier: ``lambda_0``, the value each multiplier starts a stage with.
        bound_window: how many recent training losses of the stage task estimate its bound.
        switch: optional rule (``Plateau``, ``StepBudget``) that ends a stage automatically
            inside ``step``; without it, call ``next_stage`` yourself.
        combiner: factory ``tasks -> LossCombiner`` building the combiner of each stage's terms
            (stage tasks and constrained tasks); NMT passes its Lagrangian weights as the
            combiner's prior. Default: ``EqualWeights`` (exactly the re-scaled Lagrangian).
        level_weights: relative weights of the tasks inside a level (default equal).

    Which data drives the dual step is the caller's explicit choice at each call:
    ``step(losses)`` updates the multipliers from the training losses it is given (the per-step
    regime of a user's own loop); ``step(losses, update_dual=False)`` leaves them alone, and
    ``update_multipliers(losses)`` takes one dual step from losses measured elsewhere, e.g. on
    held-out data (what the trainer does by default).

    Example:
        >>> import torch
        >>> import nomoretuning as nt
        >>> w = torch.zeros(1, requires_grad=True)
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> nmt = nt.NMT(["a", "b"], tolerance=0.1, dual_lr=1.0)  # full-batch toy: a gentler dual
        >>> def losses():
        ...     return {"a": ((w - 1) ** 2).sum() + 1, "b": ((w - 3) ** 2).sum()}
        >>> for stage_steps in (200, 200):
        ...     for _ in range(stage_steps):
        ...         l = losses()
        ...         loss = nmt(l)
        ...         opt.zero_grad(); loss.backward(); opt.step()
        ...         nmt.step(l)
        ...     nmt.next_stage()
        >>> nmt.finished, round(nmt.bounds["a"], 3)
        (True, 1.0)
        >>> round(float(w), 2)  # the constrained optimum 1 + sqrt(0.1)
        1.32
    """

    def __init__(
        self,
        priorities: Sequence[str | Sequence[str]],
        tolerance: float | Mapping[str, float] = 0.01,
        tolerance_mode: Literal["relative", "absolute"] = "relative",
        dual: Literal["ascent", "pi"] = "ascent",
        dual_lr: float = 100.0,
        pi_gains: tuple[float, float] = (1.0, 1.0),
        smoothing: float = 0.0,
        violation: Literal["relative", "raw"] = "relative",
        initial_multiplier: float = 0.0,
        bound_window: int = 100,
        switch: StageSwitch | None = None,
        combiner: CombinerFactory | None = None,
        level_weights: Mapping[str, float] | None = None,
    ) -> None:
        levels = parse_priorities(priorities)
        super().__init__([t for level in levels for t in level])
        self.levels = levels
        self.tolerance_mode = checks.one_of(
            tolerance_mode, "NMT: tolerance_mode", constraint.TOLERANCE_MODES
        )
        self.tolerances = parse_tolerances(tolerance, self.tasks, default=0.01)
        self.dual = checks.one_of(dual, "NMT: dual", ("ascent", "pi"))
        self.dual_lr = checks.positive_number(dual_lr, "NMT: dual_lr")
        if len(pi_gains) != 2 or not all(math.isfinite(g) and g >= 0 for g in pi_gains):
            raise ConfigError(f"NMT: pi_gains must be two numbers >= 0 (kp, ki), got {pi_gains!r}")
        self.pi_gains = (float(pi_gains[0]), float(pi_gains[1]))
        self.smoothing = checks.fraction(smoothing, "NMT: smoothing")
        self.violation = checks.one_of(violation, "NMT: violation", ("relative", "raw"))
        self.initial_multiplier = checks.positive_number(
            initial_multiplier, "NMT: initial_multiplier", allow_zero=True
        )
        self.bound_window = checks.positive_int(bound_window, "NMT: bound_window")
        if switch is not None and not isinstance(switch, StageSwitch):
            raise ConfigError(
                f"NMT: switch must be a StageSwitch (Plateau, StepBudget), got {switch!r}"
            )
        self.switch = switch
        self._combiner_factory: CombinerFactory = combiner or EqualWeights
        self.level_weights = parse_level_weights(level_weights, levels)
        self.rule: DualRule = (
            ProjectedAscent(self.dual_lr)
            if self.dual == "ascent"
            else PIController(self.dual_lr, kp=self.pi_gains[0], ki=self.pi_gains[1])
        )

        # Explicit state; all of it goes into state_dict() (see get_extra_state).
        self._stage_index = 0
        self._finished = False
        self._bounds: dict[str, float] = {}
        self._duals: dict[str, MultiplierState] = {}
        self._steps_in_stage = 0
        self._total_steps = 0
        history = max(bound_window, switch.history_needed if switch else 1)
        self._recent: dict[str, deque[float]] = {}
        self._objective_history: deque[float] = deque(maxlen=history)
        self._history_len = history
        self.inner: LossCombiner = self._build_inner()
        self._reset_stage_state()

    # ----------------------------------------------------------------------------- properties
    @property
    def stage(self) -> int:
        """The running stage, 1-based (stays at the last stage once ``finished``)."""
        return self._stage_index + 1

    @property
    def num_stages(self) -> int:
        return len(self.levels)

    @property
    def stage_tasks(self) -> tuple[str, ...]:
        """The tasks minimized in the running stage."""
        return self.levels[self._stage_index]

    @property
    def task(self) -> str:
        """Name of the running stage's objective (tasks of a shared level joined by '+')."""
        return "+".join(self.stage_tasks)

    @property
    def constrained_tasks(self) -> tuple[str, ...]:
        """Tasks of higher levels, held under their bounds in the running stage."""
        return tuple(t for level in self.levels[: self._stage_index] for t in level)

    @property
    def finished(self) -> bool:
        """True once the last stage has ended (``next_stage`` called in the last stage)."""
        return self._finished

    @property
    def bounds(self) -> dict[str, float]:
        """Recorded bounds ``L_j*`` of the tasks whose stage has ended."""
        return dict(self._bounds)

    @property
    def multipliers(self) -> dict[str, float]:
        """Current Lagrange multipliers, one per constrained task."""
        return {t: state.multiplier for t, state in self._duals.items()}

    @property
    def violations(self) -> dict[str, float]:
        """Violations ``L_j - L_j* - eps_j`` seen by the last dual step (positive = violated)."""
        return {t: s.violation for t, s in self._duals.items() if s.violation is not None}

    @property
    def slacks(self) -> dict[str, float]:
        """The tolerance ``eps_j`` of each recorded bound."""
        return {t: self.slack(t) for t in self._bounds}

    @property
    def bound_estimate(self) -> dict[str, float]:
        """Running estimate of the stage tasks' bounds: mean of the last ``bound_window`` losses."""
        estimate = {}
        for task in self._recent:
            window = list(self._recent[task])[-self.bound_window :]
            if window:
                estimate[task] = sum(window) / len(window)
        return estimate

    @property
    def steps_in_stage(self) -> int:
        return self._steps_in_stage

    @property
    def term_weights(self) -> dict[str, float]:
        """Weights of the stage's terms: ``1/(1+sum lambda)`` for the objective, split by level
        weights, and ``lambda_j/(1+sum lambda)`` per constraint. They sum to 1."""
        multipliers = self.multipliers
        total = 1.0 + sum(multipliers.values())
        weights = {t: self.level_weights[t] / total for t in self.stage_tasks}
        weights.update({t: lam / total for t, lam in multipliers.items()})
        return weights

    @property
    def task_weights(self) -> dict[str, float]:
        """The term weights (for logging)."""
        return self.term_weights

    def slack(self, task: str, bound: float | None = None) -> float:
        """The slack ``eps_j`` of ``task``'s constraint around ``bound`` (default: its recorded
        bound ``L_j*``), by NMT's tolerance and tolerance mode.

        Example:
            >>> nmt = NMT(["a", "b"], tolerance=0.05)
            >>> nmt.slack("a", bound=2.0)
            0.1
        """
        if task not in self.tolerances:
            raise ConfigError(f"NMT.slack(): unknown task {task!r}; tasks: {list(self.tasks)}")
        if bound is None:
            if task not in self._bounds:
                raise ConfigError(f"NMT.slack(): task {task!r} has no recorded bound yet")
            bound = self._bounds[task]
        return constraint.slack(bound, self.tolerances[task], self.tolerance_mode)

    # ------------------------------------------------------------------------- the protocol
    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        """The running stage's re-scaled Lagrangian (any extra task losses are ignored).

        ``losses`` must hold every task named in the priorities.
        """
        if prior is not None:
            raise ConfigError("NMT does not take a prior: it is the outer method")
        self._check_running("forward")
        check_losses(losses, self.tasks)
        weights = self.term_weights
        terms = {t: losses[t] for t in self.inner.tasks}
        value = self.inner(terms, prior=weights)
        offset = sum(weights[t] * (self._bounds[t] + self.slack(t)) for t in self._duals)
        return value - offset if offset else value

    def step(
        self,
        losses: Mapping[str, Tensor],
        closure: Closure | None = None,
        *,
        update_dual: bool = True,
    ) -> None:
        """After the optimizer step: dual step, bound tracking, and the automatic stage switch.

        ``losses`` are the values the last ``forward`` saw (they may be attached or detached).
        ``closure`` is passed on to the stage combiner (FAMO needs it). ``update_dual=False``
        leaves the multipliers to ``update_multipliers`` (constraints measured elsewhere).
        """
        self._check_running("step")
        check_losses(losses, self.tasks)
        names = list(self.tasks)
        values = dict(
            zip(
                names,
                torch.stack([losses[t].detach().double() for t in names]).tolist(),
                strict=True,
            )
        )
        if update_dual:
            self._dual_update(values)
        inner_closure = None
        if closure is not None:
            terms = self.inner.tasks

            def inner_closure() -> Mapping[str, Tensor]:
                new = closure()
                return {t: new[t] for t in terms}

        self.inner.step({t: losses[t] for t in self.inner.tasks}, closure=inner_closure)
        for task in self.stage_tasks:
            self._recent[task].append(values[task])
        self._objective_history.append(
            sum(self.level_weights[t] * values[t] for t in self.stage_tasks)
        )
        self._steps_in_stage += 1
        self._total_steps += 1
        if self.switch is not None and self.switch.should_switch(
            list(self._objective_history), self._steps_in_stage
        ):
            self.next_stage()

    def update_multipliers(self, losses: Mapping[str, Tensor | float]) -> None:
        """One dual step from the given losses of the constrained tasks, e.g. measured on
        held-out data (pair it with ``step(..., update_dual=False)``).

        Example:
            >>> nmt = NMT(["a", "b"], dual_lr=1.0)
            >>> nmt.next_stage(bound=1.0)
            >>> nmt.update_multipliers({"a": 1.5})
            >>> round(nmt.multipliers["a"], 2)
            0.49
        """
        self._check_running("update_multipliers")
        values: dict[str, float] = {}
        for task in self._duals:
            if task not in losses:
                raise ConfigError(
                    f"NMT.update_multipliers(): missing loss of constrained task {task!r}"
                )
            value = float(losses[task])
            if not math.isfinite(value):
                raise ConfigError(f"NMT.update_multipliers(): loss of task {task!r} is not finite")
            values[task] = value
        self._dual_update(values)

    def next_stage(self, bound: float | Mapping[str, float] | None = None) -> None:
        """Ends the running stage: records its bound(s) and starts the next stage.

        Args:
            bound: the bound ``L*`` of the stage task: a float (single-task level), a dict per task
                of the level, or None for the tracked estimate (mean of recent training losses).
                Measure it the way the constraint is evaluated in training (same mode, reduction
                and data), or the constraint is infeasible by construction.
        """
        self._check_running("next_stage")
        new_bounds = self._resolve_bound(bound)
        self._bounds.update(new_bounds)
        if self._stage_index == len(self.levels) - 1:
            self._finished = True
            return
        self._stage_index += 1
        self._reset_stage_state()
        self.inner = self._build_inner()

    # ------------------------------------------------------------------------------ state
    def get_extra_state(self) -> dict[str, Any]:
        duals = self._duals
        return {
            "levels": [list(level) for level in self.levels],
            "stage_index": self._stage_index,
            "finished": self._finished,
            "bounds": dict(self._bounds),
            "multipliers": {t: s.multiplier for t, s in duals.items()},
            "integrals": {t: s.integral for t, s in duals.items()},
            "smoothed": {t: s.smoothed for t, s in duals.items() if s.smoothed is not None},
            "violations": {t: s.violation for t, s in duals.items() if s.violation is not None},
            "steps_in_stage": self._steps_in_stage,
            "total_steps": self._total_steps,
            "recent": {t: list(v) for t, v in self._recent.items()},
            "objective_history": list(self._objective_history),
        }

    def set_extra_state(self, state: Any) -> None:
        levels = tuple(tuple(level) for level in state["levels"])
        if levels != self.levels:
            raise ConfigError(
                f"NMT state was saved for priorities {[list(x) for x in levels]}, "
                f"this NMT has {[list(x) for x in self.levels]}"
            )
        self._stage_index = int(state["stage_index"])
        self._finished = bool(state["finished"])
        self._bounds = {k: float(v) for k, v in state["bounds"].items()}
        smoothed, violations = state["smoothed"], state["violations"]
        self._duals = {
            t: MultiplierState(
                multiplier=float(value),
                integral=float(state["integrals"][t]),
                smoothed=float(smoothed[t]) if t in smoothed else None,
                violation=float(violations[t]) if t in violations else None,
            )
            for t, value in state["multipliers"].items()
        }
        self._steps_in_stage = int(state["steps_in_stage"])
        self._total_steps = int(state["total_steps"])
        self._recent = {
            t: deque((float(x) for x in state["recent"].get(t, [])), maxlen=self._history_len)
            for t in self.stage_tasks
        }
        self._objective_history = deque(
            (float(x) for x in state["objective_history"]), maxlen=self._history_len
        )
        # Rebuild the stage combiner so that its own tensors (loaded next by torch) fit.
        self.inner = self._build_inner()

    def extra_repr(self) -> str:
        levels = [list(level) if len(level) > 1 else level[0] for level in self.levels]
        return (
            f"priorities={levels}, tolerance={self.tolerances}, mode={self.tolerance_mode}, "
            f"dual={self.dual}, dual_lr={self.dual_lr}, stage={self.stage}"
        )

    # ---------------------------------------------------------------------------- helpers
    def _check_running(self, what: str) -> None:
        if self._finished:
            raise RuntimeError(
                f"NMT.{what}() called after the last stage finished (all {len(self.levels)} "
                f"stages done); build a new NMT or load an earlier state to keep training"
            )

    def _dual_update(self, values: Mapping[str, float]) -> None:
        for task, state in self._duals.items():
            bound = self._bounds[task]
            raw = constraint.violation(values[task], bound, self.slack(task))
            state.violation = raw
            error = (
                constraint.relative_to_bound(raw, bound) if self.violation == "relative" else raw
            )
            if self.smoothing > 0 and state.smoothed is not None:
                error = self.smoothing * state.smoothed + (1 - self.smoothing) * error
            state.smoothed = error
            self.rule.update(state, error)

    def _resolve_bound(self, bound: float | Mapping[str, float] | None) -> dict[str, float]:
        tasks = self.stage_tasks
        if bound is None:
            estimate = self.bound_estimate
            if len(estimate) < len(tasks):
                raise RuntimeError(
                    f"NMT.next_stage(): no training loss recorded in stage {self.stage} "
                    f"({self.task!r}); call step() first or pass bound="
                )
            resolved = estimate
        elif isinstance(bound, Mapping):
            missing = [t for t in tasks if t not in bound]
            unknown = [t for t in bound if t not in tasks]
            if missing or unknown:
                raise ConfigError(
                    f"NMT.next_stage(): bound must name exactly the stage tasks {list(tasks)}, "
                    f"got {sorted(bound)}"
                )
            resolved = {t: float(bound[t]) for t in tasks}
        else:
            if len(tasks) > 1:
                raise ConfigError(
                    f"NMT.next_stage(): stage {self.stage} has tasks {list(tasks)}; "
                    f"pass bound as a dict per task"
                )
            resolved = {tasks[0]: float(bound)}
        for task, value in resolved.items():
            if not math.isfinite(value):
                raise ConfigError(
                    f"NMT.next_stage(): bound of task {task!r} is not finite: {value}"
                )
        return resolved

    def _reset_stage_state(self) -> None:
        start = self.initial_multiplier
        self._duals = {
            t: MultiplierState(multiplier=start, integral=start) for t in self.constrained_tasks
        }
        self._steps_in_stage = 0
        self._recent = {t: deque(maxlen=self._history_len) for t in self.stage_tasks}
        self._objective_history = deque(maxlen=self._history_len)

    def _build_inner(self) -> LossCombiner:
        terms = tuple(self.stage_tasks) + self.constrained_tasks
        inner = self._combiner_factory(terms)
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
