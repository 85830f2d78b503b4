"""`StageSelection`: early stopping of NMT's stages in a user's own loop, with the metric guard."""

from __future__ import annotations

import math

import pytest
import torch

import nomoretuning as nt
from nomoretuning.core.stage_selection import evaluation_noise


def _set(model: torch.nn.Linear, value: float) -> torch.nn.Linear:
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def _model(value: float) -> torch.nn.Linear:
    return _set(torch.nn.Linear(1, 1, bias=False), value)


def _finish_stage(nmt: nt.NMT, selection: nt.StageSelection, model: torch.nn.Module) -> None:
    selection.restore(model)
    nmt.next_stage(bound={t: 0.3 for t in nmt.stage_tasks})


def test_the_start_is_kept_when_no_evaluation_improves_on_it() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(1.0)
    selection = nt.StageSelection(nmt, patience=2)
    assert selection.offer(model, {"a": 0.9, "b": 0.5})
    assert not selection.offer(_set(model, 2.0), {"a": 0.8, "b": 0.6})
    assert not selection.done
    assert not selection.offer(_set(model, 3.0), {"a": 0.9, "b": 0.7})  # a tie is not better
    assert selection.done
    assert selection.restore(model) == {"a": 0.9, "b": 0.5}
    assert model.weight.item() == 1.0  # the copy, not the live parameters


def test_patience_counts_from_the_last_better_candidate() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=2)
    scores = [0.5, 0.4, 0.6, 0.55, 0.58]
    done = []
    for score in scores:
        selection.offer(model, {"a": score, "b": 0.0})
        done.append(selection.done)
    assert done == [False, False, False, False, True]


def test_floors_are_the_selected_metric_less_guard_noise_deviations() -> None:
    nmt = nt.NMT(["a", "b", "c"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=5, guard=2.0)
    history = [0.60, 0.70, 0.66, 0.72, 0.69]
    for value in history:
        selection.offer(model, {"a": value, "b": 0.0, "c": 0.0})
    _finish_stage(nmt, selection, model)
    # |diff| = 0.10, 0.04, 0.06, 0.03: median 0.05
    noise = 0.05 / (math.sqrt(2.0) * 0.6744897501960817)
    assert selection.floors == pytest.approx({"a": 0.72 - 2.0 * noise})
    assert evaluation_noise(history) == pytest.approx(noise)


def test_a_joint_start_records_no_floor() -> None:
    nmt = nt.NMT(["a", "b"])  # a joint start, then a, then b
    model = _model(0.0)
    selection = nt.StageSelection(nmt)
    for value in (0.5, 0.6, 0.7):
        selection.offer(model, {"a": value, "b": value})
    _finish_stage(nmt, selection, model)
    assert selection.floors == {}
    assert nmt.stage_tasks == ("a",)


_NOISE_002 = 0.02 / (math.sqrt(2.0) * 0.6744897501960817)
"""`evaluation_noise` of a history whose successive steps have median 0.02."""


def _top_stage_after_a_joint_start(
    model: torch.nn.Linear, **options: object
) -> tuple[nt.NMT, nt.StageSelection]:
    nmt = nt.NMT(["a", "b"])
    selection = nt.StageSelection(nmt, **options)  # type: ignore[arg-type]
    selection.offer(model, {"a": 0.6, "b": 0.6})
    _finish_stage(nmt, selection, model)
    assert nmt.stage_tasks == ("a",)
    return nmt, selection


def test_the_top_stage_keeps_its_start_unless_its_gain_beats_its_noise() -> None:
    history = [0.70, 0.72, 0.69, 0.71]  # |diff| 0.02, 0.03, 0.02: noise 0.02 / 0.954
    assert evaluation_noise(history) == pytest.approx(_NOISE_002)
    for margin, kept in ((1.0, True), (0.9, False), (None, False)):
        model = _model(0.0)
        _, selection = _top_stage_after_a_joint_start(
            model, patience=5, guard=0.0, start_margin=margin
        )
        for step, value in enumerate(history):
            selection.offer(_set(model, float(step)), {"a": value, "b": 0.0})
        # the best (0.72) gains 0.02 over the start: within 1 noise s.d. (0.021), not 0.9
        restored = selection.restore(model)
        assert selection.kept_start is kept
        assert restored == ({"a": 0.70, "b": 0.0} if kept else {"a": 0.72, "b": 0.0})
        assert model.weight.item() == (0.0 if kept else 1.0)
        assert selection.floors == {"a": restored["a"]}  # guard 0


def test_a_first_stage_never_keeps_its_untrained_start() -> None:
    """Without a joint start the top stage starts from the untrained model; as in the trainer,
    only the stages after the first test their start."""
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=5)
    for step, value in enumerate([0.50, 0.66, 0.48, 0.64, 0.47]):  # noisy: gain within 1 s.d.
        selection.offer(_set(model, float(step)), {"a": value, "b": 0.5})
    assert selection.restore(model) == {"a": 0.66, "b": 0.5}
    assert not selection.kept_start and model.weight.item() == 1.0


