"""PairwiseSpec: plain data (no reference to the training layer), checked on construction."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from nomoretuning.data.ranking import PairwiseSpec
from nomoretuning.errors import DataError


def test_defaults_and_immutability() -> None:
    spec = PairwiseSpec()
    assert (dict(spec.pair_masks), dict(spec.gains), spec.max_pairs_per_group, spec.k) == (
        {},
        {},
        None,
        10,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.k = 5  # type: ignore[misc]
    assert not callable(spec)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_pairs_per_group": 0}, "max_pairs_per_group must be a positive integer or null"),
        ({"max_pairs_per_group": True}, "max_pairs_per_group must be a positive integer"),
        ({"k": 0}, "ndcg_k must be a positive integer, got 0"),
        ({"k": 2.0}, "ndcg_k must be a positive integer, got 2.0"),
    ],
)
def test_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        PairwiseSpec(**kwargs)  # type: ignore[arg-type]


def test_the_data_layer_does_not_import_training() -> None:
    code = (
        "import sys, nomoretuning.data.ranking as r; r.make_search_logs(20, 3); "
        "print(sorted(m for m in sys.modules if m.startswith('nomoretuning.training')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
