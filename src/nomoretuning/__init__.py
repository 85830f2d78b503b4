"""nomoretuning: prioritized multi-task learning for PyTorch.

The core (`nomoretuning.core`) needs only torch; the models, data, trainer, serving
(`nomoretuning.load_run`) and command line live in sub-packages.

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
    StageSelection,
    StepBudget,
    UncertaintyWeighting,
)

__version__ = "0.1.0.dev0"


def __getattr__(name: str) -> object:
    """``nomoretuning.load_run``, imported on first use: scoring needs the data layer (pandas),
    which ``import nomoretuning`` does not."""
    if name == "load_run":
        from nomoretuning.serving import load_run

        return load_run
    raise AttributeError(f"module 'nomoretuning' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and ``load_run`` (so that tab completion offers it)."""
    return sorted({*globals(), *__all__})


__all__ = [
    "EMTL",
    "FAMO",
    "NMT",
    "EqualWeights",
    "FixedWeights",
    "LossCombiner",
    "Plateau",
    "StageSelection",
    "StepBudget",
    "UncertaintyWeighting",
    "__version__",
    "load_run",
]