def test_a_selection_built_after_a_stage_ended_says_so() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    nmt.next_stage(bound=0.3)  # a's stage ended without this selection
    with pytest.raises(ValueError, match="task 'a' has no floor: its stage ended without"):
        nt.StageSelection(nmt).offer(_model(0.0), {"a": 0.5, "b": 0.5})


def test_a_gain_beyond_the_noise_leaves_the_start() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=5)
    for step, value in enumerate([0.70, 0.80, 0.78, 0.79]):  # noise 0.021, gain 0.10
        selection.offer(_set(model, float(step)), {"a": value, "b": 0.0})
    assert selection.restore(model) == {"a": 0.80, "b": 0.0}
    assert not selection.kept_start
    assert model.weight.item() == 1.0


def test_a_lower_stage_keeps_its_start_unless_its_gain_beats_its_noise() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=5, guard=0.0)
    selection.offer(model, {"a": 0.70, "b": 0.0})  # a's stage, ended at its start
    _finish_stage(nmt, selection, model)
    for step, value in enumerate([0.70, 0.72, 0.69, 0.71]):  # b gains 1 noise s.d.
        selection.offer(_set(model, float(step)), {"a": 0.70, "b": value})
    assert selection.restore(model) == {"a": 0.70, "b": 0.70}
    assert selection.kept_start and model.weight.item() == 0.0


def test_a_joint_start_does_not_test_its_start() -> None:
    """A joint start starts from the untrained model: its best is kept, however small its gain."""
    nmt = nt.NMT(["a", "b"])
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=5)
    for step, value in enumerate([0.70, 0.72, 0.69, 0.71]):
        selection.offer(_set(model, float(step)), {"a": value, "b": value})
    assert selection.restore(model) == {"a": 0.72, "b": 0.72}
    assert not selection.kept_start and model.weight.item() == 1.0


def _in_b_stage_with_a_floor_of_080(
    start_margin: float | None = None,
) -> tuple[torch.nn.Linear, nt.StageSelection]:
    """a's stage ended at a = 0.80 with guard 0: b's stage holds a at 0.80 exactly (no start
    margin unless given: these tests are of the floors)."""
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=3, guard=0.0, start_margin=start_margin)
    selection.offer(model, {"a": 0.80, "b": 0.10})
    _finish_stage(nmt, selection, model)
    return model, selection


def test_a_held_task_below_its_floor_makes_a_candidate_inadmissible() -> None:
    model, selection = _in_b_stage_with_a_floor_of_080()
    assert selection.floors == {"a": 0.80}  # guard 0: the selected value itself
    assert selection.offer(_set(model, 1.0), {"a": 0.80, "b": 0.50})  # b's start
    assert not selection.offer(_set(model, 2.0), {"a": 0.79, "b": 0.99})  # a fell
    assert selection.offer(_set(model, 3.0), {"a": 0.81, "b": 0.60})  # a kept, b better
    assert selection.restore(model) == {"a": 0.81, "b": 0.60}
    assert model.weight.item() == 3.0


def test_among_inadmissible_candidates_the_smallest_shortfall_wins() -> None:
    model, selection = _in_b_stage_with_a_floor_of_080()
    selection.offer(_set(model, 1.0), {"a": 0.70, "b": 0.90})
    assert selection.shortfall({"a": 0.70}) == pytest.approx(0.10)
    assert selection.offer(_set(model, 2.0), {"a": 0.75, "b": 0.20})  # closer to its floor
    assert not selection.offer(_set(model, 3.0), {"a": 0.72, "b": 0.99})
    assert selection.offer(_set(model, 4.0), {"a": 0.80, "b": 0.15})  # admissible beats all
    assert selection.restore(model)["b"] == 0.15


def test_an_inadmissible_start_is_not_kept_over_an_admissible_best() -> None:
    model, selection = _in_b_stage_with_a_floor_of_080(start_margin=1.0)
    selection.offer(_set(model, 1.0), {"a": 0.70, "b": 0.50})  # b's start, below a's floor
    selection.offer(_set(model, 2.0), {"a": 0.80, "b": 0.49})  # admissible, a lower b
    selection.offer(_set(model, 3.0), {"a": 0.80, "b": 0.48})
    assert selection.restore(model) == {"a": 0.80, "b": 0.49}
    assert not selection.kept_start and model.weight.item() == 2.0


