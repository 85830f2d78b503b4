"""What a user hands the trainer must agree on the tasks: every task the combiner weighs is a
task of the dataset and, for the library's models, an output of the model; any model's outputs
are checked as they come (`model_outputs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from nomoretuning.core.base import LossCombiner
from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.errors import ConfigError
from nomoretuning.models.base import MultiTaskModel

__all__ = ["check_splits", "check_tasks", "model_outputs"]


def check_tasks(
    model: nn.Module, combiner: LossCombiner, dataset_tasks: Sequence[str], dataset_name: str
) -> tuple[str, ...]:
    """The combiner's tasks, once each is found in the dataset and among the outputs of a
    `MultiTaskModel` (another module's outputs are checked as they come, `model_outputs`).

    Example:
        >>> import nomoretuning as nt
        >>> from nomoretuning.models import FeatureConfig, SparseField, SharedBottom
        >>> features = FeatureConfig([SparseField("user", 10)], ())
        >>> model = SharedBottom(features, ["click"], bottom_dims=(4,))
        >>> check_tasks(model, nt.EqualWeights(["click"]), ["click", "like"], "logs")
        ('click',)
        >>> check_tasks(model, nt.NMT(["click", "like"]), ["click", "like"], "logs")
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: task 'like' is not an output of the model ...

    Raises:
        ConfigError: a task missing from the dataset or the model, named.
    """
    missing = [t for t in combiner.tasks if t not in dataset_tasks]
    if missing:
        raise ConfigError(
            f"task {missing[0]!r} is not in dataset {dataset_name!r} (tasks: {list(dataset_tasks)})"
        )
    if isinstance(model, MultiTaskModel):
        absent = [t for t in combiner.tasks if t not in model.tasks]
        if absent:
            raise ConfigError(
                f"task {absent[0]!r} is not an output of the model ({type(model).__name__}, "
                f"outputs {list(model.tasks)}); build the model with every task the method weighs"
            )
    return tuple(combiner.tasks)


def model_outputs(outputs: Any, tasks: Sequence[str], rows: int) -> Mapping[str, Tensor]:
    """``outputs`` of ``model(sparse, dense)`` on ``rows`` rows, once they are what the trainer
    needs: a mapping with a logits tensor ``[rows]`` per task.

    Example:
        >>> import torch
        >>> model_outputs({"click": torch.zeros(3)}, ["click"], 3)["click"].shape
        torch.Size([3])
        >>> model_outputs({"click": torch.zeros(3, 1)}, ["click"], 3)
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: the model's output for task 'click' has shape [3, 1]; it must be one logit per row, [3] (squeeze the last dimension)

    Raises:
        ConfigError: naming what is wrong.
    """  # noqa: E501
    if not isinstance(outputs, Mapping):
        raise ConfigError(
            f"the model returned a {type(outputs).__name__}; it must return a dict "
            "{task: logits} (one tensor [batch] per task)"
        )
    for task in tasks:
        if task not in outputs:
            raise ConfigError(
                f"the model's outputs lack task {task!r} (it returned {sorted(outputs)}); "
                "return a logits tensor for every task the method weighs"
            )
        value = outputs[task]
        if not isinstance(value, Tensor) or tuple(value.shape) != (rows,):
            shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ConfigError(
                f"the model's output for task {task!r} has shape {shape}; it must be one logit "
                f"per row, [{rows}]"
                + (" (squeeze the last dimension)" if shape == [rows, 1] else "")
            )
    return outputs


def check_splits(dataset: PreparedDataset, tasks: Sequence[str], binary: bool) -> None:
    """Refuses a dataset the trainer cannot use: an empty split, or (``binary``) a task's label
    that is not 0 or 1. Splits held in tensors are checked; streamed ones check themselves.

    Example:
        >>> import torch
        >>> from nomoretuning.models import FeatureConfig
        >>> def split(y):
        ...     return TensorSplit(torch.zeros(len(y), 0, dtype=torch.long), torch.zeros(len(y), 1),
        ...                        {"click": torch.tensor(y)})
        >>> data = PreparedDataset("mine", ("click",), FeatureConfig((), ("x",)),
        ...                        split([0.0, 1.0]), split([0.0, 2.0]), split([1.0, 0.0]))
        >>> check_splits(data, ["click"], binary=True)
        Traceback (most recent call last):
        ...
        nomoretuning.errors.ConfigError: dataset 'mine': task 'click' has the label 2.0 in the valid split; a binary task's labels are 0 or 1

    Raises:
        ConfigError: naming the split (and the task and a bad label).
    """  # noqa: E501
    for part in ("train", "valid", "test"):
        split = getattr(dataset, part)
        if not isinstance(split, TensorSplit):
            continue
        if len(split) == 0:
            raise ConfigError(f"dataset {dataset.name!r}: the {part} split is empty")
        for task in tasks if binary else ():
            labels = split.labels[task]
            bad = labels[(labels != 0) & (labels != 1)]
            if bad.numel():
                raise ConfigError(
                    f"dataset {dataset.name!r}: task {task!r} has the label {float(bad[0])} in "
                    f"the {part} split; a binary task's labels are 0 or 1"
                )
