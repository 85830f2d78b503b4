"""The names a config may use: datasets (with their builders) and methods (with their compositions).

Every part of the command line that needs these names reads them here: config validation, the
dataset builder, the protocols and their error messages.

Example:
    >>> DATASETS["search_logs"].ranking, DATASETS["census_income"].ranking
    (True, False)
    >>> parse_method_label("famo+nmt"), method_label("nmt", "emtl")
    (('nmt', 'famo'), 'emtl+nmt')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from nomoretuning import data
from nomoretuning.data import ranking
from nomoretuning.data.batching import PreparedDataset

__all__ = [
    "COMPARED_METHODS",
    "COMPOSITIONS",
    "DATASETS",
    "DEFAULT_COMPARED_METHODS",
    "INNER_METHODS",
    "METHODS",
    "RANKING_DATASETS",
    "DatasetEntry",
    "method_label",
    "parse_method_label",
]


@dataclass(frozen=True)
class DatasetEntry:
    """A ``data.dataset`` value: its builder, and whether it is a ranking dataset.

    A ranking dataset is trained with the pairwise objective (one score per item, NDCG); it runs
    ``compare.protocol: table3`` and a grid scored by its objective's selection metric.
    """

    builder: Callable[..., PreparedDataset]
    ranking: bool = False


DATASETS: Mapping[str, DatasetEntry] = MappingProxyType(
    {
        "census_income": DatasetEntry(data.load_census_income),
        "tiktok": DatasetEntry(data.load_tiktok),
        "qk_video": DatasetEntry(data.load_qk_video),
        "table": DatasetEntry(data.load_table),
        "synthetic": DatasetEntry(data.make_synthetic),
        "lambdarank": DatasetEntry(ranking.load_lambdarank_example, ranking=True),
        "letor": DatasetEntry(ranking.load_letor, ranking=True),
        "ranking_table": DatasetEntry(ranking.load_ranking_table, ranking=True),
        "search_logs": DatasetEntry(ranking.make_search_logs, ranking=True),
    }
)
"""Every ``data.dataset`` value, in the order error messages list them."""

RANKING_DATASETS: tuple[str, ...] = tuple(name for name, e in DATASETS.items() if e.ranking)
"""The datasets trained with the pairwise objective."""

METHODS = ("single_task", "equal", "fixed", "uncertainty", "famo", "emtl", "nmt")
"""Every ``method.name`` value."""

INNER_METHODS = ("equal", "famo", "emtl", "uncertainty")
"""The ``method.inner`` values: the combiners NMT composes with inside a stage."""

COMPOSITIONS = ("famo+nmt", "emtl+nmt")
"""The compositions ``compare.methods`` may name (NMT with that inner combiner)."""

COMPARED_METHODS = (*METHODS, *COMPOSITIONS)
"""Every ``compare.methods`` entry."""

DEFAULT_COMPARED_METHODS = ("equal", "nmt", "single_task", "famo", "emtl", *COMPOSITIONS)
"""``compare.methods`` when a config does not set it (the paper's Table 1 rows)."""


def method_label(name: str, inner: str | None) -> str:
    """The method's name in reports: ``famo+nmt`` for NMT with a FAMO inner combiner.

    Example:
        >>> method_label("nmt", "equal"), method_label("fixed", None)
        ('nmt', 'fixed')
    """
    if name == "nmt" and inner not in (None, "equal"):
        return f"{inner}+nmt"
    return name


def parse_method_label(label: str) -> tuple[str, str | None]:
    """``(method.name, method.inner)`` of a label, the inverse of `method_label`.

    Example:
        >>> parse_method_label("equal")
        ('equal', None)
    """
    if label.endswith("+nmt"):
        return "nmt", label.removesuffix("+nmt")
    return label, None
