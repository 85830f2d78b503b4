"""Config sections into objects: every registered method builds a combiner, datasets get their
path and seed, the objective is the dataset's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import nomoretuning as nt
from nomoretuning.cli import builders
from nomoretuning.cli.builders import build_combiner, build_dataset, build_model, build_objective
from nomoretuning.cli.config import DataSection, MethodSection, ModelSection
from nomoretuning.cli.registry import COMPARED_METHODS, DatasetEntry
from nomoretuning.data import make_synthetic
from nomoretuning.data.batching import PreparedDataset
from nomoretuning.errors import ConfigError

TASKS = ("click", "like")


@pytest.fixture(scope="module")
def dataset() -> PreparedDataset:
    return make_synthetic(400, seed=0)


@pytest.mark.parametrize("label", COMPARED_METHODS)
def test_every_registered_method_builds_a_combiner(label: str, dataset: PreparedDataset) -> None:
    tasks = ("click",) if label == "single_task" else TASKS
    model = build_model(ModelSection(name="shared_bottom"), dataset, tasks)
    base = MethodSection(weights=dict.fromkeys(tasks, 0.5))
    combiner = build_combiner(base.variant(label, tasks), tasks, model)
    assert set(combiner.tasks) == set(tasks)
    assert isinstance(combiner, nt.NMT) == label.endswith("nmt")


def test_the_dataset_builder_gets_the_path_and_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def load(path: str, *, seed: int = 0, tasks: tuple[str, ...] = ()) -> PreparedDataset:
        calls.append({"path": path, "seed": seed, "tasks": tasks})
        return make_synthetic(100, seed=seed)

    monkeypatch.setattr(builders, "DATASETS", {"census_income": DatasetEntry(load)})
    section = DataSection(dataset="census_income", path="a.csv", tasks=["income"])
    build_dataset(section, seed=4)
    assert calls == [{"path": "a.csv", "seed": 4, "tasks": ["income"]}]


def test_a_blank_data_option_is_refused_and_a_whitespace_separator_is_not(
    tmp_path: Path,
) -> None:
    rows = "".join(f"u{i % 5}\t{i % 2}\t{i // 2 % 2}\n" for i in range(80))
    (tmp_path / "log.tsv").write_text("user\tclick\tlike\n" + rows)
    options: dict[str, Any] = {"sparse": ["user"], "labels": ["click", "like"], "sep": "\t"}
    dataset = build_dataset(
        DataSection(dataset="table", path=str(tmp_path / "log.tsv"), options=options), 0
    )
    assert dataset.tasks == ("click", "like")
    with pytest.raises(ConfigError, match=r"data\.options\.valid: '' is blank"):
        build_dataset(DataSection(dataset="table", options={**options, "valid": ""}), 0)


def test_an_unknown_data_option_names_the_allowed_ones() -> None:
    section = DataSection(dataset="synthetic", options={"n_row": 10})
    with pytest.raises(
        ConfigError, match=r"data.options.n_row: unknown option; allowed: \[.*'n_rows'"
    ):
        build_dataset(section, seed=0)


def test_the_objective_is_the_datasets_own(
    dataset: PreparedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[PreparedDataset, tuple[str, ...]]] = []

    def objective_for(data: PreparedDataset, tasks: tuple[str, ...]) -> str:
        asked.append((data, tuple(tasks)))
        return "the dataset's objective"

    monkeypatch.setattr(builders, "objective_for", objective_for)
    assert build_objective(dataset, TASKS) == "the dataset's objective"
    assert asked == [(dataset, TASKS)]
