"""The trainer's error: training cannot go on."""

from __future__ import annotations

from nomoretuning.errors import NomoretuningError

__all__ = ["TrainingError"]


class TrainingError(NomoretuningError, RuntimeError):
    """Training cannot go on (non-finite loss, a run directory in the way, a bad resume)."""
