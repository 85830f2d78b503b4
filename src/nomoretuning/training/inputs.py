"""What a user hands the trainer must agree on the tasks: every task the combiner weighs is a
task of the dataset and, for the library's models, an output of the model."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from nomoretuning.core.base import LossCombiner
from nomoretuning.errors import ConfigError
from nomoretuning.models.base import MultiTaskModel

__all__ = ["check_tasks"]


def check_tasks(
    model: nn.Module, combiner: LossCombiner, dataset_tasks: Sequence[str], dataset_name: str
) -> tuple[str, ...]:
    """The combiner's tasks, once each is found in the dataset and among the outputs of a
    `MultiTaskModel` (another module's outputs are checked at its first forward).

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
