"""Learning-to-rank data: pairs, group-preserving batches, the SVMlight/LETOR loader, the LightGBM
lambdarank example and a synthetic search-log simulator with known trade-offs.

- `make_pairs` (`pairs`): (first, second) row indices with ``labels[first] > labels[second]`` in
  the same group; `nomoretuning.core.losses.make_pairs` (tensors only), taking numpy arrays and
  sequences as well.
- `GroupedSplit` (`grouped`): a `TensorSplit` whose batches never split a group (query).
- `load_svmlight_ranking` (`svmlight`): SVMlight/LETOR rows with ``qid:`` or a ``.query``
  group-size file.
- `load_letor` (`letor`): any SVMlight/LETOR train/test (and valid) files by path.
- `load_ranking_table` (`table`): a CSV/Parquet table with a query column, features and several
  label columns, as prioritized pairwise tasks.
- `load_lambdarank_example` (`lambdarank`): LightGBM's ``examples/lambdarank`` (real data) as a
  `PreparedDataset`.
- `make_search_logs` (`search_logs`): synthetic search sessions with tasks ``pay``, ``amount``,
  ``relevance`` (the NMT paper's Taobao setting), whose conflicts are set by documented knobs.
- `PairwiseSpec` (`spec`): how a ranking dataset's tasks are trained and scored, as plain data;
  both builders put one in ``metadata["objective"]``, and
  `nomoretuning.training.objectives.objective_for` builds the pairwise objective from it.

Example:
    >>> import torch
    >>> first, second = make_pairs(torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 1]))
    >>> first.tolist(), second.tolist()
    ([2, 0, 0], [1, 1, 2])
"""

from nomoretuning.data.ranking.grouped import GroupedSplit
from nomoretuning.data.ranking.lambdarank import LAMBDARANK_FEATURES, load_lambdarank_example
from nomoretuning.data.ranking.letor import load_letor
from nomoretuning.data.ranking.pairs import make_pairs
from nomoretuning.data.ranking.search_logs import SEARCH_LOG_TASKS, make_search_logs
from nomoretuning.data.ranking.spec import PairwiseSpec
from nomoretuning.data.ranking.svmlight import RankingArrays, load_svmlight_ranking
from nomoretuning.data.ranking.table import load_ranking_table

__all__ = [
    "LAMBDARANK_FEATURES",
    "SEARCH_LOG_TASKS",
    "GroupedSplit",
    "PairwiseSpec",
    "RankingArrays",
    "load_lambdarank_example",
    "load_letor",
    "load_ranking_table",
    "load_svmlight_ranking",
    "make_pairs",
    "make_search_logs",
]
