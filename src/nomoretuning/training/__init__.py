"""The trainer (`Trainer`, `TrainerConfig`) and what it is made of; metrics and objectives.

Example:
    >>> from nomoretuning.training import Trainer, TrainerConfig
    >>> TrainerConfig().constraints
    'train'
"""

from nomoretuning.training.config import TrainerConfig
from nomoretuning.training.errors import TrainingError
from nomoretuning.training.records import FitResult, StageRecord
from nomoretuning.training.trainer import Trainer

__all__ = ["FitResult", "StageRecord", "Trainer", "TrainerConfig", "TrainingError"]
