"""Loss combiners (NMT and the methods it is compared and composed with) and task losses (the
pairwise logistic loss of learning to rank). Depends on torch only."""

from nomoretuning.core.base import LossCombiner, StagedCombiner, check_losses, is_staged
from nomoretuning.core.emtl import EMTL
from nomoretuning.core.famo import FAMO
from nomoretuning.core.losses import binary_cross_entropy_losses, pairwise_logistic_loss
from nomoretuning.core.nmt import NMT
from nomoretuning.core.stage_selection import StageSelection, evaluation_noise
from nomoretuning.core.switching import Plateau, StageSwitch, StepBudget
from nomoretuning.core.weighting import EqualWeights, FixedWeights, UncertaintyWeighting

__all__ = [
    "EMTL",
    "FAMO",
    "NMT",
    "EqualWeights",
    "FixedWeights",
    "LossCombiner",
    "Plateau",
    "StageSelection",
    "StageSwitch",
    "StagedCombiner",
    "StepBudget",
    "UncertaintyWeighting",
    "binary_cross_entropy_losses",
    "check_losses",
    "evaluation_noise",
    "is_staged",
    "pairwise_logistic_loss",
]
