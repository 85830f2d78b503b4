"""Data parallel training (DDP, gloo, 2 CPU processes) equals one process on the same global batch.

On the real Census-Income data (a few thousand rows, so that it stays fast): NMT through both
stages, with the multipliers updated every step from the all-reduced training losses and, in the
second case, FAMO as NMT's inner combiner (its closure all-reduces too). The λ trajectory, the
losses of every step, the evaluations and the final parameters match a single-process run within
floating-point tolerance (the model runs in float64, so the tolerance is ~1e-9), and both ranks end
with identical parameters and combiner state. A DDP run stopped in the middle of stage 2 resumes
from its last.pt to the same trajectory.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from census_table import census_schema, table_columns, write_census_table

import nomoretuning as nt
from nomoretuning.data import load_census_income, load_table
from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.errors import ConfigError
from nomoretuning.models import build_model
from nomoretuning.training import distributed as parallel
from nomoretuning.training.trainer import FitResult, Trainer, TrainerConfig

CENSUS = Path(__file__).resolve().parents[3] / "shared/data/census-income-kdd/census-income.test.gz"
WORLD = 2

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build",
)


@pytest.fixture(scope="module")
def census() -> PreparedDataset:
    if not CENSUS.exists():
        pytest.skip(f"real data not found at {CENSUS}")
    data = load_census_income(CENSUS)
    # 2,999 training rows: 6 global batches of 512 per epoch, the last one partial (439 rows,
    # 220 + 219 on two ranks: unequal shares exercise the row weighting).
    sub = {
        "train": data.train.subset(slice(0, 2999)),  # type: ignore[attr-defined]
        "valid": data.valid.subset(slice(0, 2001)),  # type: ignore[attr-defined]
        "test": data.test.subset(slice(0, 1001)),  # type: ignore[attr-defined]
    }
    return PreparedDataset(data.name, data.tasks, data.features, **sub)


@pytest.fixture(scope="module")
def single(
    census: PreparedDataset, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], tuple[FitResult, Path]]:
    """The single-process reference run of each inner combiner (run once, shared)."""
    runs: dict[str, tuple[FitResult, Path]] = {}

    def run(inner: str) -> tuple[FitResult, Path]:
        if inner not in runs:
            torch.set_num_threads(1)
            path = tmp_path_factory.mktemp(f"single-{inner}")
            runs[inner] = (_trainer(census, inner, path / "run").fit(), path / "run")
        return runs[inner]

    return run


def _combiner(inner: str, tasks: tuple[str, ...] = ("income", "marital")) -> nt.NMT:
    if inner == "famo":
        return nt.NMT(list(tasks), combiner=lambda terms: nt.FAMO(terms))
    return nt.NMT(list(tasks))


def _trainer(data: PreparedDataset, inner: str, run_dir: Path, seed: int = 0) -> Trainer:
    torch.manual_seed(seed)
    model = build_model(
        "mmoe",
        data.features,
        data.tasks,
        num_experts=3,
        expert_dims=(32,),
        gate_dims=(),
        tower_dims=(16,),
        embedding_dim=4,
    ).double()  # float64: the two runs agree to ~1e-9, far below float32's rounding noise
    config = TrainerConfig(
        batch_size=512,
        eval_batch_size=700,  # several evaluation batches per rank
        lr=3e-3,
        max_epochs=3,
        max_steps=14,  # per stage: 42 steps in 3 stages, across an epoch boundary in each stage
        eval_every=5,
        patience=10,
        constraints="train",  # λ moves every step, from the all-reduced training losses
        checkpoint_every=4,
        start_test=1e9,  # the top stage keeps its start after a paired test on both ranks
        fit_later_heads=True,  # marital's head trains in income's stage: all-reduced by hand
        device="cpu",
    )
    return Trainer(model, _combiner(inner, data.tasks), data, config, run_dir=run_dir)


class _StoppedError(Exception):
    """Stops both ranks at the same step (a kill that leaves no rank waiting)."""


def _worker(
    rank: int, port: int, data: PreparedDataset, inner: str, out: str, mode: str = "full"
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(WORLD),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    assert parallel.init_from_env(backend="gloo")
    try:
        _work(rank, data, inner, out, mode)
    finally:
        parallel.destroy()
    # Leave without the interpreter's teardown. The trainer's DDP model can keep its gloo group
    # alive past destroy_process_group (destroy() then collects it); a group freed only in the
    # teardown aborts the process now and then ("terminate called without an active exception",
    # SIGABRT), which failed two runs of `make test` in one day before either guard. A failure
    # above still raises to spawn.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _work(rank: int, data: PreparedDataset, inner: str, out: str, mode: str) -> None:
    # "stop": halt in stage 2; "resume": fresh objects (another seed), then resume.
    trainer = _trainer(data, inner, Path(out) / "ddp", seed=99 if mode == "resume" else 0)
    if mode == "stop":
        step = trainer._train_step

        def stopping(batch: Any, bar: Any) -> None:
            if trainer.state.global_step == 19:
                raise _StoppedError
            step(batch, bar)

        trainer._train_step = stopping  # type: ignore[method-assign]
        try:
            trainer.fit()
        except _StoppedError:
            # both ranks stop at the same step: meet before tearing the group down, or the
            # first to leave can close the connection under the other's last collective
            torch.distributed.barrier()
        return
    result = trainer.fit(resume=mode == "resume")
    torch.save(
        {
            "model": trainer.model.state_dict(),
            "combiner": trainer.combiner.state_dict(),
            "test": result.test,
        },
        Path(out) / f"rank{rank}.pt",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _history(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _numbers(row: dict[str, str], prefix: tuple[str, ...]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if k.startswith(prefix) and v != ""}


@pytest.mark.parametrize("inner", ["equal", "famo"])
def test_two_gloo_processes_match_one_process(
    census: PreparedDataset,
    single: Callable[[str], tuple[FitResult, Path]],
    tmp_path: Path,
    inner: str,
) -> None:
    reference_run, reference_dir = single(inner)

    torch.multiprocessing.spawn(
        _worker, args=(_free_port(), census, inner, str(tmp_path)), nprocs=WORLD, join=True
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]

    # Files were written once, by rank 0, and hold the same rows as the single run.
    one = _history(reference_dir / "history.csv")
    two = _history(tmp_path / "ddp" / "history.csv")
    assert len(one) == len(two) == reference_run.steps == 42  # a joint start, then 2 stages
    constrained = [row for row in one if row["stage"] == "3"]
    assert any(float(row["lambda_income"]) > 0 for row in constrained)  # the constraint was active
    assert reference_run.stages[1].selected_step == 0  # the start won the paired test
    for a, b in zip(one, two, strict=True):
        assert (a["step"], a["stage"]) == (b["step"], b["stage"])
        x, y = _numbers(a, ("loss", "lambda_", "bound_", "weight_")), _numbers(b, ("loss",))
        y.update(_numbers(b, ("lambda_", "bound_", "weight_")))
        assert x.keys() == y.keys()
        for key in x:
            assert y[key] == pytest.approx(x[key], rel=1e-7, abs=1e-12), (a["step"], key)
    evals = [_history(d / "evaluations.csv") for d in (reference_dir, tmp_path / "ddp")]
    assert [r["step"] for r in evals[0]] == [r["step"] for r in evals[1]]
    for a, b in zip(*evals, strict=True):
        assert (a["feasible"], a["improved"]) == (b["feasible"], b["improved"])
        assert float(b["auc_income"]) == pytest.approx(float(a["auc_income"]), abs=1e-9)

    # Final parameters: the same as one process, and identical on both ranks.
    reference = torch.load(reference_dir / "best.pt", weights_only=False)["model"]
    for key, value in reference.items():
        assert torch.equal(ranks[0]["model"][key], ranks[1]["model"][key]), key
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-7, atol=1e-9)
    for key, value in ranks[0]["combiner"].items():
        assert _same(value, ranks[1]["combiner"][key]), key
    for task in census.tasks:
        assert ranks[0]["test"][task]["auc"] == pytest.approx(
            reference_run.test[task]["auc"], abs=1e-9
        )
    assert {p.name for p in (tmp_path / "ddp").iterdir()} >= {
        "history.csv",
        "evaluations.csv",
        "last.pt",
        "best.pt",
        "metrics.json",
    }


def test_a_stopped_ddp_run_resumes_to_the_same_trajectory(
    census: PreparedDataset, single: Callable[[str], tuple[FitResult, Path]], tmp_path: Path
) -> None:
    reference_dir = single("equal")[1]
    for mode in ("stop", "resume"):
        torch.multiprocessing.spawn(
            _worker, args=(_free_port(), census, "equal", str(tmp_path), mode), nprocs=WORLD
        )
    one = _history(reference_dir / "history.csv")
    two = _history(tmp_path / "ddp" / "history.csv")
    assert len(one) == len(two) == 42
    for a, b in zip(one, two, strict=True):
        for key, value in _numbers(a, ("loss", "lambda_")).items():
            assert float(b[key]) == pytest.approx(value, rel=1e-7, abs=1e-12), (a["step"], key)
    reference = torch.load(reference_dir / "best.pt", weights_only=False)["model"]
    resumed = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    for key, value in reference.items():
        assert torch.equal(resumed[0]["model"][key], resumed[1]["model"][key]), key
        torch.testing.assert_close(resumed[0]["model"][key], value, rtol=1e-7, atol=1e-9)


@pytest.mark.slow
def test_torchrun_runs_the_train_command_with_two_processes(tmp_path: Path) -> None:
    if not CENSUS.exists():
        pytest.skip(f"real data not found at {CENSUS}")
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "\n".join(
            [
                f"data: {{dataset: census_income, path: '{CENSUS}', tasks: [income, marital]}}",
                "model: {name: mmoe, options: {num_experts: 2, expert_dims: [16]}}",
                "method: {name: nmt}",
                "trainer: {batch_size: 4096, max_epochs: 1, max_steps: 4, eval_every: 2,",
                "          progress: false, device: cpu}",
            ]
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(WORLD),
            "-m",
            "nomoretuning",
            "train",
            str(config),
            "--output",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("run directory:") == 1  # rank 0 reports; rank 1 is silent
    rows = _history(tmp_path / "run" / "history.csv")
    assert [r["stage"] for r in rows] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    assert (tmp_path / "run" / "metrics.json").exists()


def test_bf16_mixed_precision_trains_on_cpu_and_fp16_needs_cuda(census: PreparedDataset) -> None:
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model("mmoe", census.features, census.tasks, num_experts=2, expert_dims=(16,))
        config = TrainerConfig(  # patience beyond max_epochs: both runs take every step
            batch_size=512,
            max_epochs=2,
            patience=5,
            precision=precision,
            device="cpu",  # type: ignore[arg-type]
        )
        results[precision] = Trainer(
            model, nt.EqualWeights(list(census.tasks)), census, config
        ).fit()
    assert results["bf16"].steps == results["fp32"].steps == 12
    for task in census.tasks:  # bfloat16 forward passes: close to float32, not equal
        bf16, fp32 = results["bf16"].test[task]["auc"], results["fp32"].test[task]["auc"]
        assert bf16 == pytest.approx(fp32, abs=0.02)
        assert bf16 != fp32
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="'fp16' needs a CUDA device"):
            Trainer(
                model,
                nt.EqualWeights(list(census.tasks)),
                census,
                TrainerConfig(precision="fp16", device="cpu"),
            )
    with pytest.raises(ConfigError, match=r"trainer\.precision must be"):
        TrainerConfig(precision="int8")  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return bool(a == b)


def test_shards_of_each_global_batch_cover_it_in_order(census: PreparedDataset) -> None:
    train = census.train
    assert isinstance(train, TensorSplit)
    whole = list(train.batches(512, shuffle=True, generator=torch.Generator().manual_seed(3)))
    for world in (2, 3, 7):
        shards = [
            list(parallel.shard_batches(train, 512, torch.Generator().manual_seed(3), rank, world))
            for rank in range(world)
        ]
        for index, batch in enumerate(whole):
            joined = torch.cat([shards[r][index].sparse for r in range(world)])
            assert torch.equal(joined, batch.sparse)
            sizes = [len(shards[r][index]) for r in range(world)]
            assert max(sizes) - min(sizes) <= 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


def test_two_gloo_processes_stream_like_one_process_with_two_lanes(tmp_path: Path) -> None:
    """Streamed data: each rank reads only its lane's pieces, and the run is the one-process run
    with two lanes (the same global batches), through both NMT stages."""
    table = write_census_table(tmp_path / "census.csv", rows=9000)

    def streamed(lanes: int | None) -> PreparedDataset:
        options = {"piece_rows": 600, "shuffle_rows": 2400, "lanes": lanes}
        return load_table(table, **table_columns(census_schema()), streaming=options)  # type: ignore[arg-type]

    torch.set_num_threads(1)
    reference = _trainer(streamed(2), "equal", tmp_path / "single").fit()
    torch.multiprocessing.spawn(
        _worker, args=(_free_port(), streamed(None), "equal", str(tmp_path)), nprocs=WORLD
    )
    one = _history(tmp_path / "single" / "history.csv")
    two = _history(tmp_path / "ddp" / "history.csv")
    assert len(one) == len(two) == reference.steps == 42
    for a, b in zip(one, two, strict=True):
        for key, value in _numbers(a, ("loss", "lambda_", "bound_")).items():
            assert float(b[key]) == pytest.approx(value, rel=1e-7, abs=1e-12), (a["step"], key)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    single = torch.load(tmp_path / "single" / "best.pt", weights_only=False)["model"]
    for key, value in single.items():
        assert torch.equal(ranks[0]["model"][key], ranks[1]["model"][key]), key
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-7, atol=1e-9)
    for task in reference.test:
        assert ranks[0]["test"][task]["auc"] == pytest.approx(reference.test[task]["auc"], abs=1e-9)
