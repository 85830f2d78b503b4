"""nomoretuning: prioritized multi-task learning for PyTorch.

The core (`nomoretuning.core`) needs only torch; the models, data, trainer and command line live in
sub-packages.

Example:
    >>> import torch
    >>> import nomoretuning as nt
    >>> nmt = nt.NMT(["like", "finish"])
    >>> nmt({"like": torch.tensor(0.5), "finish": torch.tensor(0.7)})  # stage 1: both, equally
    tensor(0.6000)
"""

from nomoretuning.core import (
    EMTL,
    FAMO,
    NMT,
    EqualWeights,
    FixedWeights,
    LossCombiner,
    Plateau,
    StepBudget,
    UncertaintyWeighting,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "EMTL",
    "FAMO",
    "NMT",
    "EqualWeights",
    "FixedWeights",
    "LossCombiner",
    "Plateau",
    "StepBudget",
    "UncertaintyWeighting",
    "__version__",
]
