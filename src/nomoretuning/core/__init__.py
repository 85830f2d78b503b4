"""Loss combiners: NMT and the methods it is compared and composed with. Depends on torch only."""

from nomoretuning.core.base import LossCombiner, check_losses
from nomoretuning.core.emtl import EMTL
from nomoretuning.core.famo import FAMO
from nomoretuning.core.nmt import NMT
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
    "StageSwitch",
    "StepBudget",
    "UncertaintyWeighting",
    "check_losses",
]
