"""Mixed precision of the forward pass (``trainer.precision``) and fp16's gradient scaler."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from nomoretuning.errors import ConfigError

__all__ = ["autocast", "gradient_scaler"]


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` for ``"bf16"``/``"fp16"``; nothing for ``"fp32"``.

    Example:
        >>> with autocast("fp32", torch.device("cpu")):
        ...     (torch.ones(2) * 2).dtype
        torch.float32
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def gradient_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """The loss scaler fp16 needs (None otherwise); fp16 needs a CUDA device."""
    if precision != "fp16":
        return None
    if device.type != "cuda":
        raise ConfigError(
            "trainer.precision 'fp16' needs a CUDA device; use 'bf16' on CPU or 'fp32'"
        )
    return torch.amp.GradScaler("cuda")
