"""Fixtures of the trainer's tests."""

from __future__ import annotations

import pytest
from trainer_helpers import toy_dataset

from nomoretuning.data.batching import PreparedDataset

collect_ignore = ["conftest.py"]
"""Not collected for doctests (``--doctest-modules`` would import it as the module ``conftest``,
clashing with tests/data/conftest.py)."""


@pytest.fixture(scope="module")
def dataset() -> PreparedDataset:
    return toy_dataset()
