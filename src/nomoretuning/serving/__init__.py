"""Serving: a trained run scored, evaluated and exported without its training data.

- `load_run` / `TrainedRun`: a run directory's model and preprocessing; ``predict`` a table,
  ``predict_file`` a file of any size, ``evaluate`` labelled rows.
- `ModelSpec`, `scoring_files`: what a run keeps for that (``model.json``,
  ``preprocessing.json``).
- `export_model`, `load_exported`, `parity`: ONNX and TorchScript serving artifacts.
"""

from nomoretuning.serving.export import FORMATS, ServingModule, export_model
from nomoretuning.serving.exported import ExportedModel, load_exported, parity
from nomoretuning.serving.run import CHECKPOINTS, TrainedRun, load_run
from nomoretuning.serving.run_files import (
    MODEL_FILE,
    PREPROCESSING_FILE,
    ModelSpec,
    scoring_files,
)

__all__ = [
    "CHECKPOINTS",
    "FORMATS",
    "MODEL_FILE",
    "PREPROCESSING_FILE",
    "ExportedModel",
    "ModelSpec",
    "ServingModule",
    "TrainedRun",
    "export_model",
    "load_exported",
    "load_run",
    "parity",
    "scoring_files",
]
