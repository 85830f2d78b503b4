"""Fixtures of the trainer's tests."""

from __future__ import annotations

import pytest
from trainer_helpers import toy_dataset

from nomoretuning.data.batching import PreparedDataset


@pytest.fixture(scope="module")
def dataset() -> PreparedDataset:
    return toy_dataset()
