"""Data: schemas, encoders fitted on train, CSV/Parquet readers, dataset builders, batching.

Every builder returns a `PreparedDataset` (train/valid/test `TensorSplit`s plus the model's
`FeatureConfig`); bad input raises `nomoretuning.errors.DataError` with a one-line message.
The readers and builders need pandas (``pip install 'nomoretuning[data]'``); importing this
package, batching, splits, the synthetic generator and the cache helpers need only torch and numpy.

Example:
    >>> import torch
    >>> from nomoretuning.data import make_synthetic
    >>> ds = make_synthetic(2_000, conflict=0.5, seed=0)
    >>> gen = torch.Generator().manual_seed(0)
    >>> batch = next(ds.train.batches(256, shuffle=True, generator=gen))
    >>> batch.sparse.shape, sorted(batch.labels)
    (torch.Size([256, 2]), ['click', 'like'])
"""

from nomoretuning.data.batching import Batch, PreparedDataset, TensorSplit
from nomoretuning.data.cache import (
    CACHE_ENV,
    CENSUS_INCOME_SHA256,
    CENSUS_INCOME_URL,
    cache_dir,
    download,
    download_census_income,
    find_census_income,
    sha256_file,
)
from nomoretuning.data.census import (
    CENSUS_COLUMNS,
    CENSUS_DENSE,
    CENSUS_EDUCATION_POSITIVE,
    CENSUS_TASKS,
    census_schema,
    load_census_income,
)
from nomoretuning.data.encoders import (
    OOV_INDEX,
    CategoricalEncoder,
    DenseScaler,
    FeatureEncoder,
    to_tokens,
)
from nomoretuning.data.prepare import binary_label, build_dataset, check_frame
from nomoretuning.data.qk_video import (
    QK_VIDEO_COLUMNS,
    QK_VIDEO_FEATURES,
    QK_VIDEO_TASKS,
    load_qk_video,
)
from nomoretuning.data.ranking import (
    LAMBDARANK_FEATURES,
    SEARCH_LOG_TASKS,
    GroupedSplit,
    PairwiseSpec,
    RankingArrays,
    load_lambdarank_example,
    load_letor,
    load_ranking_table,
    load_svmlight_ranking,
    make_pairs,
    make_search_logs,
)
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import split_indices, stem_split, train_test_split_indices
from nomoretuning.data.synthetic import make_synthetic
from nomoretuning.data.table import load_table
from nomoretuning.data.tiktok import TIKTOK_COLUMNS, TIKTOK_SPARSE, TIKTOK_TASKS, load_tiktok

__all__ = [
    "CACHE_ENV",
    "CENSUS_COLUMNS",
    "CENSUS_DENSE",
    "CENSUS_EDUCATION_POSITIVE",
    "CENSUS_INCOME_SHA256",
    "CENSUS_INCOME_URL",
    "CENSUS_TASKS",
    "LAMBDARANK_FEATURES",
    "OOV_INDEX",
    "QK_VIDEO_COLUMNS",
    "QK_VIDEO_FEATURES",
    "QK_VIDEO_TASKS",
    "SEARCH_LOG_TASKS",
    "TIKTOK_COLUMNS",
    "TIKTOK_SPARSE",
    "TIKTOK_TASKS",
    "Batch",
    "CategoricalEncoder",
    "DenseScaler",
    "FeatureEncoder",
    "GroupedSplit",
    "PairwiseSpec",
    "PreparedDataset",
    "RankingArrays",
    "Schema",
    "TensorSplit",
    "binary_label",
    "build_dataset",
    "cache_dir",
    "census_schema",
    "check_frame",
    "download",
    "download_census_income",
    "find_census_income",
    "load_census_income",
    "load_lambdarank_example",
    "load_letor",
    "load_qk_video",
    "load_ranking_table",
    "load_svmlight_ranking",
    "load_table",
    "load_tiktok",
    "make_pairs",
    "make_search_logs",
    "make_synthetic",
    "read_table",
    "sha256_file",
    "split_indices",
    "stem_split",
    "to_tokens",
    "train_test_split_indices",
]
