"""TrainerConfig: defaults and every bad value."""

from __future__ import annotations

import pytest

from nomoretuning.errors import ConfigError
from nomoretuning.training.config import TrainerConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "trainer.batch_size must be a positive integer"),
        ({"patience": True}, "trainer.patience must be a finite number > 0"),
        (
            {"patience": 0.5, "patience_unit": "evaluations"},
            "trainer.patience must be a positive integer",
        ),
        ({"constrained_patience": 0}, "trainer.constrained_patience must be a finite number > 0"),
        (
            {"constrained_patience": 1.5, "patience_unit": "evaluations"},
            "trainer.constrained_patience must be a positive integer",
        ),
        ({"lr": -1.0}, "trainer.lr must be a finite number > 0"),
        ({"lr": float("nan")}, "trainer.lr must be a finite number > 0"),
        ({"eval_every": 0}, "trainer.eval_every must be a positive integer or null"),
        ({"selection": "best"}, "trainer.selection must be one of"),
        ({"start_test_stages": "all"}, "trainer.start_test_stages must be one of"),
        ({"grad_clip": 0.0}, "trainer.grad_clip"),
        ({"feasibility_tolerance": -0.1}, "feasibility_tolerance"),
        ({"constraints": "test"}, "trainer.constraints must be one of"),
        ({"precision": "int8"}, "trainer.precision must be one of"),
        ({"device": ""}, "trainer.device"),
        ({"progress": "yes"}, "trainer.progress must be true or false"),
        ({"fit_later_heads": 1}, "trainer.fit_later_heads must be true or false"),
        ({"stage_test": "no"}, "trainer.stage_test must be true or false"),
        ({"seed": 1.5}, "trainer.seed must be an integer"),
    ],
)
def test_bad_trainer_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainerConfig(**kwargs)  # type: ignore[arg-type]


def test_every_option_has_a_default() -> None:
    config = TrainerConfig()
    assert TrainerConfig.option_names()[0] == "seed"
    assert all(hasattr(config, name) for name in TrainerConfig.option_names())