def test_a_level_of_several_tasks_scores_their_mean() -> None:
    nmt = nt.NMT([["a", "b"], "c"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=3)
    selection.offer(model, {"a": 0.9, "b": 0.1, "c": 0.0})  # mean 0.5
    assert selection.offer(model, {"a": 0.5, "b": 0.6, "c": 0.0})  # mean 0.55
    assert not selection.offer(model, {"a": 0.95, "b": 0.05, "c": 0.0})  # mean 0.5


def test_state_dict_round_trip_continues_the_same_selection() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=2)
    for value in (0.6, 0.7, 0.65):
        selection.offer(_set(model, value), {"a": value, "b": 0.0})
    _finish_stage(nmt, selection, model)
    selection.offer(_set(model, 5.0), {"a": 0.7, "b": 0.3})
    resumed = nt.StageSelection(nmt, patience=2)
    resumed.load_state_dict(selection.state_dict())
    for s in (selection, resumed):
        assert not s.offer(_set(model, 6.0), {"a": 0.7, "b": 0.2})
        assert s.restore(model) == {"a": 0.7, "b": 0.3}
        assert model.weight.item() == 5.0
    assert resumed.floors == selection.floors


def test_state_dict_round_trip_keeps_a_tested_start() -> None:
    model = _model(0.0)
    nmt, selection = _top_stage_after_a_joint_start(model, patience=5)
    for step, value in enumerate([0.70, 0.72, 0.69]):
        selection.offer(_set(model, float(step)), {"a": value, "b": 0.0})
    resumed = nt.StageSelection(nmt, patience=5)
    resumed.load_state_dict(selection.state_dict())
    for s in (selection, resumed):
        s.offer(_set(model, 3.0), {"a": 0.71, "b": 0.0})
        assert s.restore(model) == {"a": 0.70, "b": 0.0}
        assert s.kept_start and model.weight.item() == 0.0


def test_an_own_loop_keeps_the_top_task_through_a_lower_stage_that_hurts_it() -> None:
    """A toy own loop where b's stage can only raise b's metric by lowering a's: the selection
    ends it where a's floor holds."""
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt, patience=2, guard=0.0)

    def validate(m: torch.nn.Linear) -> dict[str, float]:
        w = m.weight.item()
        return {"a": -((w - 1.0) ** 2), "b": -((w - 2.0) ** 2)}

    targets = {"a": 1.0, "b": 2.0}
    while not nmt.finished:
        selection.offer(model, validate(model))
        while not selection.done:
            target = targets[nmt.stage_tasks[0]]
            _set(model, model.weight.item() + 0.25 * (target - model.weight.item()))
            selection.offer(model, validate(model))
        selection.restore(model)
        nmt.next_stage(bound={t: 0.0 for t in nmt.stage_tasks})
    assert validate(model)["a"] >= selection.floors["a"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patience": 0}, "patience must be a positive integer"),
        ({"patience": 1.5}, "patience must be a positive integer"),
        ({"patience": True}, "patience must be a positive integer"),
        ({"guard": -1.0}, "guard must be a finite number >= 0"),
        ({"guard": "1"}, "guard must be a finite number >= 0"),
        ({"guard": math.inf}, "guard must be a finite number >= 0"),
        ({"start_margin": -0.5}, "start_margin must be a number >= 0 or None"),
        ({"start_margin": "1"}, "start_margin must be a number >= 0 or None"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        nt.StageSelection(nt.NMT(["a", "b"]), **kwargs)  # type: ignore[arg-type]


def test_an_nmt_that_ends_its_own_stages_is_refused() -> None:
    with pytest.raises(ValueError, match="build NMT without switch="):
        nt.StageSelection(nt.NMT(["a", "b"], switch=nt.Plateau()))


def test_a_combiner_without_stages_is_refused() -> None:
    with pytest.raises(ValueError, match="got EqualWeights, which trains in one stage"):
        nt.StageSelection(nt.EqualWeights(["a", "b"]))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_metric_that_is_not_finite_is_refused_before_it_is_recorded(bad: float) -> None:
    selection = nt.StageSelection(nt.NMT(["a", "b"], joint_start=False))
    with pytest.raises(ValueError, match=f"the metric of task 'a' is {bad}"):
        selection.offer(_model(0.0), {"a": bad, "b": 0.5})
    assert selection.history == []  # the next finite candidate is the stage's first
    assert selection.offer(_model(0.0), {"a": 0.6, "b": 0.5})


def test_misuse_gets_an_actionable_error() -> None:
    nmt = nt.NMT(["a", "b"], joint_start=False)
    model = _model(0.0)
    selection = nt.StageSelection(nmt)
    with pytest.raises(RuntimeError, match="restore before any offer"):
        selection.restore(model)
    with pytest.raises(ValueError, match=r"lack the tasks \['a'\]"):
        selection.offer(model, {"b": 0.5})
    selection.offer(model, {"a": 0.5, "b": 0.5})
    nmt.next_stage(bound=0.3)
    with pytest.raises(RuntimeError, match=r"call selection.restore\(model\) before"):
        selection.offer(model, {"a": 0.5, "b": 0.5})
    selection.restore(model)  # late, but for a's stage: a's floor, not b's
    assert list(selection.floors) == ["a"]
    selection.offer(model, {"a": 0.5, "b": 0.5})
    selection.restore(model)
    nmt.next_stage(bound=0.3)
    assert nmt.finished
    with pytest.raises(RuntimeError, match="training has finished"):
        selection.offer(model, {"a": 0.5, "b": 0.5})
