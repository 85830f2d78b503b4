"""Census-Income (KDD), the benchmark of the MMoE paper, from the raw UCI files.

Raw format: comma plus space separated, no header, 42 columns (`CENSUS_COLUMNS`), read with
``header=None, skipinitialspace=True, keep_default_na=False`` (``hisp_origin`` has a real category
spelled ``NA``; ``?`` is kept as its own category). A 43rd, leading integer column (a row id, as
in DeepCTR's ``census-income.sample``) is dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.checks import task_names
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.cache import CENSUS_INCOME_FILE, download_census_income, find_census_income
from nomoretuning.data.cache import cache_dir as _cache_dir
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.prepare import build_dataset, check_frame
from nomoretuning.data.readers import read_table
from nomoretuning.data.schema import Schema
from nomoretuning.data.splits import check_fractions, split_indices
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CENSUS_COLUMNS",
    "CENSUS_DENSE",
    "CENSUS_EDUCATION_POSITIVE",
    "CENSUS_READ_OPTIONS",
    "CENSUS_TASKS",
    "census_frame",
    "census_schema",
    "load_census_income",
]

CENSUS_COLUMNS: tuple[str, ...] = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex",
    "union_member", "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses",
    "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res", "det_hh_fam_stat",
    "det_hh_summ", "instance_weight", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same",
    "mig_prev_sunbelt", "num_emp", "fam_under_18", "country_father", "country_mother",
    "country_self", "citizenship", "own_or_self", "vet_question", "vet_benefits", "weeks_worked",
    "year", "income_50k",
)  # fmt: skip
"""The 42 raw columns, in file order."""

CENSUS_DENSE: tuple[str, ...] = (
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "stock_dividends",
    "num_emp",
    "weeks_worked",
)
"""The numeric columns, standardized. Every other column except ``instance_weight`` (a survey
weight, never a feature) and the selected tasks' label columns is sparse, including the coded
ones (``det_ind_code``, ``det_occ_code``, ``own_or_self``, ``vet_benefits``, ``year``)."""

CENSUS_TASKS: Mapping[str, str] = {
    "income": "income_50k",
    "marital": "marital_stat",
    "education": "education",
}
"""Task name -> the raw column that defines its label (excluded from the features when the task is
selected)."""

CENSUS_EDUCATION_POSITIVE: frozenset[str] = frozenset(
    {
        "Bachelors degree(BA AB BS)",
        "Masters degree(MA MS MEng MEd MSW MBA)",
        "Prof school degree (MD DDS DVM LLB JD)",
        "Doctorate degree(PhD EdD)",
    }
)
"""`education` task positives: a bachelor's degree or above (the US Census "bachelor's degree or
higher"). Associate degrees and "Some college but no degree" are negatives."""

_INCOME_POSITIVE = "50000+."
_INCOME_NEGATIVE = "- 50000."
_NOT_FEATURES = ("instance_weight",)


def census_schema(tasks: Sequence[str] = ("income", "marital")) -> Schema:
    """The feature/label schema for the selected tasks (labels are named after the tasks).

    Example:
        >>> s = census_schema(["income"])
        >>> "income_50k" in s.features, "marital_stat" in s.sparse, len(s.dense)
        (False, True, 7)
    """
    chosen = task_names(tasks, "census-income", available=tuple(CENSUS_TASKS), error=DataError)
    excluded = set(_NOT_FEATURES) | {CENSUS_TASKS[t] for t in chosen}
    sparse = [c for c in CENSUS_COLUMNS if c not in excluded and c not in CENSUS_DENSE]
    return Schema(sparse=sparse, dense=CENSUS_DENSE, labels=chosen)


CENSUS_READ_OPTIONS: Mapping[str, Any] = {
    "format": "csv",
    "sep": ",",
    "header": False,
    "skipinitialspace": True,
    "keep_default_na": False,
}
"""How the raw files are read (`read_table` / `read_table_chunks` keyword arguments)."""


def census_frame(
    raw: pd.DataFrame, tasks: Sequence[str], source: str, *, labels: bool = True
) -> pd.DataFrame:
    """Raw rows (42 unnamed columns, or 43 with a leading row id) as named columns, with a label
    column per task of `tasks` when `labels` (else none is derived: scoring needs no label).

    Raises:
        DataError: a wrong column count, or (with `labels`) an unknown ``income_50k`` value.
    """
    import pandas as pd

    if raw.shape[1] == len(CENSUS_COLUMNS) + 1 and pd.api.types.is_integer_dtype(
        raw.dtypes.iloc[0]
    ):
        raw = raw.iloc[:, 1:]  # a leading row id, as in DeepCTR's census-income.sample
    if raw.shape[1] != len(CENSUS_COLUMNS):
        raise DataError(
            f"{source}: expected {len(CENSUS_COLUMNS)} comma-separated columns (raw UCI "
            f"Census-Income KDD format), found {raw.shape[1]}; pass the raw "
            "census-income.data(.gz) or census-income.test(.gz) file"
        )
    raw = raw.set_axis(list(CENSUS_COLUMNS), axis=1)
    frame = raw.drop(columns=list(_NOT_FEATURES))
    if not labels:
        return frame
    if "income" in tasks:
        income = frame["income_50k"].astype("string").str.strip()
        known = income.isin([_INCOME_POSITIVE, _INCOME_NEGATIVE]).to_numpy(dtype=bool)
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise DataError(
                f"{source}: column 'income_50k' has value {str(raw['income_50k'].iloc[row])!r} "
                f"at data row {row + 1}; expected '{_INCOME_NEGATIVE}' or '{_INCOME_POSITIVE}', "
                "pass the raw UCI file"
            )
        frame["income"] = (income == _INCOME_POSITIVE).to_numpy(dtype=np.float32)
    if "marital" in tasks:
        marital = frame["marital_stat"].astype("string").str.strip()
        frame["marital"] = (marital == "Never married").to_numpy(dtype=np.float32)
    if "education" in tasks:
        education = frame["education"].astype("string").str.strip()
        positive = education.isin(sorted(CENSUS_EDUCATION_POSITIVE))
        frame["education"] = positive.to_numpy(dtype=np.float32)
    return frame


