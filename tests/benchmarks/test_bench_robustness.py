"""The robustness benchmark's records: what one run of the matrix keeps."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_robustness as robustness

ROW, CELL = "synthetic c0.75", "shared_bottom small"


@pytest.fixture
def small_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small synthetic click logs (seconds per run) and no leftover options or cached data."""
    monkeypatch.setattr(robustness, "SYNTHETIC_ROWS", 20_000)
    monkeypatch.setattr(robustness, "_DATA", {})
    monkeypatch.setattr(robustness, "OVERRIDES", {})
    monkeypatch.setattr(robustness, "JOINT_FROM_NMT", True)


@pytest.mark.usefixtures("small_logs")
def test_nmt_records_keep_the_start_tests_measurement() -> None:
    records = [robustness.train(robustness.Run(ROW, CELL, "nmt", seed)) for seed in range(3)]
    compared = [r["start_comparison"] for r in records if "start_comparison" in r]
    assert compared, "the top stage beat its start on validation in none of the seeds"
    for comparison in compared:
        assert comparison["threshold"] == 2.0  # the default start_test
        assert comparison["standard_error"] > 0
        clears = comparison["difference"] >= 2.0 * comparison["standard_error"]
        assert comparison["kept_start"] is not clears
    joint = robustness.train(robustness.Run(ROW, CELL, "equal", 0))
    assert "start_comparison" not in joint  # no staged top task, nothing tested


@pytest.mark.usefixtures("small_logs")
def test_without_a_start_test_nmt_records_no_comparison() -> None:
    robustness.OVERRIDES["start_test"] = None
    records = [robustness.train(robustness.Run(ROW, CELL, "nmt", seed)) for seed in range(3)]
    assert all("start_comparison" not in r for r in records)


@pytest.mark.usefixtures("small_logs")
def test_an_nmt_job_gives_the_joint_training_of_its_seed_from_its_joint_start() -> None:
    nmt, joint = robustness.train_job(robustness.Run(ROW, CELL, "nmt", 1))
    trained = robustness.train(robustness.Run(ROW, CELL, "equal", 1))
    assert (nmt["method"], joint["method"]) == ("nmt", "equal")
    assert nmt == {**robustness.train(robustness.Run(ROW, CELL, "nmt", 1)), "wall_s": nmt["wall_s"]}
    assert joint["from_nmt_joint_start"] is True
    same = ("test", "valid", "epochs", "metric", "synthetic_rows")
    assert {k: joint[k] for k in same} == {k: trained[k] for k in same}


def test_the_matrix_trains_joint_training_only_when_it_cannot_read_it_off_nmt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = list(robustness._runs([ROW], ["centre"], range(2)))
    assert sorted({r.method for r in runs}) == ["nmt", "single"]
    assert robustness._job_keys(runs[-1])[1].endswith("|equal|1")
    monkeypatch.setattr(robustness, "JOINT_FROM_NMT", False)
    runs = list(robustness._runs([ROW], ["centre"], range(2)))
    assert sorted({r.method for r in runs}) == ["equal", "nmt", "single"]
    assert robustness._job_keys(runs[-1]) == [runs[-1].key]


def test_the_default_design_names_known_cells_and_small_models_on_the_ranking_row() -> None:
    assert set(robustness.DESIGN) == set(robustness.ROWS)
    for row, cells in robustness.DESIGN.items():
        assert set(cells) <= set(robustness.CELLS), row
        assert len(set(cells)) == len(cells), row
        assert cells[0] == "centre"
        assert "mmoe small" not in cells or row.startswith("search"), row  # the centre elsewhere
    ranking = robustness.DESIGN["search pay>amount>relevance"]
    models = {robustness.CELLS[c].get("model") for c in ranking} - {None}
    assert models == {"mmoe", "shared_bottom", "ple"}  # the centre is the single score
    assert not any("sizes" in robustness.CELLS[c] for c in ranking)
    runs = list(robustness._runs(["census income>education"], None, range(1)))
    assert [r.cell for r in runs[::2]] == list(robustness.DESIGN["census income>education"])


def test_the_random_combinations_change_two_or_more_factors_at_once() -> None:
    level_of = {c: f for f, levels in robustness.FACTORS.items() for c in levels}
    drawn = (*robustness.COMBINATIONS, *robustness.RANKING_COMBINATIONS)
    assert len(set(drawn)) == 6
    for name in drawn:
        parts = name.split("+")
        assert len(parts) >= 2 and len({level_of[p] for p in parts}) == len(parts), name
        merged = {k: v for p in parts for k, v in robustness.CELLS[p].items()}
        assert robustness.CELLS[name] == merged
    assert not any("model" in robustness.CELLS[c] for c in robustness.RANKING_COMBINATIONS)
    again = robustness.random_combinations(tuple(robustness.FACTORS), 3, seed=2026)
    assert again == robustness.COMBINATIONS  # one draw, the same on every machine
    for row, cells in robustness.DESIGN.items():
        ranking = robustness.ROWS[row]["data"] == "search"
        expected = robustness.RANKING_COMBINATIONS if ranking else robustness.COMBINATIONS
        assert cells[-3:] == expected, row


def _record(method: str, seed: int, top: float) -> dict[str, object]:
    return {"row": ROW, "cell": CELL, "method": method, "seed": seed, "test": {"click": top}}


def test_a_run_in_a_later_results_file_replaces_the_same_run(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(
        "\n".join(json.dumps(_record(m, 0, 0.6)) for m in ("single", "equal", "nmt")) + "\n\n"
    )
    second.write_text("\n".join(json.dumps(_record("nmt", s, x)) for s, x in ((0, 0.7), (1, 0.8))))
    records = robustness.read_records([first, second]).values()
    found = {(r["method"], r["seed"]): r["test"]["click"] for r in records}
    assert found == {("single", 0): 0.6, ("equal", 0): 0.6, ("nmt", 0): 0.7, ("nmt", 1): 0.8}


def test_a_missing_results_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"^--report .*missing.jsonl: no such file$"):
        robustness.read_records([tmp_path / "missing.jsonl"])


def test_an_architecture_cell_of_the_ranking_row_scores_each_task_with_its_own_tower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(robustness, "_DATA", {})
    run = robustness.Run("search pay>amount>relevance", "mmoe small", "single", 0)
    record, _, model = robustness.fit(run)
    assert type(model).__name__ == "MMoE"
    assert model.num_experts == robustness.SMALL["num_experts"]  # the small sizes
    assert record["metric"] == "ndcg" and set(record["test"]) == {"pay"}
