"""The benchmarks' ``--set OPTION=VALUE`` flags: YAML values; a bad item refused in one line."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import common

BENCHMARKS = Path(common.__file__).parent


def test_values_are_read_as_yaml_and_the_last_one_wins() -> None:
    found = common.options(["fit_later_heads=true", "metric_guard=1", "start_test= null"])
    assert found == {"fit_later_heads": True, "metric_guard": 1, "start_test": None}
    assert common.options(["lr=1e-3", "lr=0.01"]) == {"lr": 0.01}
    assert common.options(["constraints=valid"]) == {"constraints": "valid"}


@pytest.mark.parametrize("item", ["metric_guard", "=1", " =true"])
def test_an_item_without_a_name_and_a_value_is_refused(item: str) -> None:
    with pytest.raises(SystemExit, match=r"--nmt .*give OPTION=VALUE"):
        common.options([item], "--nmt")


def _refusal(script: str, *args: str) -> str:
    """The one line a benchmark prints on stderr when it refuses ``args`` (exit 1, no output)."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nonsense=1", "--set: .*unexpected keyword argument 'nonsense'"),
        ("metric_guard=-1", "--set: trainer.metric_guard must be a finite number >= 0"),
        ("metric_guard", "--set 'metric_guard': give OPTION=VALUE"),
    ],
)
def test_the_tuning_cost_benchmark_refuses_a_bad_option_before_training(
    item: str, message: str
) -> None:
    line = _refusal("bench_tuning_cost.py", "--set", item)
    assert re.match(message, line), line


@pytest.mark.parametrize(
    ("flag", "item", "message"),
    [
        ("--set", "nonsense=1", "--set: .*unexpected keyword argument 'nonsense'"),
        ("--set", "metric_guard=-1", "--set: trainer.metric_guard must be a finite number >= 0"),
        ("--nmt", "dual=nonsense", "--nmt: .*dual"),
        ("--nmt", "nonsense=1", "--nmt: .*unexpected keyword argument 'nonsense'"),
    ],
)
def test_the_robustness_benchmark_refuses_a_bad_option_before_training(
    tmp_path: Path, flag: str, item: str, message: str
) -> None:
    output = tmp_path / "robustness"
    line = _refusal("bench_robustness.py", "--quick", "--output", str(output), flag, item)
    assert re.match(message, line), line
    assert not output.exists()  # refused before anything was written


def test_checked_options_pass_valid_ones_through() -> None:
    assert common.trainer_options(["metric_guard=null", "fit_later_heads=false"]) == {
        "metric_guard": None,
        "fit_later_heads": False,
    }
    assert common.nmt_options(["dual=ascent", "dual_lr=10"]) == {"dual": "ascent", "dual_lr": 10}
