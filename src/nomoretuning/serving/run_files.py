"""What a run directory keeps so it can be scored without its training data: ``model.json`` (the
architecture, its options, the tasks and the inputs) beside ``preprocessing.json``
(`nomoretuning.data.preprocessing.Preprocessing`) and the weights (``best.pt``, ``last.pt``).

Both files are versioned JSON (`scoring_files`), written by the trainer when the run starts, so
an interrupted run can be scored from ``last.pt`` too.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nomoretuning.models import FeatureConfig, SparseField
    >>> spec = ModelSpec("mmoe", {"num_experts": 2}, ("click",),
    ...                  FeatureConfig((SparseField("uid", 5),), ("age",)))
    >>> folder = Path(tempfile.mkdtemp())
    >>> spec.save(folder / MODEL_FILE)
    >>> ModelSpec.load(folder / MODEL_FILE) == spec
    True
    >>> type(spec.build()).__name__
    'MMoE'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.preprocessing import Preprocessing
from nomoretuning.data.readers import read_json
from nomoretuning.errors import ConfigError, DataError
from nomoretuning.models import MODEL_NAMES, FeatureConfig, MultiTaskModel, SparseField, build_model
from nomoretuning.training.checkpoint import atomic_write_text

__all__ = [
    "MODEL_FILE",
    "MODEL_SPEC_VERSION",
    "PREPROCESSING_FILE",
    "ModelSpec",
    "scoring_files",
]

MODEL_FILE = "model.json"
PREPROCESSING_FILE = "preprocessing.json"
MODEL_SPEC_VERSION = 1
"""Version of the ``model.json`` layout."""


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild a run's model: registry name, options, tasks (in order) and inputs."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(dense=("x",)))

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    def build(self) -> MultiTaskModel:
        """A freshly initialised model of this spec (load the weights into it)."""
        return build_model(self.name, self.features, list(self.tasks), **dict(self.options))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MODEL_SPEC_VERSION,
            "name": self.name,
            "options": _jsonable(dict(self.options)),
            "tasks": list(self.tasks),
            "features": {
                "sparse": [[f.name, f.vocab_size] for f in self.features.sparse],
                "dense": list(self.features.dense),
            },
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any], source: str = MODEL_FILE) -> ModelSpec:
        """Reads `to_dict`'s form back.

        Raises:
            DataError: another version, an unknown model, or a malformed entry.
        """
        version = state.get("version") if isinstance(state, Mapping) else None
        if version != MODEL_SPEC_VERSION:
            raise DataError(
                f"{source}: model file version {version!r} is not supported (this library reads "
                f"version {MODEL_SPEC_VERSION}); train the run again"
            )
        try:
            features = FeatureConfig(
                tuple(SparseField(str(n), int(v)) for n, v in state["features"]["sparse"]),
                tuple(str(n) for n in state["features"]["dense"]),
            )
            spec = cls(str(state["name"]), dict(state["options"]), tuple(state["tasks"]), features)
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"{source}: malformed model file ({error}); train the run again"
            ) from None
        if spec.name not in MODEL_NAMES:
            raise DataError(f"{source}: unknown model {spec.name!r}; known: {list(MODEL_NAMES)}")
        return spec

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the JSON form atomically."""
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelSpec:
        """Reads a file written by `save`.

        Raises:
            DataError: a missing, unreadable or incompatible file.
        """
        file = Path(path)
        if not file.is_file():
            raise DataError(
                f"{file.parent}: no {MODEL_FILE}; point to a run directory written by "
                "`nomoretuning train` (version 0.2 or later)"
            )
        return cls.from_dict(read_json(file, "model file"), str(file))


def scoring_files(
    dataset: PreparedDataset,
    tasks: Sequence[str],
    model_name: str,
    model_options: Mapping[str, Any],
) -> dict[str, str]:
    """The texts of ``model.json`` and ``preprocessing.json`` of a run (file name -> text), for
    the trainer's ``run_files``.

    A dataset without an input format (built by hand) gets ``model.json`` only: its model can be
    loaded, but files cannot be read for it.
    """
    spec = ModelSpec(model_name, model_options, tuple(tasks), dataset.features)
    files = {MODEL_FILE: json.dumps(spec.to_dict(), indent=2)}
    try:
        preprocessing = Preprocessing.from_dataset(dataset, tasks)
    except DataError:
        return files
    files[PREPROCESSING_FILE] = json.dumps(preprocessing.to_dict())
    return files


def _jsonable(value: Any) -> Any:
    """Tuples as lists, so the options survive a JSON round trip unchanged."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(f"model option value {value!r} cannot be written to {MODEL_FILE}")