def _read(path: str | os.PathLike[str], tasks: tuple[str, ...]) -> pd.DataFrame:
    return census_frame(read_table(path, **CENSUS_READ_OPTIONS), tasks, str(path))


def load_census_income(
    path: str | os.PathLike[str] | None = None,
    *,
    test_path: str | os.PathLike[str] | None = None,
    tasks: Sequence[str] = ("income", "marital"),
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_count: int = 1,
    cache: str | os.PathLike[str] | None = None,
    download: bool = False,
    allow_single_class: bool = False,
) -> PreparedDataset:
    """Census-Income (KDD) as a `PreparedDataset`.

    Tasks (binary, choose any of them; default ``("income", "marital")`` as in MMoE):

    - ``income``: ``income_50k == "50000+."`` (6.2 % positive on the test file);
    - ``marital``: ``marital_stat == "Never married"`` (43 %);
    - ``education``: ``education`` in `CENSUS_EDUCATION_POSITIVE` (bachelor's or above).

    Schema: 7 dense columns (`CENSUS_DENSE`: age, wage_per_hour, capital_gains, capital_losses,
    stock_dividends, num_emp, weeks_worked), standardized on train; every other column is
    sparse, except ``instance_weight`` (never a feature) and the label column of each selected
    task (no leakage; e.g. ``education`` stays a feature unless the education task is selected).
    With the default tasks: 32 sparse fields. No group ids. Vocabularies are fitted on the
    training split only (index 0 = OOV, see `nomoretuning.data.encoders`).

    Args:
        path: the raw file. None: look in the cache (`find_census_income`), downloading it
            first if `download` is true.
        test_path: an official test file. Given, `path` (e.g. ``census-income.data.gz``) is split
            into train/valid in the ratio ``split[0]:split[1]`` and `test_path` is the test split.
            Otherwise `path` is split into train/valid/test by `split`.
        tasks: which tasks, in priority order.
        split: (train, valid, test) fractions, summing to 1.
        seed: seed of the split (``numpy.random.default_rng``).
        min_count: minimum training count of a kept category.
        cache: cache directory for the lookup/download (default: `cache_dir()`).
        download: download the test split into the cache when it is not there.
        allow_single_class: warn instead of raising when a task has one class in a split.

    Example:
        >>> ds = load_census_income("../shared/data/census-income-kdd/census-income.test.gz")
        ... # doctest: +SKIP
        >>> ds.tasks, len(ds.train) + len(ds.valid) + len(ds.test)  # doctest: +SKIP
        (('income', 'marital'), 99762)
    """
    where = "census-income" if path is None else str(path)
    chosen = task_names(tasks, where, available=tuple(CENSUS_TASKS), error=DataError)
    fractions = check_fractions(split)
    if path is None:
        found = find_census_income(cache)
        if found is None and download:
            found = download_census_income(cache)
        if found is None:
            raise DataError(
                f"{_cache_dir(cache)}: no {CENSUS_INCOME_FILE} found; pass path= (data.path), "
                "set NOMORETUNING_CACHE to the folder holding it, or pass download=True "
                "(data.options.download: true)"
            )
        path = found
    schema = census_schema(chosen)
    frame = check_frame(_read(path, chosen), schema, str(path))
    source = str(path)
    if test_path is None:
        train, valid, test = split_indices(len(frame), fractions, seed)
        how = f"split {fractions} with seed {seed}"
    else:
        import pandas as pd

        test_frame = check_frame(_read(test_path, chosen), schema, str(test_path))
        share = fractions[1] / (fractions[0] + fractions[1])
        train, valid, _ = split_indices(len(frame), (1.0 - share, share, 0.0), seed)
        test = np.arange(len(frame), len(frame) + len(test_frame), dtype=np.int64)
        frame = pd.concat([frame, test_frame], ignore_index=True)
        source = f"{path} + {test_path}"
        how = f"train/valid split {1.0 - share:.3f}/{share:.3f} with seed {seed}, test {test_path}"
    return build_dataset(
        frame,
        {"train": train, "valid": valid, "test": test},
        schema,
        name="census-income",
        description=f"Census-Income (KDD) from {path}; tasks {', '.join(chosen)}; {how}",
        source=source,
        min_count=min_count,
        allow_single_class=allow_single_class,
        input_format=InputFormat("census_income"),
    )
