"""The one slack / violation formula (`nomoretuning.core.nmt.constraint`)."""

from __future__ import annotations

import pytest
from nmt_helpers import NMT

from nomoretuning.core.nmt.constraint import relative_to_bound, slack, violation


def test_slack_modes() -> None:
    assert slack(2.0, 0.01, "relative") == pytest.approx(0.02)
    assert slack(-2.0, 0.01, "relative") == pytest.approx(0.02)
    assert slack(2.0, 0.01, "absolute") == 0.01
    # Reducible: at most the share of what was learned (baseline - bound) ...
    assert slack(0.6, 0.01, "reducible", baseline=0.65) == pytest.approx(0.0005)
    # ... and at most the share of the loss; relative without a baseline or when nothing was
    # learned.
    assert slack(0.1, 0.01, "reducible", baseline=0.69) == pytest.approx(0.001)
    assert slack(0.6, 0.01, "reducible") == pytest.approx(0.006)
    assert slack(0.7, 0.01, "reducible", baseline=0.69) == pytest.approx(0.007)


def test_violation_and_relative_excess() -> None:
    assert violation(2.5, 2.0, 0.02) == pytest.approx(0.48)
    assert relative_to_bound(0.48, 2.0) == pytest.approx(0.24)
    assert relative_to_bound(0.48, 0.0) == 0.48


def test_nmt_uses_the_recorded_baseline() -> None:
    nmt = NMT(["a", "b"], tolerance=0.01)
    nmt.next_stage(bound=0.6, baseline=0.65)
    assert nmt.slack("a") == pytest.approx(0.0005)
    assert nmt.slack("a", bound=0.62) == pytest.approx(0.0003)
    relative = NMT(["a", "b"], tolerance=0.01, tolerance_mode="relative")
    relative.next_stage(bound=0.6, baseline=0.65)
    assert relative.slack("a") == pytest.approx(0.006)
    with pytest.raises(ValueError, match="no recorded bound"):
        NMT(["a", "b"]).slack("a")
    with pytest.raises(ValueError, match="unknown task 'z'"):
        nmt.slack("z")
