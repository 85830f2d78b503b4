"""The robustness benchmark's design: its rows (data and priorities), its cells (one factor at a
time around each row's centre, and random combinations of factors) and which cells each row runs
(``bench_robustness.py`` runs it; the module docstring there describes the design in words)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

SMALL: dict[str, Any] = {
    "num_experts": 4,
    "expert_dims": (64, 64),
    "bottom_dims": (64, 64),
    "gate_dims": (),
    "tower_dims": (32,),
}
"""The README's small sizes (each model takes the options it has)."""

ROWS: dict[str, dict[str, Any]] = {
    "census income>marital": {"data": "census", "tasks": ("income", "marital")},
    "census marital>income": {"data": "census", "tasks": ("marital", "income")},
    "census income>education": {"data": "census", "tasks": ("income", "education")},
    "census income>marital>education": {
        "data": "census",
        "tasks": ("income", "marital", "education"),
    },
    "synthetic c0.25": {"data": "synthetic", "conflict": 0.25},
    "synthetic c0.5": {"data": "synthetic", "conflict": 0.5},
    "synthetic c0.75": {"data": "synthetic", "conflict": 0.75},
    "search pay>amount>relevance": {"data": "search", "tasks": ("pay", "amount", "relevance")},
}

CELLS: dict[str, dict[str, Any]] = {
    "centre": {},
    "e20": {"eval_every": 20},
    "epoch_eval": {"evaluations_per_epoch": 1},
    "batch256": {"batch_size": 256},
    "batch4096": {"batch_size": 4096},
    "lr3e-4": {"lr": 3e-4},
    "lr3e-3": {"lr": 3e-3},
    "shared_bottom small": {"model": "shared_bottom"},
    "shared_bottom default": {"model": "shared_bottom", "sizes": "default"},
    "mmoe default": {"sizes": "default"},
    "mmoe small": {"model": "mmoe"},
    "ple small": {"model": "ple"},
    "ple default": {"model": "ple", "sizes": "default"},
}
"""One factor at a time around the centre cell (see the module docstring)."""

FACTORS: dict[str, tuple[str, ...]] = {
    "cadence": ("epoch_eval",),
    "batch": ("batch256", "batch4096"),
    "lr": ("lr3e-4", "lr3e-3"),
    "architecture": ("shared_bottom small", "ple small"),
}
"""The factors that a random combination changes together; each level is a one-factor cell (the
centre's level of every factor is implicit). The default sizes stay out (the default-size MMoE
cell alone takes 14 minutes), and so does ``e20`` (the centre's runs outside the synthetic rows)."""


def random_combinations(factors: Sequence[str], count: int, seed: int) -> tuple[str, ...]:
    """``count`` cells drawn (seeded, without replacement) from every combination of the non-centre
    levels of two or more of ``factors``; a combination's name joins its cells with ``+``.

    Example:
        >>> random_combinations(("cadence", "batch", "lr"), 2, seed=0)
        ('epoch_eval+batch256', 'epoch_eval+batch4096+lr3e-3')
    """
    levels = [(None, *FACTORS[factor]) for factor in factors]
    every = [tuple(c for c in combo if c) for combo in itertools.product(*levels)]
    drawn = random.Random(seed).sample([c for c in every if len(c) >= 2], count)
    return tuple("+".join(cells) for cells in drawn)


COMBINATIONS = random_combinations(tuple(FACTORS), 3, seed=2026)
"""The random combinations on the rows of multi-task models (drawn once, seed 2026)."""
RANKING_COMBINATIONS = random_combinations(("cadence", "batch", "lr"), 3, seed=2026)
"""The random combinations on the ranking row, drawn without the architecture factor (around the
row's centre, a single score)."""
for _name in (*COMBINATIONS, *RANKING_COMBINATIONS):
    CELLS[_name] = {k: v for part in _name.split("+") for k, v in CELLS[part].items()}

_CADENCE_AND_TRAINING = ("centre", "epoch_eval", "batch256", "batch4096", "lr3e-4", "lr3e-3")
_SMALL_ARCHITECTURES = ("shared_bottom small", "ple small")
_SYNTHETIC = (
    "centre",
    "e20",
    *_CADENCE_AND_TRAINING[1:],
    *_SMALL_ARCHITECTURES,
    "shared_bottom default",
)
_ARCHITECTURES = (  # both sizes; "mmoe small" is the centre of these rows
    "shared_bottom small",
    "shared_bottom default",
    "mmoe default",
    "ple small",
    "ple default",
)
DESIGN: dict[str, tuple[str, ...]] = {
    "census income>marital": (*_CADENCE_AND_TRAINING, *_ARCHITECTURES, *COMBINATIONS),
    "census marital>income": (*_CADENCE_AND_TRAINING, *_SMALL_ARCHITECTURES, *COMBINATIONS),
    "census income>education": (*_CADENCE_AND_TRAINING, *_SMALL_ARCHITECTURES, *COMBINATIONS),
    "census income>marital>education": (
        *_CADENCE_AND_TRAINING,
        *_SMALL_ARCHITECTURES,
        *COMBINATIONS,
    ),
    "synthetic c0.25": (*_SYNTHETIC, *COMBINATIONS),
    "synthetic c0.5": (*_SYNTHETIC, *COMBINATIONS),
    "synthetic c0.75": (*_SYNTHETIC, *COMBINATIONS),
    "search pay>amount>relevance": (
        *_CADENCE_AND_TRAINING,
        "mmoe small",
        *_SMALL_ARCHITECTURES,
        *RANKING_COMBINATIONS,
    ),
}
"""The cells each row runs without ``--cells`` (the fractional design the README reports): the
cadence and training factors everywhere (``e20`` on the synthetic rows only: on Census-Income
and the search logs the default cadence already evaluates every 20 steps or more often, so
``e20`` gives the centre's runs there); every architecture at both sizes on the first row; the
small ones (and Shared-Bottom at the default sizes on the synthetic rows) on the others; the
three small ones on the ranking row, whose centre is a single score (``mmoe small`` is the
centre everywhere else); and the random combinations on every row (`COMBINATIONS`; the ranking
row `RANKING_COMBINATIONS`). ``--cells`` runs the cells it names on every row instead."""
