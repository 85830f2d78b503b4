"""Learning-to-rank data: pairs, group-preserving batches, the SVMlight/LETOR loader, the LightGBM
lambdarank example and a synthetic search-log simulator with known trade-offs.

- `make_pairs`: (first, second) row indices with ``labels[first] > labels[second]`` in the same
  group, built with tensor arithmetic; optional uniform sampling per group and a row mask.
- `GroupedSplit`: a `TensorSplit` whose batches never split a group (query).
- `load_svmlight_ranking`: SVMlight/LETOR rows with ``qid:`` or a ``.query`` group-size file.
- `load_lambdarank_example`: LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset`.
- `make_search_logs`: synthetic search sessions with tasks ``pay``, ``amount``, ``relevance``
  (the NMT paper's Taobao setting), whose conflicts are set by documented knobs.
- `PairwiseSpec`: how a ranking dataset's tasks are trained and scored; both builders put one in
  ``metadata["objective"]``, and the trainer / command line call it to get the
  `nomoretuning.training.objectives.PairwiseObjective` (pairwise logistic loss, NDCG@k).

Example:
    >>> import torch
    >>> first, second = make_pairs(torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 1]))
    >>> first.tolist(), second.tolist()
    ([2, 0, 0], [1, 1, 2])
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from nomoretuning.data.batching import Batch, PreparedDataset, TensorSplit
from nomoretuning.errors import DataError
from nomoretuning.models.features import FeatureConfig

if TYPE_CHECKING:
    from nomoretuning.training.objectives import PairwiseObjective

__all__ = [
    "LAMBDARANK_FEATURES",
    "SEARCH_LOG_TASKS",
    "GroupedSplit",
    "PairwiseSpec",
    "RankingArrays",
    "load_lambdarank_example",
    "load_svmlight_ranking",
    "make_pairs",
    "make_search_logs",
]

LAMBDARANK_FEATURES = 300
"""Number of features of LightGBM's lambdarank example (file indices 1..300 -> f0..f299)."""

SEARCH_LOG_TASKS = ("pay", "amount", "relevance")
"""Tasks of `make_search_logs`, in the NMT paper's priority order."""

TensorLike = Tensor | np.ndarray | Sequence[float]


# --------------------------------------------------------------------------- pairs


def _as_vector(name: str, values: TensorLike, device: torch.device | None = None) -> Tensor:
    tensor = values if isinstance(values, Tensor) else torch.as_tensor(np.asarray(values))
    if device is not None:
        tensor = tensor.to(device)
    if tensor.dim() != 1:
        raise ValueError(f"make_pairs: {name} must be 1-D, got shape {tuple(tensor.shape)}")
    return tensor


