"""Loading an artifact of `nomoretuning.serving.export` back (`load_exported`, `ExportedModel`)
and checking it against eager PyTorch (`parity`).

ONNX artifacts run in onnxruntime (``pip install 'nomoretuning[export]'``), TorchScript ones in
``torch.jit.load``; both on the CPU.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nomoretuning.errors import ConfigError
from nomoretuning.models import MultiTaskModel
from nomoretuning.serving.export import (
    TORCHSCRIPT_META,
    ArrayLike,
    ExportFormat,
    check_format,
    check_tasks,
    model_device,
    require,
)

__all__ = ["ExportedModel", "load_exported", "parity"]


class ExportedModel:
    """A loaded artifact: ``exported(sparse, dense) -> {task: probabilities [B] float32}``.

    ``sparse`` (integers ``[B, S]``) and ``dense`` (floats ``[B, D]``) are numpy arrays (or
    anything ``np.asarray`` takes); pass ``None`` for the one the model has no column of.
    Made by :func:`load_exported`.

    Attributes:
        path: the artifact.
        format: ``"onnx"`` or ``"torchscript"``.
        tasks: the task names, in output order.
        input_names: the inputs the artifact takes (``"sparse"``, ``"dense"`` or both).
        widths: the number of columns of each input.
    """

    def __init__(
        self,
        path: Path,
        format: ExportFormat,
        tasks: Sequence[str],
        widths: dict[str, int],
        runner: Any,
    ) -> None:
        self.path = path
        self.format: ExportFormat = format
        self.tasks: tuple[str, ...] = tuple(tasks)
        self.widths = dict(widths)
        self.input_names: tuple[str, ...] = tuple(widths)
        self._runner = runner

    def __repr__(self) -> str:
        return (
            f"ExportedModel({str(self.path)!r}, format={self.format!r}, tasks={list(self.tasks)}, "
            f"inputs={self.widths})"
        )

    def __call__(self, sparse: Any = None, dense: Any = None) -> dict[str, np.ndarray]:
        feeds = self._feeds(sparse, dense)
        if self.format == "onnx":
            outputs = self._runner.run(list(self.tasks), feeds)
        else:
            with torch.inference_mode():
                result = self._runner(*(torch.from_numpy(feeds[n]) for n in self.input_names))
            outputs = [t.numpy() for t in result]
        return {task: np.asarray(out) for task, out in zip(self.tasks, outputs, strict=True)}

    def _feeds(self, sparse: Any, dense: Any) -> dict[str, np.ndarray]:
        feeds: dict[str, np.ndarray] = {}
        rows: int | None = None
        for name, value in (("sparse", sparse), ("dense", dense)):
            if name not in self.widths:
                if value is not None and np.asarray(value).size:
                    raise ValueError(f"{self.path.name}: the model takes no {name!r} input")
                continue
            width = self.widths[name]
            if value is None:
                raise ValueError(f"{self.path.name}: {name!r} is required ([B, {width}])")
            array = np.asarray(value)
            if array.ndim != 2 or array.shape[1] != width:
                raise ValueError(
                    f"{self.path.name}: {name} must have shape [B, {width}], got "
                    f"{list(array.shape)}"
                )
            if name == "sparse":
                if not np.issubdtype(array.dtype, np.integer):
                    raise ValueError(
                        f"{self.path.name}: sparse must be integer ids, got dtype {array.dtype}"
                    )
                array = np.ascontiguousarray(array, dtype=np.int64)
            else:
                array = np.ascontiguousarray(array, dtype=np.float32)
            if rows is not None and array.shape[0] != rows:
                raise ValueError(
                    f"{self.path.name}: sparse and dense must have the same number of rows, got "
                    f"{rows} and {array.shape[0]}"
                )
            rows = array.shape[0]
            feeds[name] = array
        return feeds


def load_exported(path: str | os.PathLike[str], format: str) -> ExportedModel:
    """Loads an artifact of :func:`export_model` as ``(sparse, dense) -> {task: probabilities}``.

    ONNX runs in an onnxruntime ``InferenceSession`` on the CPU (task names from its outputs);
    TorchScript in ``torch.jit.load`` on the CPU (task names from the archive). See
    :class:`ExportedModel` for the call.

    Raises:
        ConfigError: unknown format, ``onnxruntime`` missing (ONNX), or a TorchScript file that
            :func:`export_model` did not write.
        FileNotFoundError: no file at ``path``.
    """
    fmt = check_format(format)
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no exported model at {source}")
    if fmt == "onnx":
        require("onnxruntime", what="ONNX inference")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(source), sess_options=options, providers=["CPUExecutionProvider"]
        )
        widths = {i.name: int(i.shape[1]) for i in session.get_inputs()}
        tasks = [o.name for o in session.get_outputs()]
        return ExportedModel(source, fmt, tasks, widths, session)
    extra = {TORCHSCRIPT_META: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        module = torch.jit.load(str(source), map_location="cpu", _extra_files=extra)
    if not extra[TORCHSCRIPT_META]:
        raise ConfigError(
            f"{source}: not a nomoretuning TorchScript export (no {TORCHSCRIPT_META}); write it "
            "with export_model(..., format='torchscript')"
        )
    meta = json.loads(extra[TORCHSCRIPT_META])
    module.eval()
    return ExportedModel(source, fmt, meta["tasks"], dict(meta["inputs"]), module)


def parity(
    model: MultiTaskModel,
    tasks: Sequence[str] | None,
    path: str | os.PathLike[str],
    format: str,
    sparse: ArrayLike,
    dense: ArrayLike,
) -> float:
    """The largest absolute difference, over ``tasks`` and rows, between the artifact's
    probabilities and eager ``torch.sigmoid(model(sparse, dense)[task])`` (in eval mode).

    ``sparse``/``dense`` are tensors or arrays; the one the model has no column of may be ``None``.
    The ids must be valid (the eager model rejects out-of-range ones).

    Raises:
        ConfigError: a task the model or the artifact does not have.
    """
    chosen = check_tasks(model, tasks)
    exported = load_exported(path, format)
    missing = [t for t in chosen if t not in exported.tasks]
    if missing:
        raise ConfigError(
            f"{exported.path}: the artifact has no task {missing[0]!r}; it has "
            f"{list(exported.tasks)}"
        )
    device = model_device(model)
    s = _eager_input(sparse, torch.int64, device)
    d = _eager_input(dense, torch.float32, device)
    rows = s.shape[0] if s is not None else d.shape[0] if d is not None else 0
    if s is None:
        s = torch.zeros(rows, 0, dtype=torch.int64, device=device)
    if d is None:
        d = torch.zeros(rows, 0, dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(s, d)
    finally:
        model.train(was_training)
    got = exported(
        s.cpu().numpy() if model.features.num_sparse else None,
        d.cpu().numpy() if model.features.num_dense else None,
    )
    worst = 0.0
    for task in chosen:
        eager = torch.sigmoid(logits[task]).to(torch.float64).cpu().numpy()
        diff = np.abs(got[task].astype(np.float64) - eager)
        if diff.size:
            worst = max(worst, float(diff.max()))
    return worst


def _eager_input(value: ArrayLike, dtype: torch.dtype, device: torch.device) -> Tensor | None:
    return None if value is None else torch.as_tensor(value).to(device=device, dtype=dtype)
