"""The command line's front: bad input of every kind ends with one line on stderr and exit status
2 (no traceback), ``python -m nomoretuning``, and ``demo`` says which data it uses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import (
    CENSUS,
    FAST,
    LAMBDARANK,
    TIKTOK,
    census_config,
    needs_census,
    run_cli,
    table3_config,
    write_config,
)

from nomoretuning.cli import main as cli
from nomoretuning.cli.registry import DATASETS

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: object) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        node = config
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return mutate


def _assert_one_line_exit_2(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert message in err
    assert err.startswith("nomoretuning: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@needs_census
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(extra=1), "extra: unknown key"),
        (_set("data.train", "a.csv"), "data.train: unknown key; a dataset's own options go under"),
        (lambda c: c.pop("data"), "data: required key is missing"),
        (_set("data.dataset", "imagenet"), f"data.dataset: must be one of {', '.join(DATASETS)}"),
        (_set("trainer.lr", "fast"), "trainer.lr: Input should be a valid number"),
        (_set("trainer.batch_size", 0), "trainer.batch_size must be a positive"),
        (_set("trainer.precision", "fp8"), "trainer.precision: Input should be 'fp32'"),
        (_set("trainer.seed", 3), "trainer.seed: unknown key"),
        (_set("model.name", "transformer"), "model.name: unknown model"),
        (_set("model.options.experts", 3), "model.options"),
        (_set("method.name", "pcgrad"), "method.name: must be one of single_task, equal"),
        (_set("method.inner", "nmt"), "method.inner: must be one of equal, famo, emtl"),
        (_set("method.options", {"tolerance": -1}), "method.options: NMT: tolerance of task"),
        (_set("method.options", {"speed": 1}), "method.options.speed: unknown option"),
        (_set("method.priorities", ["income", "age"]), "method.priorities"),
        (_set("data.tasks", ["income", "age"]), "unknown task"),
        (_set("data.path", "/nonexistent/census.gz"), "/nonexistent/census.gz"),
        (_set("data.path", ""), "data.path: '' is blank"),  # it would read the working folder
        (_set("data.options.test_path", ""), "data.options.test_path: '' is blank"),
        (_set("method.name", "fixed"), "method.weights"),
    ],
)
def test_bad_configs_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Mutation, message: str
) -> None:
    config = census_config()
    mutate(config)
    path = write_config(tmp_path, config, "bad.yaml")
    code, _, err = run_cli(["train", str(path), "--output", str(tmp_path / "out")], capsys)
    _assert_one_line_exit_2(code, err, message)


@pytest.mark.parametrize(
    ("command", "mutate", "message"),
    [
        ("train", _set("data.tasks", ["pay", "clicks"]), "'clicks'"),  # names the bad task
        ("compare", _set("data.tasks", ["pay"]), "needs at least two tasks"),
        ("compare", _set("data", {"dataset": "lambdarank"}), "needs at least two tasks"),
        ("compare", _set("model.name", "mmoe"), "set model.name: single_score"),
        ("compare", _set("compare.protocol", "table2"), "compare.protocol: Input should be"),
        ("compare", _set("compare.protocol", "table1"), "set compare.protocol: table3"),
        ("compare", _set("compare.weights", {"pay": 1.0, "amount": 1.0}), "compare.weights"),
        ("compare", _set("compare.weights", {"pay": 0}), "must be > 0"),
        ("compare", _set("compare.models", ["mmoe"]), "compare.models: not used by protocol"),
        ("compare", _set("compare.methods", ["pcgrad"]), "compare.methods: unknown method"),
        ("compare", _set("compare.seeds", [0, 0]), "compare.seeds: 0 is listed twice"),
        ("compare", _set("compare.seeds", [-3]), "seeds must be in [0, 2**63), got -3"),
        ("compare", _set("compare.methods", ["nmt", "nmt"]), "'nmt' is listed twice"),
        ("train", _set("data.options.max_pairs_per_group", 0), "max_pairs_per_group"),
        ("train", _set("data.options.ndcg_k", 0), "ndcg_k must be a positive integer"),
        ("grid", _set("data.tasks", ["pay"]), "grid: needs 2 or 3 tasks"),
    ],
)
def test_bad_ranking_configs_exit_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    mutate: Mutation,
    message: str,
) -> None:
    config = table3_config()
    mutate(config)
    if config["data"].get("dataset") == "lambdarank":
        config["data"]["path"] = str(LAMBDARANK)
        if not (LAMBDARANK / "rank.train").is_file():
            pytest.skip("no ../shared/data")
    path = write_config(tmp_path, config, "bad.yaml")
    code, _, err = run_cli([command, str(path), "--output", str(tmp_path / "out")], capsys)
    _assert_one_line_exit_2(code, err, message)


def test_bad_files_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["train", str(tmp_path / "missing.yaml")], capsys)
    _assert_one_line_exit_2(code, err, "config file not found")
    code, _, err = run_cli(["train", str(tmp_path)], capsys)
    _assert_one_line_exit_2(code, err, "is a folder; give a YAML config file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    code, _, err = run_cli(["train", str(broken)], capsys)
    _assert_one_line_exit_2(code, err, "invalid YAML at line")
    twice = tmp_path / "twice.yaml"
    twice.write_text("trainer: {lr: 0.5}\ndata: {dataset: synthetic}\ntrainer: {max_steps: 3}\n")
    code, _, err = run_cli(["train", str(twice)], capsys)
    _assert_one_line_exit_2(code, err, "invalid YAML at line 3: key 'trainer' given twice")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe bad")
    code, _, err = run_cli(["train", str(binary)], capsys)
    _assert_one_line_exit_2(code, err, "not UTF-8 text")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    code, _, err = run_cli(["train", str(empty)], capsys)
    _assert_one_line_exit_2(code, err, "the config is empty")
    config = write_config(tmp_path, census_config())
    code, _, err = run_cli(["train", str(config), "--set", "trainer.lr"], capsys)
    _assert_one_line_exit_2(code, err, "expected key=value")
    code, _, err = run_cli(["train", str(config), "--set", "trainer.lr=[1"], capsys)
    _assert_one_line_exit_2(code, err, "value is not valid YAML (expected ',' or ']'")
    for seed, message in (("-1", "greater than or equal to 0"), (str(2**64), "less than")):
        code, _, err = run_cli(["train", str(config), "--set", f"seed={seed}"], capsys)
        _assert_one_line_exit_2(code, err, f"seed: Input should be {message}")
    code, _, err = run_cli(["plot", str(tmp_path)], capsys)
    _assert_one_line_exit_2(code, err, "no history.csv")
    (tmp_path / "cmp" / "mmoe" / "seed0").mkdir(parents=True)
    (tmp_path / "cmp" / "mmoe" / "seed0" / "history.csv").write_text("")
    code, _, err = run_cli(["plot", str(tmp_path / "cmp")], capsys)
    _assert_one_line_exit_2(code, err, "is no run but holds 1")
    # compare and grid load the data before an --overwrite touches the earlier output
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "results.json").write_text("[]")
    for command in ("compare", "grid"):
        missing = ["--set", f"data.path={tmp_path / 'nope.gz'}"]
        args = [command, str(config), "--output", str(earlier), "--overwrite", *missing]
        code, _, err = run_cli(args, capsys)
        _assert_one_line_exit_2(code, err, "nope.gz")
        assert (earlier / "results.json").read_text() == "[]"
    # and a grid checks that its tasks make a grid first
    args = ["grid", str(config), "--output", str(earlier), "--overwrite"]
    code, _, err = run_cli([*args, "--set", "data.tasks=[income]"], capsys)
    _assert_one_line_exit_2(code, err, "grid: needs 2 or 3 tasks")
    assert (earlier / "results.json").read_text() == "[]"
    # an output under a file: the operating system's error, in one line
    code, _, err = run_cli(["train", str(config), "--output", str(config / "run")], capsys)
    _assert_one_line_exit_2(code, err, "Not a directory")


def test_main_leaves_the_warning_format_as_it_found_it(tmp_path: Path) -> None:
    import warnings

    before = warnings.formatwarning
    cli.main(["train", str(tmp_path / "missing.yaml")])
    assert warnings.formatwarning is before


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nomoretuning {version('nomoretuning')}"


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nomoretuning", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    for command in ("train", "compare", "grid", "plot", "demo"):
        assert command in done.stdout


@pytest.mark.skipif(not TIKTOK.exists(), reason="../shared/data is not beside the checkout")
def test_warnings_are_one_line_each(tmp_path: Path) -> None:
    config = census_config(
        data={
            "dataset": "tiktok",
            "path": str(TIKTOK),
            # STEM's split (seed 42) leaves no like positive in valid and test: that warns
            "options": {"allow_single_class": True, "min_count": 1, "seed": 42},
        },
        model={"name": "shared_bottom", "options": {"bottom_dims": [4], "tower_dims": [4]}},
        trainer={**FAST, "batch_size": 32, "max_steps": 2},
    )
    path = write_config(tmp_path, config)
    done = subprocess.run(
        [sys.executable, "-m", "nomoretuning", "train", str(path), "--output", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any("label column 'like' is all 0 in the valid split" in line for line in lines)
    warned = [line for line in lines if "Warning" in line or "warning" in line]
    assert warned and all(line.startswith("nomoretuning: warning: ") for line in warned), lines


@needs_census
def test_demo_says_which_data_it_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Path] = []

    def fake_compare(args: object, config_path: Path | None = None, overrides: object = ()) -> int:
        assert config_path is not None
        seen.append(Path(config_path))
        return 0

    monkeypatch.setattr(cli, "_compare", fake_compare)
    monkeypatch.setenv("NOMORETUNING_CACHE", str(tmp_path / "empty"))
    assert cli.main(["demo", "--output", str(tmp_path / "d1")]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    monkeypatch.setenv("NOMORETUNING_CACHE", str(CENSUS.parent))
    assert cli.main(["demo", "--output", str(tmp_path / "d2")]) == 0
    assert "real data, UCI Census-Income" in capsys.readouterr().out
    assert [p.name for p in seen] == ["demo_synthetic.yaml", "demo_census.yaml"]
