"""NMT: prioritized multi-task learning by the Lagrangian differential multiplier method.

Tasks are given by priority, highest first; a priority level may hold several tasks. Training runs
in stages. By default a first stage trains every task together (equal weights), so that the top
task's own stage starts from what all the tasks teach the shared layers; then stage k minimizes
level k subject to ``L_j <= L_j* + eps_j`` for every task j of a higher level, through the
re-scaled Lagrangian

    L~ = (L_k + sum_j lambda_j (L_j - L_j* - eps_j)) / (1 + sum_j lambda_j)

(gradient descent on the parameters) and projected ascent on each multiplier from the raw,
detached violation ``g_j = L_j - L_j* - eps_j`` (never the autograd derivative of L~, whose sign
is wrong when the constraint is violated), in units of the slack, integrated over primal steps
and taken in the log domain (`nomoretuning.core.nmt.dual.MultiplicativeAscent`, the default).
See ``docs/method.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from nomoretuning import checks
from nomoretuning.core.base import Closure, LossCombiner, check_losses
from nomoretuning.core.nmt import constraint
from nomoretuning.core.nmt.dual import DualRule, build_rule, describe_rule
from nomoretuning.core.nmt.levels import (
    number,
    observed_losses,
    parse_level_weights,
    parse_priorities,
    parse_tolerances,
    resolve_values,
    slack_share,
    stage_combiner,
    stage_schedule,
)
from nomoretuning.core.nmt.state import NMTSettings, NMTState, upgrade_inner_keys
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
        tolerance: slack ``rho`` of each constraint, one float or a dict per task.
        tolerance_mode: how ``rho`` becomes the slack ``eps_j`` (`constraint.slack`):
            ``"reducible"`` (default): ``rho * min(|L_j*|, B_j - L_j*)`` when the baseline loss
            ``B_j`` of a constant prediction is given to ``next_stage`` (the trainer does) and
            is above the bound; ``rho * |L_j*|`` otherwise (so a task that learned nothing
            gets the relative slack); ``"relative"``: ``rho * |L_j*|``; ``"absolute"``: ``rho``.
        dual: the multiplier update rule (`nomoretuning.core.nmt.dual`): ``"multiplicative"``
            (default: log-domain ascent on the violation in units of the slack, in multiplier
            units of the stage objective's loss over the bound, integrated over primal steps;
            the same dynamics at any loss scale or update cadence, and a loop gain that does not
            shrink as a small tolerance makes ``lambda*`` large), ``"scaled"`` (the same, additive),
            ``"ascent"`` (the paper's projected gradient ascent), ``"pi"`` (a PI controller), or a
            rule object.
        dual_lr: the rule's rate (None: its default; 0.01 for ``"multiplicative"`` and
            ``"scaled"``, 100 for ``"ascent"`` and ``"pi"``, where with the relative violation an
            excess of 1 % over the bound raises lambda by 1 per update).
        pi_gains: ``(kp, ki)`` of ``"pi"``: ``I <- max(0, I + dual_lr*ki*g)``,
            ``lambda = max(0, I + dual_lr*kp*g)``.
        smoothing: for ``"ascent"`` and ``"pi"``: EMA coefficient in [0, 1) of the violation.
        violation: for ``"ascent"`` and ``"pi"``: ``"relative"`` (default) divides the violation
            by ``|L_j*|``; ``"raw"`` uses ``L_j - L_j* - eps_j`` as is.
        initial_multiplier: ``lambda_0``, the value each multiplier starts a stage with.
        bound_window: how many recent training losses of the stage task estimate its bound.
        switch: optional rule (``Plateau``, ``StepBudget``) that ends a stage automatically
            inside ``step``; without it, call ``next_stage`` yourself.
        combiner: factory ``tasks -> LossCombiner`` building the combiner of each stage's terms
            (stage tasks and constrained tasks); NMT passes its Lagrangian weights as the
            combiner's prior. Default: ``EqualWeights`` (exactly the re-scaled Lagrangian).
        level_weights: relative weights of the tasks inside a level (default equal).
        refine: after the last level, one more stage minimizes the top level under every lower
            level's recorded bound (`nomoretuning.core.nmt.levels.stage_schedule`).
        joint_start: a first stage trains every task together with equal weights
            (`nomoretuning.core.nmt.levels.stage_schedule`).
        target: the multipliers' set point as a fraction of the slack: they hold ``L_j`` at
            ``L_j* + target * eps_j`` on average, so that the fluctuations of training stay inside
            the tolerance ``L_j <= L_j* + eps_j`` (1: the set point is the bound itself).
        spread_slack: with three levels or more, the stages below a task release its slack in
            equal steps (`nomoretuning.core.nmt.levels.slack_share`), so that the first of them
            cannot spend it all; False: every one of them may spend all of it (the paper).

    Which data drives the dual step is the caller's explicit choice at each call:
    ``step(losses)`` updates the multipliers from the training losses it is given (the per-step
    regime of a user's own loop); ``step(losses, update_dual=False)`` leaves them alone, and
    ``update_multipliers(losses)`` takes one dual step from losses measured elsewhere, e.g. on
    held-out data (what the trainer does with ``constraints="valid"``; by default it takes the
    per-step dual steps from the training losses, as a user's own loop does).

    Example:
        >>> import torch
        >>> import nomoretuning as nt
        >>> w = torch.zeros(1, requires_grad=True)
        >>> opt = torch.optim.SGD([w], lr=0.1)
        >>> nmt = nt.NMT(["a", "b"], tolerance=0.1)
        >>> def losses():
        ...     return {"a": ((w - 1) ** 2).sum() + 1, "b": ((w - 3) ** 2).sum()}
        >>> nmt.num_stages  # a joint start (every task, equal weights), then one stage per level
        3
        >>> while not nmt.finished:
        ...     for _ in range(2000):
        ...         l = losses()
        ...         loss = nmt(l)
        ...         opt.zero_grad(); loss.backward(); opt.step()
        ...         nmt.step(l)
        ...     nmt.next_stage()
        >>> nmt.finished, round(nmt.bounds["a"], 3)
        (True, 1.0)
        >>> round(float(w.detach()), 2)  # the optimum with L_a at its set point: 1 + sqrt(0.05)
        1.22
    """

    def __init__(
        self,
        priorities: Sequence[str | Sequence[str]],
        tolerance: float | Mapping[str, float] = 0.005,
        tolerance_mode: Literal["reducible", "relative", "absolute"] = "reducible",
        dual: str | DualRule = "multiplicative",
        dual_lr: float | None = None,
        pi_gains: tuple[float, float] = (1.0, 1.0),
        smoothing: float = 0.0,
        violation: Literal["relative", "raw"] = "relative",
        initial_multiplier: float = 0.0,
        bound_window: int = 100,
        switch: StageSwitch | None = None,
        combiner: CombinerFactory | None = None,
        level_weights: Mapping[str, float] | None = None,
        refine: bool = False,
        target: float = 0.5,
        joint_start: bool = True,
        spread_slack: bool = True,
    ) -> None:
        levels = parse_priorities(priorities)
        super().__init__([t for level in levels for t in level])
        self.levels = levels
        self.refine = checks.boolean(refine, "NMT: refine")
        self.joint_start = checks.boolean(joint_start, "NMT: joint_start")
        self.spread_slack = checks.boolean(spread_slack, "NMT: spread_slack")
        self.schedule = stage_schedule(levels, refine, joint_start)
        self.tolerance_mode = checks.one_of(
            tolerance_mode, "NMT: tolerance_mode", constraint.TOLERANCE_MODES
        )
        self.tolerances = parse_tolerances(tolerance, self.tasks, default=0.005)
        self.rule: DualRule = build_rule(dual, dual_lr, pi_gains, smoothing, violation)
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
        self.target = checks.fraction(target, "NMT: target", allow_zero=False, allow_one=True)
        # Everything that changes while training; all of it goes into state_dict().
        self._state = NMTState(history=max(bound_window, switch.history_needed if switch else 1))
        # Every stage's combiner, built now: one optimizer over nmt.parameters() holds them all.
        self.stage_combiners = torch.nn.ModuleList(
            stage_combiner(self._combiner_factory, s) for s in self.schedule
        )
        self._register_load_state_dict_pre_hook(upgrade_inner_keys, with_module=True)  # 0.1's
        self._start_stage()

    @property
    def stage(self) -> int:
        """The running stage, 1-based (stays at the last stage once ``finished``)."""
        return self._state.stage_index + 1

    @property
    def num_stages(self) -> int:
        return len(self.schedule)

    @property
    def records_bound(self) -> bool:
        """Whether `next_stage` records the running stage's bound: every stage but a joint start
        (its bound and baseline arguments are ignored, so callers need not measure them).

        Example:
            >>> from nomoretuning import NMT
            >>> nmt = NMT(["a", "b"])
            >>> nmt.records_bound, nmt.next_stage(), nmt.records_bound
            (False, None, True)
        """
        return not self._joint_stage

    @property
    def _joint_stage(self) -> bool:
        """Whether the running stage is the joint start."""
        return self.joint_start and self._state.stage_index == 0 and len(self.levels) > 1

    @property
    def inner(self) -> LossCombiner:
        """The running stage's combiner of its terms (``combiner``'s, one per stage)."""
        inner = self.stage_combiners[self._state.stage_index]
        assert isinstance(inner, LossCombiner)
        return inner

    @property
    def stage_tasks(self) -> tuple[str, ...]:
        """The tasks minimized in the running stage."""
        return self.schedule[self._state.stage_index].tasks

    @property
    def task(self) -> str:
        """Name of the running stage's objective (tasks of a shared level joined by '+')."""
        return "+".join(self.stage_tasks)

    @property
    def constrained_tasks(self) -> tuple[str, ...]:
        """The tasks held under their bounds in the running stage."""
        return self.schedule[self._state.stage_index].constrained

    @property
    def finished(self) -> bool:
        """True once the last stage has ended (``next_stage`` called in the last stage)."""
        return self._state.finished

    @property
    def bounds(self) -> dict[str, float]:
        """Recorded bounds ``L_j*`` of the tasks whose stage has ended."""
        return dict(self._state.bounds)

    @property
    def multipliers(self) -> dict[str, float]:
        """Current Lagrange multipliers, one per constrained task."""
        return {t: state.multiplier for t, state in self._state.duals.items()}

    @property
    def violations(self) -> dict[str, float]:
        """Violations ``L_j - L_j* - eps_j`` seen by the last dual step (positive = violated)."""
        duals = self._state.duals
        return {t: s.violation for t, s in duals.items() if s.violation is not None}

    @property
    def slacks(self) -> dict[str, float]:
        """The slack ``eps_j`` of each recorded bound (`slack`: the running stage's share)."""
        return {t: self.slack(t) for t in self._state.bounds}

    @property
    def bound_estimate(self) -> dict[str, float]:
        """Running estimate of the stage tasks' bounds: mean of the last ``bound_window`` losses."""
        estimate = {}
        for task, recent in self._state.recent.items():
            window = list(recent)[-self.bound_window :]
            if window:
                estimate[task] = sum(window) / len(window)
        return estimate

    @property
    def steps_in_stage(self) -> int:
        return self._state.steps_in_stage

    @property
    def term_weights(self) -> dict[str, float]:
        """Weights of the stage's terms: ``1/(1+sum lambda)`` for the objective, split by level
        weights, and ``lambda_j/(1+sum lambda)`` per constraint. They sum to 1."""
        multipliers = self.multipliers
        total = 1.0 + sum(multipliers.values())
        weights = {t: w / total for t, w in self._objective_weights().items()}
        weights.update({t: lam / total for t, lam in multipliers.items()})
        return weights

    @property
    def task_weights(self) -> dict[str, float]:
        """The term weights (for logging)."""
        return self.term_weights

    def slack(self, task: str, bound: float | None = None) -> float:
        """The slack ``eps_j`` of ``task``'s constraint around ``bound`` (default: its recorded
        bound ``L_j*``), by NMT's tolerance, tolerance mode and the task's recorded baseline, and
        with ``spread_slack`` the running stage's share of it.

        Example:
            >>> from nomoretuning import NMT
            >>> nmt = NMT(["a", "b"], tolerance=0.05)
            >>> nmt.slack("a", bound=2.0)
            0.1
        """
        if task not in self.tolerances:
            raise ConfigError(f"NMT.slack(): unknown task {task!r}; tasks: {list(self.tasks)}")
        if bound is None:
            if task not in self._state.bounds:
                raise ConfigError(f"NMT.slack(): task {task!r} has no recorded bound yet")
            bound = self._state.bounds[task]
        bound = number(bound, "bound", task, "NMT.slack()")
        baseline = self._state.baselines.get(task)
        full = constraint.slack(bound, self.tolerances[task], self.tolerance_mode, baseline)
        if not self.spread_slack:
            return full
        return full * slack_share(self.levels, self.schedule[self._state.stage_index], task)

    # ------------------------------------------------------------------------- the protocol
    def forward(
        self, losses: Mapping[str, Tensor], prior: Mapping[str, float] | None = None
    ) -> Tensor:
        """The running stage's re-scaled Lagrangian.

        ``losses`` must hold every task named in the priorities, and no other (a loss of an
        unknown task is refused, so that a misspelt name is not silently left out).
        """
        if prior is not None:
            raise ConfigError("NMT does not take a prior: it is the outer method")
        self._check_running("forward")
        check_losses(losses, self.tasks)
        weights = self.term_weights
        terms = {t: losses[t] for t in self.inner.tasks}
        value = self.inner(terms, prior=weights)
        bounds = self._state.bounds
        offset = sum(weights[t] * (bounds[t] + self.slack(t)) for t in self._state.duals)
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
        if closure is None and self.inner.needs_closure:  # before anything moves
            raise ConfigError(
                f"NMT.step(): the stage combiner {type(self.inner).__name__} needs closure=...: "
                "the task losses recomputed on the same batch after the optimizer step"
            )
        state = self._state
        names = list(self.tasks)
        values = dict(
            zip(
                names,
                torch.stack([losses[t].detach().double() for t in names]).tolist(),
                strict=True,
            )
        )
        state.steps_since_dual += 1
        if state.steps_in_stage == 0:
            self._set_scales(values)
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
            state.recent[task].append(values[task])
        state.objective_history.append(
            sum(w * values[t] for t, w in self._objective_weights().items())
        )
        state.steps_in_stage += 1
        state.total_steps += 1
        if self.switch is not None and self.switch.should_switch(
            list(state.objective_history), state.steps_in_stage
        ):
            self.next_stage()

    def update_multipliers(
        self, losses: Mapping[str, Tensor | float], steps: int | None = None
    ) -> None:
        """One dual step from the given losses of the constrained tasks, e.g. measured on
        held-out data (pair it with ``step(..., update_dual=False)``). ``steps``: the primal
        steps this observation stands for (default: those since the previous dual step).

        Example:
            >>> from nomoretuning import NMT
            >>> nmt = NMT(["a", "b"], dual="ascent", dual_lr=1.0, joint_start=False)
            >>> nmt.next_stage(bound=1.0)
            >>> nmt.update_multipliers({"a": 1.5})
            >>> round(nmt.multipliers["a"], 2)  # 1.5 - 1 - target * 0.005
            0.5
        """
        self._check_running("update_multipliers")
        checks.optional_positive_int(steps, "NMT.update_multipliers(): steps")
        values = observed_losses(losses, self.tasks, tuple(self._state.duals))
        self._dual_update(values, steps)

    def next_stage(
        self,
        bound: float | Mapping[str, float] | None = None,
        baseline: float | Mapping[str, float] | None = None,
    ) -> None:
        """Ends the running stage: records its bound(s) and starts the next stage.

        Args:
            bound: the bound ``L*`` of the stage task: a float (single-task level), a dict per task
                of the level, or None for the tracked estimate (mean of recent training losses).
                Measure it the way the constraint is evaluated in training (same mode, reduction
                and data), or the constraint is infeasible by construction.
            baseline: optionally, the loss of the best constant prediction on the same data (a
                float or a dict per task), for ``tolerance_mode="reducible"``.
        """
        self._check_running("next_stage")
        state = self._state
        tasks = self.stage_tasks
        if self.records_bound:  # a joint start's losses bound nothing: each level's stage does
            state.bounds.update(
                resolve_values("bound", bound, tasks, self.stage, self.bound_estimate)
            )
            if baseline is not None:
                state.baselines.update(resolve_values("baseline", baseline, tasks, self.stage))
        if state.stage_index == len(self.schedule) - 1:
            state.finished = True
            return
        state.stage_index += 1
        self._start_stage()

    # ------------------------------------------------------------------------------ state
    def get_extra_state(self) -> dict[str, Any]:
        return {**self._settings().to_dict(), **self._state.to_dict()}

    def _settings(self) -> NMTSettings:
        return NMTSettings(self.levels, self.refine, self.joint_start, describe_rule(self.rule))

    def set_extra_state(self, state: Any) -> None:
        self._settings().check(state)
        self._state = NMTState.from_dict(state, history=self._state.history)

    def extra_repr(self) -> str:
        levels = [list(level) if len(level) > 1 else level[0] for level in self.levels]
        return (
            f"priorities={levels}, tolerance={self.tolerances}, mode={self.tolerance_mode}, "
            f"dual={self.rule}, stage={self.stage}"
        )

    # ---------------------------------------------------------------------------- helpers
    def _check_running(self, what: str) -> None:
        if self._state.finished:
            raise RuntimeError(
                f"NMT.{what}() called after the last stage finished (all {len(self.schedule)} "
                f"stages done); build a new NMT or load an earlier state to keep training"
            )

    def _dual_update(self, values: Mapping[str, float], steps: int | None = None) -> None:
        state = self._state
        span = max(1, state.steps_since_dual if steps is None else int(steps))
        for task, dual in state.duals.items():
            bound, slack = state.bounds[task], self.slack(task)
            dual.violation = constraint.violation(values[task], bound, slack)
            above_target = constraint.violation(values[task], bound, self.target * slack)
            self.rule.update(dual, above_target, slack, bound, span)
        state.steps_since_dual = 0

    def _objective_weights(self) -> dict[str, float]:
        """The stage tasks' weights in its objective, summing to 1 (level weights inside a level;
        every task alike in a joint stage)."""
        raw = {t: 1.0 if self._joint_stage else self.level_weights[t] for t in self.stage_tasks}
        total = sum(raw.values())
        return {t: w / total for t, w in raw.items()}

    def _set_scales(self, values: Mapping[str, float]) -> None:
        """Each constraint's natural unit: the stage objective's loss at the stage's first step
        over the constrained task's bound (used by `ScaledAscent`)."""
        objective = abs(sum(w * values[t] for t, w in self._objective_weights().items()))
        for task, dual in self._state.duals.items():
            bound = abs(self._state.bounds[task])
            scale = max(objective / bound, 1e-3) if bound > 0 else 1.0
            if dual.violation is None:  # not updated yet: start again, now in its units
                self._state.duals[task] = self.rule.start(self.initial_multiplier, scale)
            else:  # updated from held-out losses before this first step: keep its lambda
                restarted = self.rule.start(dual.multiplier, scale)
                restarted.violation = dual.violation
                self._state.duals[task] = restarted

    def _start_stage(self) -> None:
        duals = {t: self.rule.start(self.initial_multiplier) for t in self.constrained_tasks}
        self._state.new_stage(self.stage_tasks, duals)