def make_pairs(
    labels: TensorLike,
    groups: TensorLike | None = None,
    *,
    mask: TensorLike | None = None,
    max_pairs_per_group: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Index pairs ``(first, second)`` with ``labels[first] > labels[second]`` in the same group.

    Rows are sorted by (group, label); the rows with a lower label than row i in i's group are
    then one contiguous run, and all pairs are enumerated with ``repeat_interleave`` / ``arange``
    arithmetic (no per-pair or per-group Python). Equal labels form no pair and no pair crosses
    groups (``groups=None``: one group). ``mask`` (bool ``[N]``) keeps only the rows where it is
    True, e.g. the purchased rows for the ``amount`` task of `make_search_logs`.

    Sampling: with ``max_pairs_per_group=m``, each group keeps ``min(m, P_g)`` of its ``P_g`` valid
    pairs, drawn uniformly without replacement (every subset of that size equally likely): each
    pair gets a ``torch.rand`` key from ``generator`` and the m smallest keys of each group are
    kept. The same seeded generator gives the same pairs.

    Returns:
        Two int64 tensors on the labels' device, sorted by group (in group-id order) then by
        ``first``'s label.

    Example:
        >>> y = torch.tensor([1.0, 0.0, 0.0, 2.0]); g = torch.tensor([5, 5, 5, 5])
        >>> first, second = make_pairs(y, g, max_pairs_per_group=2,
        ...                            generator=torch.Generator().manual_seed(0))
        >>> len(first), bool((y[first] > y[second]).all())
        (2, True)
    """
    y = _as_vector("labels", labels)
    if y.dtype == torch.bool:
        y = y.to(torch.int64)
    if y.is_floating_point() and bool(torch.isnan(y).any()):
        raise ValueError("make_pairs: labels contain NaN; every row needs a label")
    device = y.device
    g: Tensor | None = None
    if groups is not None:
        g = _as_vector("groups", groups, device)
        if g.is_floating_point() or g.is_complex() or g.dtype == torch.bool:
            raise ValueError(f"make_pairs: groups must hold integer ids, got {g.dtype}")
        if g.shape != y.shape:
            raise ValueError(
                f"make_pairs: length mismatch (labels={y.shape[0]}, groups={g.shape[0]})"
            )
    if max_pairs_per_group is not None and (
        isinstance(max_pairs_per_group, bool)
        or not isinstance(max_pairs_per_group, int)
        or max_pairs_per_group < 1
    ):
        raise ValueError(
            f"make_pairs: max_pairs_per_group must be a positive integer or None, "
            f"got {max_pairs_per_group!r}"
        )
    rows: Tensor | None = None
    if mask is not None:
        keep = _as_vector("mask", mask, device)
        if keep.dtype != torch.bool or keep.shape != y.shape:
            raise ValueError(
                f"make_pairs: mask must be a bool tensor of length {y.shape[0]}, "
                f"got {keep.dtype} of shape {tuple(keep.shape)}"
            )
        rows = keep.nonzero().view(-1)
        y = y[rows]
        g = None if g is None else g[rows]

    n = y.shape[0]
    order = torch.argsort(y, stable=True)
    if g is not None:
        order = order[torch.argsort(g[order], stable=True)]
    y_sorted = y[order]
    new_group = torch.zeros(n, dtype=torch.bool, device=device)
    new_group[:1] = True
    new_label = new_group.clone()
    if n > 1:
        if g is not None:
            g_sorted = g[order]
            new_group[1:] = g_sorted[1:] != g_sorted[:-1]
        new_label[1:] = (y_sorted[1:] != y_sorted[:-1]) | new_group[1:]
    position = torch.arange(n, device=device)
    zero = torch.zeros_like(position)
    group_first = torch.cummax(torch.where(new_group, position, zero), 0).values
    label_first = torch.cummax(torch.where(new_label, position, zero), 0).values
    count = label_first - group_first  # rows of lower label in the same group
    first = torch.repeat_interleave(position, count)
    offset = torch.arange(first.shape[0], device=device) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count
    )
    second = torch.repeat_interleave(group_first, count) + offset

    if max_pairs_per_group is not None and first.shape[0] > 0:
        pair_group = (torch.cumsum(new_group.to(torch.int64), 0) - 1)[first]
        gen_device = generator.device if generator is not None else device
        keys = torch.rand(first.shape[0], generator=generator, device=gen_device).to(device)
        by_key = torch.argsort(keys)
        by_group = by_key[torch.argsort(pair_group[by_key], stable=True)]
        sizes = torch.bincount(pair_group)
        starts = torch.cumsum(sizes, 0) - sizes
        rank = torch.arange(first.shape[0], device=device) - starts[pair_group[by_group]]
        chosen = torch.sort(by_group[rank < max_pairs_per_group]).values
        first, second = first[chosen], second[chosen]

    first, second = order[first], order[second]
    if rows is not None:
        first, second = rows[first], rows[second]
    return first, second


# --------------------------------------------------------------------------- objective


@dataclass(frozen=True)
class PairwiseSpec:
    """How the tasks of a ranking dataset are trained and scored, stored by the builders in
    ``metadata["objective"]``: ``spec(tasks)`` returns the
    `nomoretuning.training.objectives.PairwiseObjective` for the selected tasks (the trainer and
    the command line call it; masks and gains of tasks not selected are dropped).

    Args:
        pair_masks: task -> ``"positive"`` (only rows with label > 0 form pairs).
        gains: task -> NDCG gain (``"exponential"`` when not named, ``"linear"`` for amounts).
        max_pairs_per_group: optional cap of sampled pairs per group and task in each batch.
        k: the cut-off of NDCG@k.

    Example:
        >>> objective = PairwiseSpec({"amount": "positive"}, {"amount": "linear"})(["pay"])
        >>> objective.tasks, objective.pair_masks, objective.k
        (('pay',), {}, 10)
    """

    pair_masks: Mapping[str, Literal["positive"]] = field(default_factory=dict)
    gains: Mapping[str, Literal["exponential", "linear"]] = field(default_factory=dict)
    max_pairs_per_group: int | None = None
    k: int = 10

    def __post_init__(self) -> None:
        cap = self.max_pairs_per_group
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError(f"max_pairs_per_group must be a positive integer or null, got {cap!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"ndcg_k must be a positive integer, got {self.k!r}")

    def __call__(self, tasks: Sequence[str]) -> PairwiseObjective:
        # The one reference from the data layer to training, made at call time: the dataset
        # names its objective, the training layer implements it.
        from nomoretuning.training.objectives import PairwiseObjective

        names = tuple(tasks)
        return PairwiseObjective(
            names,
            pair_masks={t: m for t, m in self.pair_masks.items() if t in names},
            max_pairs_per_group=self.max_pairs_per_group,
            k=self.k,
            gain={t: self.gains.get(t, "exponential") for t in names},
        )


# --------------------------------------------------------------------------- batching


class GroupedSplit(TensorSplit):
    """A `TensorSplit` whose batches never split a group (query): for pairwise losses.

    ``groups`` (``LongTensor[N]``) is required. Groups are taken in order of their first row
    (rows of a group in storage order), or in ``torch.randperm(G, generator=generator)`` order when
    shuffling; consecutive whole groups are packed into a batch while it holds at most
    ``batch_size`` rows, and a group larger than ``batch_size`` forms a batch on its own. Every row
    is in exactly one batch per epoch. ``drop_last`` drops the epoch's last batch when it holds
    fewer than ``batch_size`` rows. `num_batches` counts the batches of the unshuffled order (a
    shuffled epoch packs differently and may have a few more or fewer).

    Example:
        >>> split = GroupedSplit(torch.zeros(5, 0, dtype=torch.long), torch.randn(5, 2),
        ...                      {"relevance": torch.tensor([2.0, 0.0, 1.0, 0.0, 1.0])},
        ...                      torch.tensor([0, 0, 1, 1, 1]))
        >>> [b.groups.tolist() for b in split.batches(4, shuffle=False)]
        [[0, 0], [1, 1, 1]]
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        groups = self.groups
        if groups is None:
            raise ValueError("GroupedSplit: groups are required (one query/user id per row)")
        if groups.is_floating_point() or groups.dtype == torch.bool:
            raise ValueError(f"GroupedSplit: groups must hold integer ids, got {groups.dtype}")
        n = len(self)
        _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        position = torch.arange(n, device=groups.device)
        first_row = torch.full((counts.shape[0],), n, dtype=torch.int64, device=groups.device)
        first_row = first_row.scatter_reduce(0, inverse, position, reduce="amin")
        by_appearance = torch.argsort(first_row)
        group_rank = torch.argsort(by_appearance)
        self._rows = torch.argsort(group_rank[inverse], stable=True)
        sizes = counts[by_appearance].cpu().numpy().astype(np.int64)
        self._sizes: np.ndarray = sizes
        self._starts: np.ndarray = np.cumsum(sizes) - sizes

    @property
    def num_groups(self) -> int:
        """Number of distinct groups."""
        return int(self._sizes.size)

    @property
    def group_sizes(self) -> np.ndarray:
        """Rows per group, groups in order of first appearance."""
        return self._sizes.copy()

    def _epoch(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        n_groups = self._sizes.size
        if shuffle and n_groups > 0:
            device = generator.device if generator is not None else torch.device("cpu")
            perm = torch.randperm(n_groups, generator=generator, device=device).cpu().numpy()
        else:
            perm = np.arange(n_groups)
        sizes = self._sizes[perm]
        ends = np.cumsum(sizes)
        # position in self._rows of every row, groups in epoch order
        positions = np.repeat(self._starts[perm] - (ends - sizes), sizes) + np.arange(
            int(ends[-1]) if n_groups else 0
        )
        bounds: list[tuple[int, int]] = []
        group, start = 0, 0
        while group < n_groups:
            stop_group = int(np.searchsorted(ends, start + batch_size, side="right"))
            stop_group = max(stop_group, group + 1)  # an oversized group forms its own batch
            stop = int(ends[stop_group - 1])
            bounds.append((start, stop))
            group, start = stop_group, stop
        return positions, bounds

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """Batches per epoch in the unshuffled order (shuffled epochs may differ slightly)."""
        _, bounds = self._epoch(batch_size, False, None)
        if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < batch_size:
            return len(bounds) - 1
        return len(bounds)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """One epoch of batches made of whole groups (see the class docstring)."""
        positions, bounds = self._epoch(batch_size, shuffle, generator)
        if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < batch_size:
            bounds = bounds[:-1]
        rows = self._rows[torch.from_numpy(positions).to(self._rows.device)]
        for start, stop in bounds:
            yield self.batch(rows[start:stop])

    def subset(self, indices: Tensor | np.ndarray | Sequence[int] | slice) -> GroupedSplit:
        """A new `GroupedSplit` with the rows ``indices`` (keep whole groups to keep them whole)."""
        part = super().subset(indices)
        return GroupedSplit(part.sparse, part.dense, part.labels, part.groups)

    def to(self, device: torch.device | str) -> GroupedSplit:
        """Moves every tensor to ``device``."""
        b = self.full_batch().to(device)
        return GroupedSplit(b.sparse, b.dense, b.labels, b.groups)

    @staticmethod
    def from_numpy(
        sparse: np.ndarray,
        dense: np.ndarray,
        labels: Mapping[str, np.ndarray],
        groups: np.ndarray | None = None,
    ) -> GroupedSplit:
        """Builds a split from numpy arrays (int64 sparse and groups, float32 dense and labels)."""
        if groups is None:
            raise ValueError("GroupedSplit: groups are required (one query/user id per row)")
        s = TensorSplit.from_numpy(sparse, dense, labels, groups)
        return GroupedSplit(s.sparse, s.dense, s.labels, s.groups)


# --------------------------------------------------------------------------- SVMlight / LETOR


class RankingArrays(NamedTuple):
    """Rows of a learning-to-rank file: ``features`` float32 ``[N, F]`` (dense), ``relevance``
    float32 ``[N]``, ``groups`` int64 ``[N]`` (0..G-1 in order of first appearance)."""

    features: np.ndarray
    relevance: np.ndarray
    groups: np.ndarray


def _read_group_sizes(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: group-size file not found; pass query_path= with one size a line")
    sizes: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            size = int(text)
        except ValueError:
            size = 0
        if size < 1:
            raise DataError(
                f"{path}: line {number} is {text!r}; a group-size file holds one positive "
                "integer (rows of one query) per line"
            )
        sizes.append(size)
    if not sizes:
        raise DataError(f"{path}: no group sizes; expected one positive integer per line")
    return np.asarray(sizes, dtype=np.int64)


def _first_appearance_codes(ids: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def load_svmlight_ranking(
    path: str | Path,
    *,
    query_path: str | Path | None = None,
    n_features: int | None = None,
    zero_based: bool | Literal["auto"] = "auto",
) -> RankingArrays:
    """Reads an SVMlight/LETOR ranking file: ``label [qid:Q] index:value ... [# comment]``.

    Groups come from, in this order: ``query_path`` (one group size per line, rows in file
    order, as LightGBM's ``.query`` files), else the ``qid:`` of every row (rows with the same
    qid form one group), else a sibling ``<path>.query`` file. Parsing uses scikit-learn's
    ``load_svmlight_file`` (imported here, so only this loader needs scikit-learn).

    Args:
        path: the SVMlight/LETOR file.
        query_path: optional group-size file.
        n_features: number of columns (default: the largest index in the file).
        zero_based: whether indices start at 0; ``"auto"`` (scikit-learn's rule: one-based
            unless an index 0 appears). LETOR and LightGBM's example are one-based.

    Raises:
        DataError: missing file, unparsable row, group sizes that do not sum to the row count,
            or no group information, with a one-line message naming the file.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "toy.txt"
        >>> _ = f.write_text("2 qid:9 1:0.5\\n0 qid:9 2:1\\n1 qid:4 1:1 2:1\\n")
        >>> data = load_svmlight_ranking(f)
        >>> data.features.shape, data.relevance.tolist(), data.groups.tolist()
        ((3, 2), [2.0, 0.0, 1.0], [0, 0, 1])
    """
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError:  # pragma: no cover - scikit-learn is a test dependency
        raise ImportError(
            "load_svmlight_ranking needs scikit-learn to parse SVMlight files: "
            "pip install scikit-learn"
        ) from None
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: file not found; pass the path of an SVMlight/LETOR ranking file")
    try:
        X, y, qid = load_svmlight_file(
            str(file),
            n_features=n_features,
            dtype=np.float32,
            zero_based=zero_based,
            query_id=True,
        )
    except ValueError as error:
        message = str(error).replace("\n", " ")
        raise DataError(
            f"{file}: not a valid SVMlight/LETOR file ({message}); expected lines "
            "'label [qid:ID] index:value ...'"
        ) from None
    n = int(X.shape[0])
    if n == 0:
        raise DataError(f"{file}: no rows; expected lines 'label [qid:ID] index:value ...'")
    relevance = np.asarray(y, dtype=np.float32)
    if not np.isfinite(relevance).all():
        raise DataError(f"{file}: relevance labels must be finite numbers")
    sizes_file = Path(query_path) if query_path is not None else None
    if sizes_file is None and len(qid) == 0:
        sibling = file.with_name(file.name + ".query")
        if not sibling.is_file():
            raise DataError(
                f"{file}: no query ids (no 'qid:' and no {sibling.name}); pass query_path= "
                "with one group size per line"
            )
        sizes_file = sibling
    if sizes_file is not None:
        sizes = _read_group_sizes(sizes_file)
        if int(sizes.sum()) != n:
            raise DataError(
                f"{sizes_file}: group sizes sum to {int(sizes.sum())} but {file.name} has {n} "
                "rows; the file needs one group size per line, in row order"
            )
        groups = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
    else:
        if len(qid) != n:
            raise DataError(
                f"{file}: {n - len(qid)} of {n} rows lack 'qid:'; give every row a qid or pass "
                "query_path="
            )
        groups = _first_appearance_codes(np.asarray(qid))
    features = np.asarray(X.toarray(), dtype=np.float32)
    return RankingArrays(features, relevance, groups)


def _check_tasks(tasks: Sequence[str] | str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    if tasks is None:
        return available
    names = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    unknown = [t for t in names if t not in available]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"tasks must be distinct names among {list(available)}, got {list(names)}")
    return names


def _group_split(groups: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Row indices of each part, whole groups per part, groups drawn with a seeded permutation."""
    ids = np.unique(groups)
    perm = np.random.default_rng(seed).permutation(ids)
    counts = [round(ids.size * f) for f in fractions[1:]]
    cuts = np.cumsum([ids.size - sum(counts), *counts])[:-1]
    return [np.flatnonzero(np.isin(groups, part)) for part in np.split(perm, cuts)]


def _check_fraction(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and 0.0 <= value < 1.0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def load_lambdarank_example(
    directory: str | Path,
    *,
    valid_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
    tasks: Sequence[str] | None = None,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
) -> PreparedDataset:
    """LightGBM's ``examples/lambdarank`` (real data) as a `PreparedDataset` of `GroupedSplit`s.

    Reads ``rank.train`` / ``rank.test`` with their ``.query`` group-size files (300 features,
    one-based indices 1..300 -> dense columns ``f0 .. f299``, graded relevance 0..4 as task
    ``relevance``). The validation split is ``round(valid_fraction * 201)`` whole training
    queries chosen by ``numpy.random.default_rng(seed)``; the test split is ``rank.test``.
    With ``standardize``, features are centred and scaled with the training part's mean and
    standard deviation (constant columns are only centred). Group ids are the query's position
    in its file (train and valid share ``rank.train``'s numbering).

    ``metadata["objective"]`` is a `PairwiseSpec` (pairwise logistic loss on all pairs, or
    ``max_pairs_per_group`` sampled ones per query and batch; NDCG@``ndcg_k`` with exponential
    gain), so the trainer and the command line train it as a ranking task.

    Example:
        >>> ds = load_lambdarank_example("../shared/data/lambdarank-example")  # doctest: +SKIP
        >>> len(ds.train) + len(ds.valid), len(ds.test)  # doctest: +SKIP
        (3005, 768)
    """
    names = _check_tasks(tasks, ("relevance",))
    fraction = _check_fraction("valid_fraction", valid_fraction)
    objective = PairwiseSpec(max_pairs_per_group=max_pairs_per_group, k=ndcg_k)
    root = Path(directory)
    if not root.is_dir():
        raise DataError(
            f"{root}: directory not found; pass the folder holding rank.train, rank.test and "
            "their .query files"
        )
    train = load_svmlight_ranking(
        root / "rank.train",
        query_path=root / "rank.train.query",
        n_features=LAMBDARANK_FEATURES,
        zero_based=False,
    )
    test = load_svmlight_ranking(
        root / "rank.test",
        query_path=root / "rank.test.query",
        n_features=LAMBDARANK_FEATURES,
        zero_based=False,
    )
    fit_rows, valid_rows, _ = _group_split(train.groups, (1.0 - fraction, fraction, 0.0), seed)
    features = train.features
    test_features = test.features
    if standardize:
        mean = features[fit_rows].mean(axis=0)
        std = features[fit_rows].std(axis=0)
        std[std == 0] = 1.0
        features = (features - mean) / std
        test_features = (test_features - mean) / std

    def split(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> GroupedSplit:
        return GroupedSplit.from_numpy(
            np.zeros((x.shape[0], 0), dtype=np.int64), x, {t: y for t in names}, g
        )

    return PreparedDataset(
        name="lambdarank",
        tasks=names,
        features=FeatureConfig(dense=tuple(f"f{j}" for j in range(LAMBDARANK_FEATURES))),
        train=split(features[fit_rows], train.relevance[fit_rows], train.groups[fit_rows]),
        valid=split(features[valid_rows], train.relevance[valid_rows], train.groups[valid_rows]),
        test=split(test_features, test.relevance, test.groups),
        description=(
            f"real data: LightGBM examples/lambdarank from {root} (rank.train: "
            f"{int(train.groups.max()) + 1} queries, {train.features.shape[0]} rows; rank.test: "
            f"{int(test.groups.max()) + 1} queries, {test.features.shape[0]} rows); validation = "
            f"{fraction:g} of the training queries (seed {seed})"
        ),
        metadata={
            "valid_fraction": fraction,
            "standardized": standardize,
            "objective": objective,
        },
    )


# --------------------------------------------------------------------------- simulator


def make_search_logs(
    n_queries: int = 2000,
    items_per_query: int | tuple[int, int] = 20,
    *,
    seed: int = 0,
    conflict: float = 0.5,
    price_effect: float = 1.0,
    n_features: int = 8,
    signal: float = 2.0,
    pay_rate: float = 0.05,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    tasks: Sequence[str] | None = None,
    max_pairs_per_group: int | None = None,
    ndcg_k: int = 10,
) -> PreparedDataset:
    """Synthetic search logs (the NMT paper's Taobao setting) with documented trade-offs.

    SYNTHETIC data. For query q and each of its items (a row):

    - features ``x ~ N(0, I_d)`` (columns ``x0 .. x{d-1}``) and ``log_price ~ N(0, 1)``;
    - purchase utility ``u_pay = signal * w_pay . x - price_effect * log_price`` and
      ``pay ~ Bernoulli(sigmoid(u_pay + b_q + logit(pay_rate)))`` with a query intent
      ``b_q ~ N(0, 0.5^2)``;
    - ``amount`` = payment amount ``exp(3 + 0.8 * log_price + 0.3 * noise)`` if purchased,
      else exactly 0: it rises with the price that lowers the purchase probability;
    - relevance latent ``z = signal * w_rel . x + N(0, 1)`` cut at its 40 / 70 / 90 % quantiles
      into graded ``relevance`` 0..3, with ``w_rel = cos(pi c) w_pay + sin(pi c) u`` (unit
      vectors, ``u`` orthogonal to ``w_pay``, ``c = conflict``).

    Trade-offs, exactly: ``corr(u_pay, z) = signal^2 cos(pi c) / sqrt((signal^2 +
    price_effect^2)(signal^2 + 1))``: relevance agrees with purchase at ``conflict=0``, is
    unrelated at 0.5 and opposed at 1 (``metadata["utility_correlation"]``). ``price_effect`` sets
    the pay-amount conflict: ``corr(u_pay, log amount) = -0.8 price_effect / sqrt((signal^2 +
    price_effect^2) * 0.73)`` (before selecting the purchases).

    Amount encoding: the ``amount`` label is the amount for purchased rows and 0 otherwise, so
    the purchased rows are exactly ``amount > 0``. As in the paper (pairs of high- vs low-value
    transactions), amount pairs are formed among purchased rows only:
    ``make_pairs(amount, groups, mask=amount > 0)`` (``metadata["pair_masks"]["amount"]`` is
    ``"positive"``: rows with a label > 0).

    Objective: ``metadata["objective"]`` is a `PairwiseSpec` (pairwise logistic loss per task,
    amount pairs among purchases, all pairs or ``max_pairs_per_group`` sampled ones per query and
    batch; NDCG@``ndcg_k`` with exponential gain for pay and relevance, linear gain for amount).

    Splits: whole queries, ``numpy.random.default_rng(seed)`` permutation cut by ``split``.
    Every split is a `GroupedSplit` with ``sparse`` ``[N, 0]``; groups are query ids.
    ``metadata["true_utility"][split]`` holds ``pay`` (``u_pay``) and ``relevance`` (``z``
    without its noise) per row.

    Args:
        n_queries: number of queries (search sessions).
        items_per_query: items shown per query, or an inclusive ``(low, high)`` range drawn
            uniformly per query.
        seed: seed of everything.
        conflict: in [0, 1], the angle between ``w_pay`` and ``w_rel`` is ``conflict * 180``
            degrees.
        price_effect: >= 0, how much a higher price lowers the purchase utility.
        n_features: dimension d of ``x``.
        signal: scale of the feature utilities.
        pay_rate: base purchase rate (its logit is the bias; the realised rate is higher).
        split: (train, valid, test) fractions of queries.
        tasks: subset of ``("pay", "amount", "relevance")`` in priority order (default all).
        max_pairs_per_group: optional cap of sampled training pairs per query, batch and task.
        ndcg_k: the cut-off of the NDCG@k metric.

    Example:
        >>> ds = make_search_logs(100, 10, seed=0)
        >>> ds.tasks, len(ds.train), ds.features.num_dense
        (('pay', 'amount', 'relevance'), 800, 9)
        >>> y = ds.train.labels
        >>> bool(((y["amount"] > 0) == (y["pay"] == 1)).all())
        True
    """
    names = _check_tasks(tasks, SEARCH_LOG_TASKS)
    if isinstance(n_queries, bool) or not isinstance(n_queries, int) or n_queries < 1:
        raise ValueError(f"n_queries must be a positive integer, got {n_queries!r}")
    low, high = (
        (items_per_query, items_per_query)
        if isinstance(items_per_query, int)
        else tuple(items_per_query)
    )
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise ValueError(
            f"items_per_query must be a positive integer or a (low, high) range, "
            f"got {items_per_query!r}"
        )
    if not (isinstance(conflict, int | float) and 0.0 <= conflict <= 1.0):
        raise ValueError(f"conflict must be in [0, 1], got {conflict!r}")
    if not (isinstance(price_effect, int | float) and 0.0 <= price_effect < math.inf):
        raise ValueError(f"price_effect must be a finite number >= 0, got {price_effect!r}")
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 2:
        raise ValueError(f"n_features must be an integer >= 2, got {n_features!r}")
    if not (isinstance(signal, int | float) and 0.0 < signal < math.inf):
        raise ValueError(f"signal must be a finite number > 0, got {signal!r}")
    if not (isinstance(pay_rate, int | float) and 0.0 < pay_rate < 1.0):
        raise ValueError(f"pay_rate must be in (0, 1), got {pay_rate!r}")
    fractions = tuple(float(f) for f in split)
    if (
        len(fractions) != 3
        or any(not math.isfinite(f) or f < 0 for f in fractions)
        or abs(sum(fractions) - 1.0) > 1e-6
        or fractions[0] <= 0
    ):
        raise ValueError(
            f"split must be three fractions >= 0 (train, valid, test) summing to 1, got {split!r}"
        )
    masks: dict[str, Literal["positive"]] = {"amount": "positive"} if "amount" in names else {}
    objective = PairwiseSpec(
        pair_masks=masks,
        gains={"amount": "linear"},
        max_pairs_per_group=max_pairs_per_group,
        k=ndcg_k,
    )

    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((n_features, 2)))
    w_pay = basis[:, 0]
    angle = math.pi * float(conflict)
    w_rel = math.cos(angle) * basis[:, 0] + math.sin(angle) * basis[:, 1]
    sizes = rng.integers(low, high + 1, size=n_queries)
    groups = np.repeat(np.arange(n_queries, dtype=np.int64), sizes)
    n = int(groups.size)
    x = rng.standard_normal((n, n_features))
    log_price = rng.standard_normal(n)
    intent = rng.normal(0.0, 0.5, size=n_queries)[groups]
    u_pay = signal * (x @ w_pay) - price_effect * log_price
    bias = math.log(pay_rate / (1.0 - pay_rate))
    pay = (rng.random(n) < 1.0 / (1.0 + np.exp(-(u_pay + intent + bias)))).astype(np.float32)
    amount = np.exp(3.0 + 0.8 * log_price + 0.3 * rng.standard_normal(n)) * pay
    u_rel = signal * (x @ w_rel)
    latent = u_rel + rng.standard_normal(n)
    scale = math.sqrt(signal**2 + 1.0)
    cuts = [scale * statistics.NormalDist().inv_cdf(q) for q in (0.4, 0.7, 0.9)]
    relevance = np.searchsorted(np.asarray(cuts), latent).astype(np.float32)

    dense = np.concatenate([x, log_price[:, None]], axis=1).astype(np.float32)
    all_labels = {"pay": pay, "amount": amount.astype(np.float32), "relevance": relevance}
    parts = dict(
        zip(("train", "valid", "test"), _group_split(groups, fractions, seed), strict=True)
    )
    splits: dict[str, GroupedSplit] = {}
    truth: dict[str, dict[str, Tensor]] = {}
    for name, rows in parts.items():
        splits[name] = GroupedSplit.from_numpy(
            np.zeros((rows.size, 0), dtype=np.int64),
            dense[rows],
            {t: all_labels[t][rows] for t in names},
            groups[rows],
        )
        truth[name] = {
            "pay": torch.from_numpy(u_pay[rows].astype(np.float32)),
            "relevance": torch.from_numpy(u_rel[rows].astype(np.float32)),
        }
    corr_rel = signal**2 * math.cos(angle) / math.sqrt((signal**2 + price_effect**2) * scale**2)
    corr_amount = -0.8 * price_effect / math.sqrt((signal**2 + price_effect**2) * 0.73)
    return PreparedDataset(
        name="search_logs",
        tasks=names,
        features=FeatureConfig(dense=(*(f"x{j}" for j in range(n_features)), "log_price")),
        train=splits["train"],
        valid=splits["valid"],
        test=splits["test"],
        description=(
            f"synthetic search logs: {n_queries} queries, {n} items, conflict={conflict:g}, "
            f"price_effect={price_effect:g}, seed={seed}"
        ),
        metadata={
            "conflict": float(conflict),
            "price_effect": float(price_effect),
            "utility_correlation": {"pay_relevance": corr_rel, "pay_amount": corr_amount},
            "pair_masks": masks,
            "objective": objective,
            "true_utility": truth,
            "weights": {"pay": w_pay, "relevance": w_rel},
        },
    )
