"""Fixtures every test shares: a fixed seed, so no test depends on the order the others ran in."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

collect_ignore = ["conftest.py"]
"""Not collected for doctests (``--doctest-modules`` would import it as the module ``conftest``)."""


@pytest.fixture(autouse=True)
def _fixed_seed() -> None:
    """Seed torch, numpy and random before each test (pytest-xdist spreads tests over workers
    in no fixed order, so the global generators' state would otherwise depend on it)."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global generator, for code that uses it
    torch.manual_seed(0)
