"""Export a trained model to ONNX or TorchScript (`export_model`, `ServingModule`); loading an
artifact back and checking it against eager PyTorch is `nomoretuning.serving.exported`.

The artifact computes per-task *probabilities* (``sigmoid`` of the model's logits, float32) with a
dynamic batch size. Its inputs are ``sparse`` (int64 ``[B, S]``) and ``dense`` (float32
``[B, D]``); a model without sparse fields takes only ``dense``, one without dense features only
``sparse`` (no zero-width inputs). Sparse ids outside ``0..vocab_size-1`` of their column are
mapped to 0, the out-of-vocabulary bucket, instead of raising. ONNX needs the ``onnx`` and
``onnxscript`` packages to export and ``onnxruntime`` to load (``pip install
'nomoretuning[export]'``); TorchScript needs only torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import torch
from torch import Tensor, nn

from nomoretuning.errors import ConfigError
from nomoretuning.models import MultiTaskModel
from nomoretuning.models.layers import FeatureEmbedding

if TYPE_CHECKING:
    from typing import Self

__all__ = ["FORMATS", "ExportFormat", "ServingModule", "export_model"]

ExportFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
"""The formats :func:`export_model` writes."""

_INSTALL_HINT = "pip install 'nomoretuning[export]'"
TORCHSCRIPT_META = "nomoretuning.json"
_QUIET_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "torch.fx")

ArrayLike = Tensor | np.ndarray | None


class ServingModule(nn.Module):
    """A trained model for inference: ``forward(sparse, dense) -> (probability [B], ...)``.

    Out-of-range sparse ids (negative or ``>= vocab_size`` of their column) become 0, the
    out-of-vocabulary bucket; the outputs are ``sigmoid(logit)`` as float32, one per task in
    ``tasks`` order. ``forward`` takes the inputs named in ``input_names``: ``(sparse, dense)``,
    only ``(dense,)`` for a model without sparse fields, or only ``(sparse,)`` for one without
    dense features. The module is always in eval mode (``train()`` keeps it there), and so is the
    wrapped model, which is shared, not copied.

    Args:
        model: the trained model.
        tasks: the tasks to output, in order; ``None`` for ``model.tasks``.

    Raises:
        ConfigError: no task, a repeated task, or a task the model does not have.

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig, SparseField, build_model
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = build_model("shared_bottom", cfg, ["click", "like"], bottom_dims=(4,))
        >>> serving = ServingModule(model, ["like"])
        >>> serving.input_names
        ('sparse', 'dense')
        >>> (like,) = serving(torch.tensor([[3], [99]]), torch.zeros(2, 1))  # 99: OOV
        >>> like.shape, bool(((like > 0) & (like < 1)).all())
        (torch.Size([2]), True)
    """

    _vocab_sizes: Tensor

    def __init__(self, model: MultiTaskModel, tasks: Sequence[str] | None = None) -> None:
        super().__init__()
        self.model = model
        self.tasks: tuple[str, ...] = check_tasks(model, tasks)
        features = model.features
        self.num_sparse = features.num_sparse
        self.num_dense = features.num_dense
        names: list[str] = []
        if self.num_sparse:
            names.append("sparse")
        if self.num_dense:
            names.append("dense")
        self.input_names: tuple[str, ...] = tuple(names)
        self.register_buffer(
            "_vocab_sizes",
            torch.tensor([f.vocab_size for f in features.sparse], dtype=torch.int64),
            persistent=False,
        )
        self._vocab_sizes = self._vocab_sizes.to(model_device(model))
        self.eval()

    def train(self, mode: bool = True) -> Self:
        """Stays in eval mode whatever ``mode`` is (a serving module never trains)."""
        return super().train(False)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """``forward(sparse, dense)``, ``forward(dense)`` or ``forward(sparse)`` (see
        ``input_names``) -> one probability tensor ``[B]`` (float32) per task."""
        if len(inputs) != len(self.input_names):
            raise TypeError(
                f"ServingModule.forward takes {len(self.input_names)} input(s) "
                f"{self.input_names}, got {len(inputs)}"
            )
        named = dict(zip(self.input_names, inputs, strict=True))
        if "sparse" in named:
            sparse = named["sparse"]
            valid = (sparse >= 0) & (sparse < self._vocab_sizes)
            sparse = torch.where(valid, sparse, torch.zeros_like(sparse))
        else:
            dense_in = named["dense"]
            sparse = dense_in.new_zeros((dense_in.shape[0], 0), dtype=torch.int64)
        if "dense" in named:
            dense = named["dense"]
        else:
            dense = sparse.new_zeros((sparse.shape[0], 0), dtype=torch.float32)
        logits = self.model(sparse, dense)
        return tuple(torch.sigmoid(logits[task]).to(torch.float32) for task in self.tasks)

    def example_inputs(self, batch: int = 4) -> tuple[Tensor, ...]:
        """A valid batch for ``forward``: ``batch`` rows of id 0 and dense zeros."""
        device = self._vocab_sizes.device
        out: list[Tensor] = []
        if self.num_sparse:
            out.append(torch.zeros(batch, self.num_sparse, dtype=torch.int64, device=device))
        if self.num_dense:
            out.append(torch.zeros(batch, self.num_dense, dtype=torch.float32, device=device))
        return tuple(out)

    def inputs_from(self, sparse: ArrayLike, dense: ArrayLike) -> tuple[Tensor, ...]:
        """The ``forward`` inputs from a ``(sparse, dense)`` pair; the one the module does not
        take may be ``None`` (or zero-width) and is dropped."""
        device = self._vocab_sizes.device
        out: list[Tensor] = []
        for name, value, dtype in (
            ("sparse", sparse, torch.int64),
            ("dense", dense, torch.float32),
        ):
            if name not in self.input_names:
                continue
            if value is None:
                raise ValueError(f"ServingModule: the model needs {name!r}, got None")
            tensor = torch.as_tensor(value)
            out.append(tensor.to(device=device, dtype=dtype))
        return tuple(out)


def export_model(
    model: MultiTaskModel,
    tasks: Sequence[str] | None,
    path: str | os.PathLike[str],
    format: str,
    *,
    example: tuple[ArrayLike, ArrayLike] | None = None,
) -> Path:
    """Writes ``model`` as a :class:`ServingModule` (probabilities of ``tasks``) to ``path``.

    ``format="onnx"`` uses ``torch.onnx.export`` (the torch.export-based exporter) with a
    dynamic batch dimension; inputs are named ``sparse``/``dense`` and outputs by task. The file is
    self-contained (weights inside) up to the 2 GB protobuf limit; a larger model also gets
    ``<path>.data`` next to it. ``format="torchscript"`` uses ``torch.jit.trace`` (deprecated
    in recent torch but working; its deprecation warning is silenced) and ``torch.jit.save``, with
    the task names stored in the archive. Exporter warnings and logs are silenced.

    The file is written to a temporary folder next to ``path`` and then moved into place, so a
    failed export leaves an existing file untouched and nothing behind. The model is traced in
    eval mode and its train/eval mode is restored afterwards.

    Args:
        model: the trained model.
        tasks: the tasks to output, in order; ``None`` for all of ``model.tasks``.
        path: the output file (its folder is created if needed).
        format: ``"onnx"`` or ``"torchscript"``.
        example: a ``(sparse, dense)`` batch to trace with (either may be ``None`` when the
            model has no such column); by default 4 rows of id 0 and dense zeros.

    Returns:
        ``path`` as a `Path`.

    Raises:
        ConfigError: unknown format, bad tasks, or (ONNX) ``onnx``/``onnxscript`` missing.

    Example:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from nomoretuning.models import FeatureConfig, SparseField, build_model
        >>> cfg = FeatureConfig((SparseField("uid", 10),), ("age",))
        >>> model = build_model("mmoe", cfg, ["click", "like"], num_experts=2, expert_dims=(4,),
        ...                     tower_dims=())
        >>> out = Path(tempfile.mkdtemp()) / "model.pt"
        >>> export_model(model, ["click", "like"], out, "torchscript").name
        'model.pt'
        >>> from nomoretuning.serving.exported import load_exported, parity
        >>> exported = load_exported(out, "torchscript")
        >>> probs = exported(sparse=[[1], [2], [500]], dense=[[0.5], [1.0], [2.0]])
        >>> exported.tasks, probs["like"].shape, probs["like"].dtype
        (('click', 'like'), (3,), dtype('float32'))
        >>> parity(model, ["click", "like"], out, "torchscript", torch.tensor([[1]]),
        ...        torch.ones(1, 1)) < 1e-6
        True
        >>> export_model(model, None, out, "pickle")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: export format 'pickle' is not supported; allowed: ['onnx', 'torchscript']
    """  # noqa: E501
    fmt = check_format(format)
    if fmt == "onnx":
        require("onnx", "onnxscript", what="ONNX export")
    target = Path(path)
    was_training = model.training
    workdir: Path | None = None
    try:
        serving = ServingModule(model, tasks)
        inputs = serving.example_inputs() if example is None else serving.inputs_from(*example)
        target.parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        )
        staged = workdir / target.name
        with _quiet(), torch.no_grad():
            if fmt == "onnx":
                _write_onnx(serving, inputs, staged)
            else:
                _write_torchscript(serving, inputs, staged)
        # Weights of a >2 GB ONNX model go to "<name>.data", which the graph names relatively.
        data = workdir / f"{target.name}.data"
        if data.exists():
            os.replace(data, target.parent / data.name)
        os.replace(staged, target)
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
        model.train(was_training)
        _forget_forward(model)
    return target


# --------------------------------------------------------------------------------- internals
def check_format(format: str) -> ExportFormat:
    if format not in FORMATS:
        raise ConfigError(f"export format {format!r} is not supported; allowed: {list(FORMATS)}")
    return cast(ExportFormat, format)


def check_tasks(model: MultiTaskModel, tasks: Sequence[str] | None) -> tuple[str, ...]:
    chosen = tuple(model.tasks) if tasks is None else tuple(tasks)
    if isinstance(tasks, str):
        raise ConfigError(f"tasks must be a list of task names, got the string {tasks!r}")
    if not chosen:
        raise ConfigError(f"export needs at least one task; the model has {list(model.tasks)}")
    for task in chosen:
        if task not in model.tasks:
            raise ConfigError(f"unknown task {task!r}; the model has {list(model.tasks)}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"tasks {list(chosen)} name a task twice")
    return chosen


def require(*modules: str, what: str) -> None:
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            raise ConfigError(f"{what} needs the {name!r} package: {_INSTALL_HINT}") from None


def model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _forget_forward(model: MultiTaskModel) -> None:
    """Drops the tensors a traced forward cached on the model (they belong to the trace)."""
    model._shared_rep = None
    model._gates = None
    for module in model.modules():
        if isinstance(module, FeatureEmbedding):
            module.clear()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silences the exporters' warnings and log records (a CLI user sees only the result)."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _write_onnx(serving: ServingModule, inputs: tuple[Tensor, ...], path: Path) -> None:
    batch = torch.export.Dim("batch")
    # ``forward(*inputs)``: the dynamic shapes of the one varargs parameter, one per input.
    dynamic_shapes = (tuple({0: batch} for _ in inputs),)
    torch.onnx.export(
        serving,
        inputs,
        str(path),
        input_names=list(serving.input_names),
        output_names=list(serving.tasks),
        dynamic_shapes=dynamic_shapes,
        external_data=False,
        verbose=False,
    )


def _write_torchscript(serving: ServingModule, inputs: tuple[Tensor, ...], path: Path) -> None:
    # jit.trace probes every attribute of every submodule with hasattr; the model's
    # ``shared_representation``/``gate_weights`` raise RuntimeError before a first forward, so
    # run one eagerly first (the cached tensors are dropped by export_model afterwards).
    serving(*inputs)
    widths = {"sparse": serving.num_sparse, "dense": serving.num_dense}
    meta = {
        "tasks": list(serving.tasks),
        "inputs": [[name, widths[name]] for name in serving.input_names],
    }
    # Saved without requires_grad, so a server's forward builds no autograd graph and its
    # outputs convert with .numpy(); the model's own flags are restored afterwards.
    trained = [p for p in serving.parameters() if p.requires_grad]
    try:
        for parameter in trained:
            parameter.requires_grad_(False)
        traced = torch.jit.trace(serving, inputs)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: json.dumps(meta)})
    finally:
        for parameter in trained:
            parameter.requires_grad_(True)
