"""Data paths, tiny budgets and config writers shared by the command-line tests.

The real data lives in ``../shared/data/`` beside the checkout; tests that need a file skip
without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from nomoretuning.cli import main as cli

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CENSUS = SHARED / "census-income-kdd" / "census-income.test.gz"
TIKTOK = SHARED / "tiktok-icme2019-sample" / "final_track2_sample.txt"
LAMBDARANK = SHARED / "lambdarank-example"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PACKAGED = Path(__file__).resolve().parents[2] / "src" / "nomoretuning" / "configs"
"""The configs shipped inside the package (``make demo``'s)."""

needs_census = pytest.mark.skipif(
    not CENSUS.exists(), reason="../shared/data is not beside the checkout"
)
needs_lambdarank = pytest.mark.skipif(
    not (LAMBDARANK / "rank.train").is_file(), reason="../shared/data is not beside the checkout"
)

FAST = {
    "batch_size": 2048,
    "max_epochs": 1,
    "max_steps": 6,
    "eval_every": 3,
    "patience": 2,
    "progress": False,
}
"""A Census-Income budget of a few seconds."""

SMALL_MODEL = {
    "num_experts": 2,
    "expert_dims": [16],
    "gate_dims": [],
    "tower_dims": [8],
    "embedding_dim": 4,
}

TINY = {
    "batch_size": 256,
    "max_epochs": 1,
    "max_steps": 4,
    "eval_every": 2,
    "patience": 2,
    "progress": False,
}
"""A budget of a second on the search-log simulator."""


def census_config(**sections: Any) -> dict[str, Any]:
    """An NMT run of a small MMoE on the real Census-Income file; ``sections`` replace sections."""
    config: dict[str, Any] = {
        "seed": 0,
        "data": {"dataset": "census_income", "path": str(CENSUS), "tasks": ["income", "marital"]},
        "model": {"name": "mmoe", "options": dict(SMALL_MODEL)},
        "method": {"name": "nmt"},
        "trainer": dict(FAST),
    }
    config.update(sections)
    return config


def table3_config(**sections: Any) -> dict[str, Any]:
    """The Table 3 protocol on 150 simulated queries, one seed; ``sections`` replace sections."""
    config: dict[str, Any] = {
        "seed": 0,
        "data": {
            "dataset": "search_logs",
            "tasks": ["pay", "amount", "relevance"],
            "options": {"n_queries": 150, "items_per_query": 10, "seed": 0},
        },
        "model": {"name": "single_score", "options": {"hidden_dims": [8]}},
        "method": {"name": "nmt"},
        "trainer": dict(TINY),
        "compare": {"protocol": "table3", "seeds": [0]},
    }
    config.update(sections)
    return config


def write_config(tmp_path: Path, config: dict[str, Any], name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``nomoretuning ARGS``: the exit status, standard output and standard error."""
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err
