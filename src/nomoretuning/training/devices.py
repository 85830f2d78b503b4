"""The training device: ``trainer.device`` resolved, GPU ``LOCAL_RANK`` under torchrun."""

from __future__ import annotations

import torch

from nomoretuning.errors import ConfigError
from nomoretuning.training import distributed as parallel

__all__ = ["resolve_device"]


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """The training device; under torchrun ``auto`` and ``cuda`` mean GPU ``LOCAL_RANK``.

    ``local_rank`` defaults to torchrun's ``LOCAL_RANK`` (0 outside torchrun).

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if local_rank is None:
        local_rank = parallel.local_rank()
    if name in ("auto", "cuda") and torch.cuda.is_available():
        distributed = parallel.is_distributed()
        return torch.device("cuda", local_rank) if distributed else torch.device("cuda")
    if name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"trainer.device {name!r} is not a torch device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.device is {name!r} but CUDA is not available; use 'cpu' or 'auto'"
        )
    return device
