"""The robustness benchmark's records: what one run of the matrix keeps."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_robustness as robustness
import robustness_design as design

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
    level_of = {c: f for f, levels in design.FACTORS.items() for c in levels}
    drawn = (*design.COMBINATIONS, *design.RANKING_COMBINATIONS)
    assert len(set(drawn)) == 6
    for name in drawn:
        parts = name.split("+")
        assert len(parts) >= 2 and len({level_of[p] for p in parts}) == len(parts), name
        merged = {k: v for p in parts for k, v in robustness.CELLS[p].items()}
        assert robustness.CELLS[name] == merged
    assert not any("model" in robustness.CELLS[c] for c in design.RANKING_COMBINATIONS)
    again = design.random_combinations(tuple(design.FACTORS), 3, seed=2026)
    assert again == design.COMBINATIONS  # one draw, the same on every machine
    for row, cells in robustness.DESIGN.items():
        ranking = robustness.ROWS[row]["data"] == "search"
        expected = design.RANKING_COMBINATIONS if ranking else design.COMBINATIONS
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


def _sized(row: str, seed: int, queries: list[int] | None) -> dict[str, object]:
    size = {} if queries is None else {"search_queries": queries}
    return {"row": row, "cell": "centre", "method": "nmt", "seed": seed, **size}


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


SEARCH = "search pay>amount>relevance"


def test_a_row_on_other_data_in_a_later_file_replaces_every_earlier_run_of_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = [_sized(SEARCH, s, None) for s in range(5)] + [_sized(ROW, s, None) for s in range(3)]
    later = [_sized(SEARCH, s, [1600, 200, 5000]) for s in range(3)]
    files = [_write(tmp_path / "a.jsonl", earlier), _write(tmp_path / "b.jsonl", later)]
    records = robustness.read_records(files).values()
    kept = sorted((r["row"], r["seed"], "search_queries" in r) for r in records)
    assert kept == [(SEARCH, s, True) for s in range(3)] + [(ROW, s, False) for s in range(3)]
    assert f"{SEARCH} on other data" in capsys.readouterr().out
    same = robustness.read_records([files[1], _write(tmp_path / "c.jsonl", later[:1])])
    assert len(same) == 3  # the same data: run by run, as before


def test_a_results_file_mixing_a_rows_data_is_refused_in_one_line(tmp_path: Path) -> None:
    mixed = _write(tmp_path / "a.jsonl", [_sized(SEARCH, 0, None), _sized(SEARCH, 1, [9, 1, 1])])
    with pytest.raises(SystemExit, match=f"^{mixed}: {SEARCH} has runs on different data"):
        robustness.read_records([mixed])
    records = [{**_record(m, 0, 0.6), "synthetic_rows": rows} for m, rows in METHOD_ROWS]
    with pytest.raises(SystemExit, match=f"^{ROW}: its records mix data sizes"):
        robustness.report(records, None, [ROW], [CELL])


METHOD_ROWS = (("single", 20_000), ("equal", 20_000), ("nmt", 200_000))


def test_resuming_a_results_file_on_other_data_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "results.jsonl", [_sized(SEARCH, 0, [1600, 200, 200])])
    argv = ["bench", "--rows", "search", "--output", str(tmp_path), "--resume"]
    monkeypatch.setattr(sys, "argv", argv)
    for name in ("SEARCH_QUERIES", "CENSUS_SPLIT", "SYNTHETIC_ROWS", "JOINT_FROM_NMT"):
        monkeypatch.setattr(robustness, name, getattr(robustness, name))  # main sets them
    with pytest.raises(SystemExit, match=r"results.jsonl holds search .* on other data"):
        robustness.main()


def test_the_search_rows_splits_have_the_queries_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(robustness, "_DATA", {})
    monkeypatch.setattr(robustness, "SEARCH_QUERIES", (80, 10, 30))
    data = robustness._dataset(SEARCH)
    queries = [len(set(part.groups.tolist())) for part in (data.train, data.valid, data.test)]
    assert queries == [80, 10, 30]
    assert robustness.data_fields(SEARCH) == {"search_queries": [80, 10, 30]}


@pytest.mark.parametrize("text", ["1600,200", "1600,0,200", "a,b,c", "1600,200,2.5"])
def test_bad_split_sizes_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(SystemExit, match=r"^--search-queries .*: give three positive numbers"):
        robustness.common.three_numbers(text, int, "--search-queries", "1600,200,200")


def test_a_missing_results_file_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"^--report .*missing.jsonl: no such file$"):
        robustness.read_records([tmp_path / "missing.jsonl"])


def test_an_architecture_cell_of_the_ranking_row_scores_each_task_with_its_own_tower(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(robustness, "_DATA", {})
    monkeypatch.setattr(robustness, "SEARCH_QUERIES", (400, 50, 50))
    run = robustness.Run("search pay>amount>relevance", "mmoe small", "single", 0)
    record, _, model = robustness.fit(run)
    assert type(model).__name__ == "MMoE"
    assert model.num_experts == robustness.SMALL["num_experts"]  # the small sizes
    assert record["metric"] == "ndcg" and set(record["test"]) == {"pay"}


def test_the_synthetic_rows_differ_only_in_their_lower_tasks_labels() -> None:
    from nomoretuning.data import make_synthetic

    logs = [make_synthetic(5_000, conflict=c, seed=0) for c in (0.25, 0.5, 0.75)]
    top, lower = logs[0].tasks
    for other in logs[1:]:
        for split in ("train", "valid", "test"):
            mine, theirs = getattr(logs[0], split), getattr(other, split)
            assert np.array_equal(mine.labels[top], theirs.labels[top])
            assert np.array_equal(mine.dense, theirs.dense)
            assert np.array_equal(mine.sparse, theirs.sparse)
            assert not np.array_equal(mine.labels[lower], theirs.labels[lower])


SYNTHETIC = ("synthetic c0.25", "synthetic c0.5", "synthetic c0.75")


def test_the_synthetic_rows_single_task_training_is_one_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(robustness, "SHARED_SINGLE", robustness.shared_single([SEARCH, *SYNTHETIC]))
    runs = list(robustness._runs([*SYNTHETIC, SEARCH], ["centre"], range(2)))
    singles = sorted((r.row, r.seed) for r in runs if r.method == "single")
    assert singles == [(SEARCH, 0), (SEARCH, 1), (SYNTHETIC[0], 0), (SYNTHETIC[0], 1)]
    first = robustness.Run(SYNTHETIC[0], "centre", "single", 1)
    assert robustness._job_keys(first) == [
        robustness.Run(row, "centre", "single", 1).key for row in SYNTHETIC
    ]
    design = {row: ("centre",) for row in SYNTHETIC} | {SYNTHETIC[1]: ("centre", "lr3e-3")}
    monkeypatch.setattr(robustness, "DESIGN", design)
    runs = list(robustness._runs(SYNTHETIC, None, range(1)))
    assert {r.row for r in runs if r.method == "single" and r.cell == "lr3e-3"} == {SYNTHETIC[1]}


@pytest.mark.usefixtures("small_logs")
def test_a_copied_single_task_record_is_the_run_of_its_own_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(robustness, "SHARED_SINGLE", {SYNTHETIC[0]: (ROW,)})
    trained, copied = robustness.train_job(robustness.Run(SYNTHETIC[0], CELL, "single", 0))
    own = robustness.train(robustness.Run(ROW, CELL, "single", 0))
    assert (copied["row"], copied["copied_from"], copied["wall_s"]) == (ROW, SYNTHETIC[0], None)
    same = ("test", "valid", "epochs", "metric", "synthetic_rows")
    assert {k: copied[k] for k in same} == {k: own[k] for k in same}
    assert trained["row"] == SYNTHETIC[0] and "copied_from" not in trained
