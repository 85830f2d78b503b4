"""With the defaults, the evaluation cadence does not move NMT's top task beyond the seed spread.

Real Census-Income data (a 20,000-row training subset, a small MMoE, batch 128: 157 steps per
epoch): NMT with its defaults trained with ``eval_every`` unset (the default: 4 evaluations an
epoch, every 39 steps), every 20 steps and every 5 steps. The cadence was the 0.1 trainer's weak
point (a held-out dual step per evaluation, patience in evaluations); now the dual step runs on
training losses, patience counts epochs, and a stage is evaluated at least 4 times an epoch, so
it picks from comparable candidates whatever the cadence. Measured with this round's defaults
(the later heads and the metric guard; income test AUC, seed 0): 0.9425 by default, 0.9425
every 20 steps, 0.9424 every 5 steps (seeds 1, 2 by default: 0.9427, 0.9426). With the previous
defaults: 0.9425, 0.9410, 0.9423 (seeds 1, 2: 0.9429, 0.9411); with one evaluation per epoch
(``evaluations_per_epoch=1``) it was 0.9412, 0.9384 and 0.9368 on seeds 0-2.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch

import nomoretuning as nt
from nomoretuning.data import PreparedDataset, load_census_income
from nomoretuning.models import build_model
from nomoretuning.training import Trainer, TrainerConfig

CENSUS = Path(__file__).resolve().parents[3] / "shared/data/census-income-kdd/census-income.test.gz"
MODEL = {"num_experts": 2, "expert_dims": (32,), "gate_dims": (), "tower_dims": (16,)}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def census() -> PreparedDataset:
    if not CENSUS.exists():
        pytest.skip(f"real data not found at {CENSUS}")
    data = load_census_income(CENSUS)
    return PreparedDataset(
        data.name,
        data.tasks,
        data.features,
        train=data.train.subset(slice(0, 20000)),  # type: ignore[attr-defined]
        valid=data.valid.subset(slice(0, 5000)),  # type: ignore[attr-defined]
        test=data.test,
    )


def _income_auc(data: PreparedDataset, seed: int, eval_every: int | None) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_model("mmoe", data.features, list(data.tasks), **MODEL)
    config = TrainerConfig(
        batch_size=128, eval_every=eval_every, seed=seed, progress=False, device="cpu"
    )
    result = Trainer(model, nt.NMT(list(data.tasks)), data, config).fit()
    return float(result.test["income"]["auc"])


def test_the_top_task_does_not_depend_on_the_evaluation_cadence(census: PreparedDataset) -> None:
    by_cadence = {every: _income_auc(census, 0, every) for every in (None, 20, 5)}
    by_seed = [by_cadence[None], *(_income_auc(census, seed, None) for seed in (1, 2))]
    cadence_spread = max(by_cadence.values()) - min(by_cadence.values())
    seed_spread = statistics.stdev(by_seed)
    assert cadence_spread <= max(2 * seed_spread, 0.001), (by_cadence, by_seed)
