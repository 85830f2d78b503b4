"""Test NDCG@10 of the project's default ranker against LightGBM's LGBMRanker, side by side.

Real data: LightGBM's ``examples/lambdarank`` (``../shared/data/lambdarank-example``: 201
training queries, 50 test queries, 300 features, graded relevance 0-4), loaded once per seed by
the config's own ``data`` section (validation = 20 % of the training queries, split seed 0).

- nomoretuning: ``configs/ranking_lambdarank.yaml`` trained exactly as ``nomoretuning train
  CONFIG --set seed=N`` trains it (`nomoretuning.cli.protocols.train.run_training`: the project's
  ``Trainer``, early stopping and model selection on the validation split); the selected
  ``best.pt`` scores the test split (the config trains with the listwise softmax loss, ``data.
  options.loss: softmax``); ``--set KEY=VALUE`` varies the config, e.g.
  ``--set data.options.loss=pairwise``.
- LightGBM: ``LGBMRanker`` (lambdarank; 200 trees, learning rate 0.05, 31 leaves, 5 rows per
  leaf at least, bagging 0.8 every iteration, 0.8 of the features per tree; ``random_state``
  = the seed), trained in its own virtual environment ``benchmarks/.venv-lightgbm`` (created by
  ``setup_lightgbm.sh``; a peer, never a dependency of nomoretuning) on the *same arrays*: the
  loaded dataset's training, validation and test features, labels and groups, dumped to .npz,
  and (``--lgbm-features both``, default) also on the file's raw feature values of the same rows.
  Trees only see each feature's order, yet LightGBM's histogram binning makes its NDCG move by
  about 0.005-0.01 between the two, so both are shown. It trains on the training part only;
  ``--lgbm-early-stopping N`` also stops it on the validation NDCG@10 (off by default: all 200
  trees).

Both sides are scored by the same function, ``nomoretuning.training.metrics.ndcg_at_k(labels,
scores, groups, 10)`` (exponential gain ``2**label - 1``; queries without a relevant item are
skipped), on the validation and test splits. The project's validation NDCG is that of the epoch
it selected on that split, so it reads high; compare the test column. Threads are pinned
(``torch.set_num_threads`` and ``OMP_NUM_THREADS`` / LightGBM ``n_jobs``). Wall times are
training times (LightGBM's ``fit``; the project's whole run: training, per-epoch validation,
checkpoints and the final evaluation); they are noisy on a shared machine, NDCG is not.
Goal: the project's mean test NDCG@10 >= LightGBM's mean - 0.005.

Usage:
    .venv/bin/python benchmarks/bench_ranking.py                      # seeds 0 1 2
    .venv/bin/python benchmarks/bench_ranking.py --set data.options.loss=pairwise  # RankNet
    .venv/bin/python benchmarks/bench_ranking.py --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/bench_ranking.py --set trainer.lr=0.003   # a variant of the config
    .venv/bin/python benchmarks/bench_ranking.py --no-lightgbm         # the project's side only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

from nomoretuning.cli.builders import build_dataset
from nomoretuning.cli.config import RunConfig, load_config
from nomoretuning.cli.protocols.train import run_training, selected_tasks
from nomoretuning.data.batching import PreparedDataset, TensorSplit
from nomoretuning.serving.run_files import MODEL_FILE, ModelSpec
from nomoretuning.training.checkpoint import load_checkpoint
from nomoretuning.training.metrics import ndcg_at_k
from nomoretuning.training.prediction import predict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "configs" / "ranking_lambdarank.yaml"
LIGHTGBM_VENV = HERE / ".venv-lightgbm"
K = 10

# LGBMRanker's settings (the reference run).
LIGHTGBM: dict[str, object] = {
    "objective": "lambdarank",
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 5,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
}

# Run by benchmarks/.venv-lightgbm/bin/python: argv = DATA.npz OUT_DIR SETTINGS_JSON.
LIGHTGBM_WORKER = r"""
import json, sys, time
import numpy as np
import lightgbm

data = np.load(sys.argv[1])
out = sys.argv[2]
settings = json.loads(sys.argv[3])
early = settings.pop("early_stopping")

def sizes(groups):
    # Rows of a query are contiguous (the benchmark sends them so): run lengths of the ids.
    change = np.flatnonzero(np.diff(groups)) + 1
    return np.diff(np.concatenate([[0], change, [groups.size]]))

ranker = lightgbm.LGBMRanker(verbose=-1, **settings)
fit = {"group": sizes(data["train_g"])}
if early:
    fit.update(
        eval_set=[(data["valid_x"], data["valid_y"])], eval_group=[sizes(data["valid_g"])],
        eval_at=[10], callbacks=[lightgbm.early_stopping(early, verbose=False)],
    )
start = time.perf_counter()
ranker.fit(data["train_x"], data["train_y"], **fit)
seconds = time.perf_counter() - start
for split in ("valid", "test"):
    np.save(f"{out}/{split}.npy", ranker.predict(data[f"{split}_x"]).astype(np.float64))
trees = ranker.best_iteration_ if early else settings["n_estimators"]
print(json.dumps({"fit_s": seconds, "trees": int(trees), "lightgbm": lightgbm.__version__}))
"""


@dataclass
class Split:
    """One split's arrays with every query's rows contiguous (in order of first appearance)."""

    x: np.ndarray
    y: np.ndarray
    g: np.ndarray

    @classmethod
    def of(cls, split: object, task: str) -> Split:
        assert isinstance(split, TensorSplit) and split.groups is not None
        groups = split.groups.numpy()
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first)[inverse.reshape(-1)], kind="stable")
        return cls(
            split.dense.numpy()[order].astype(np.float64),
            split.labels[task].numpy()[order].astype(np.float64),
            groups[order].astype(np.int64),
        )

    def ndcg(self, scores: np.ndarray) -> float:
        return ndcg_at_k(self.y, scores, self.g, K)


@dataclass
class Side:
    """One side's result on one seed."""

    valid: float
    test: float
    seconds: float
    note: str = ""


def config_for(path: Path, overrides: list[str], seed: int, data: Path | None) -> RunConfig:
    """The config with ``--set`` overrides and the seed; a relative data path is resolved
    against the working directory, else the repository root."""
    config = load_config(path, [*overrides, f"seed={seed}"])
    given = config.data.path
    if data is None and not isinstance(given, str):
        raise SystemExit(f"{path}: data.path must name the lambdarank example folder")
    folder = Path(data) if data is not None else Path(str(given))
    if not folder.is_absolute() and not folder.exists() and (ROOT / folder).exists():
        folder = ROOT / folder
    config.data.path = str(folder)
    return config


def project_run(config: RunConfig, dataset: PreparedDataset, run_dir: Path) -> Side:
    """``nomoretuning train`` of the config; its selected model scores valid and test."""
    start = time.perf_counter()
    record = run_training(config, run_dir, dataset, progress=False)
    seconds = time.perf_counter() - start
    (task,) = selected_tasks(config, dataset)
    model = ModelSpec.load(run_dir / MODEL_FILE).build()
    model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
    result = []
    for split in (dataset.valid, dataset.test):
        logits, labels, groups = predict(model, split, 4096, torch.device("cpu"), [task])
        result.append(ndcg_at_k(labels[task], logits[task], groups, K))
    reported = record.test[task]["ndcg"]
    if abs(reported - result[1]) > 1e-9:
        print(f"warning: the run reported test NDCG {reported:.6f}, best.pt scores {result[1]:.6f}")
    return Side(result[0], result[1], seconds, f"{record.epochs:g} epochs")


def ensure_lightgbm() -> Path | None:
    python = LIGHTGBM_VENV / "bin" / "python"
    if python.exists():
        return python
    print(
        "LightGBM: benchmarks/.venv-lightgbm is missing; create it with\n"
        "    bash benchmarks/setup_lightgbm.sh\n"
        "(pip install lightgbm numpy scikit-learn in its own venv). Running the project's side "
        "only.",
        flush=True,
    )
    return None


def lightgbm_run(
    python: Path, splits: dict[str, Split], seed: int, threads: int, early: int, tmp: Path
) -> Side:
    """LGBMRanker on the same arrays in its own environment; scores read back from .npy."""
    folder = Path(tempfile.mkdtemp(dir=tmp, prefix=f"lightgbm-{seed}-"))
    npz = folder / "data.npz"
    arrays = {f"{name}_{key}": getattr(s, key) for name, s in splits.items() for key in "xyg"}
    np.savez(npz, **arrays)
    worker = folder / "worker.py"
    worker.write_text(LIGHTGBM_WORKER, encoding="utf-8")
    settings = {**LIGHTGBM, "random_state": seed, "n_jobs": threads, "early_stopping": early}
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [str(python), str(worker), str(npz), str(folder), json.dumps(settings)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"LightGBM run failed: {done.stderr[-1500:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    valid = splits["valid"].ndcg(np.load(folder / "valid.npy"))
    test = splits["test"].ndcg(np.load(folder / "test.npy"))
    return Side(valid, test, float(info["fit_s"]), f"{info['trees']} trees, {info['lightgbm']}")


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def raw_splits(config: RunConfig, task: str) -> dict[str, Split]:
    """The same rows with the file's own feature values (no standardization, no transform)."""
    raw = config.model_copy(deep=True)
    raw.data.options = {**raw.data.options, "standardize": False, "feature_transform": "none"}
    dataset = build_dataset(raw.data, raw.seed)
    return {s: Split.of(getattr(dataset, s), task) for s in ("train", "valid", "test")}


def table(results: dict[str, dict[int, Side]], ours: str, seeds: list[int]) -> None:
    """Per seed and mean ± std of every ranker; the test difference to ours."""
    print(f"\nNDCG@{K} (exponential gain, nomoretuning.training.metrics.ndcg_at_k)")
    w = max(len(name) for name in results)
    print(
        f"{'ranker':<{w}} {'seed':>9} {'valid':>8} {'test':>8} {'ours-it':>8} {'wall s':>7}  notes"
    )
    for name, by_seed in results.items():
        for seed in seeds:
            side = by_seed[seed]
            diff = "" if name == ours else f"{results[ours][seed].test - side.test:+.4f}"
            print(
                f"{name:<{w}} {seed:>9} {side.valid:>8.4f} {side.test:>8.4f} {diff:>8} "
                f"{side.seconds:>7.1f}  {side.note}"
            )
    print(f"{'ranker':<{w}} {'':>9} {'valid':>17} {'test':>17} {'ours - it (test)':>17}  wall s")
    for name, by_seed in results.items():
        sides = [by_seed[s] for s in seeds]
        diff = (
            ""
            if name == ours
            else mean_std([results[ours][s].test - by_seed[s].test for s in seeds])
        )
        print(
            f"{name:<{w}} {'mean±std':>9} {mean_std([x.valid for x in sides]):>17} "
            f"{mean_std([x.test for x in sides]):>17} {diff:>17}  "
            f"{statistics.mean(x.seconds for x in sides):.1f}"
        )
    ours_test = statistics.mean(results[ours][s].test for s in seeds)
    for name, by_seed in results.items():
        if name != ours:
            gap = ours_test - statistics.mean(by_seed[s].test for s in seeds)
            verdict = "met" if gap >= -0.005 else "MISSED"
            print(f"goal vs {name}: mean test difference {gap:+.4f} >= -0.005: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="the project's ranker")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), as nomoretuning train --set",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the lambdarank example folder (default: the config's data.path)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=common.positive_int, default=2)
    parser.add_argument(
        "--lgbm-features",
        choices=("same", "raw", "both"),
        default="both",
        help="LightGBM on the project's arrays, on the file's raw values of the same rows, or both",
    )
    parser.add_argument(
        "--lgbm-early-stopping",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="stop LightGBM on the validation NDCG@10 (0: off, all 200 trees)",
    )
    parser.add_argument("--no-lightgbm", action="store_true", help="the project's side only")
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    print(common.machine(args.threads))
    print(
        f"threads: OMP_NUM_THREADS={args.threads}, torch {torch.get_num_threads()}, "
        f"LightGBM n_jobs {args.threads}"
    )
    python = None if args.no_lightgbm else ensure_lightgbm()
    ours = f"nomoretuning {Path(args.config).name}" + (" (--set)" if args.set else "")
    variants = {"same": ["same"], "raw": ["raw"], "both": ["same", "raw"]}[args.lgbm_features]
    labels = {"same": "LightGBM, the same arrays", "raw": "LightGBM, raw feature values"}
    results: dict[str, dict[int, Side]] = {ours: {}}
    if python is not None:
        results.update({labels[v]: {} for v in variants})
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for seed in args.seeds:
            config = config_for(args.config, args.set, seed, args.data)
            dataset = build_dataset(config.data, config.seed)
            (task,) = selected_tasks(config, dataset)
            if seed == args.seeds[0]:
                print(f"config: {args.config} {' '.join(args.set)}".rstrip())
                print(f"data: {dataset.description}")
                print(f"objective: {dataset.metadata.get('objective')}")
                print(
                    f"rows: train {len(dataset.train)}, valid {len(dataset.valid)}, "  # type: ignore[arg-type]
                    f"test {len(dataset.test)}"  # type: ignore[arg-type]
                )
            results[ours][seed] = project_run(config, dataset, tmp / f"run-{seed}")
            line = f"seed {seed}: {ours} valid {results[ours][seed].valid:.4f} "
            line += f"test {results[ours][seed].test:.4f}"
            if python is not None:
                same = {s: Split.of(getattr(dataset, s), task) for s in ("train", "valid", "test")}
                for variant in variants:
                    splits = same if variant == "same" else raw_splits(config, task)
                    side = lightgbm_run(
                        python, splits, seed, args.threads, args.lgbm_early_stopping, tmp
                    )
                    results[labels[variant]][seed] = side
                    line += f"; {labels[variant]} valid {side.valid:.4f} test {side.test:.4f}"
            print(line, flush=True)
    table(results, ours, args.seeds)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        "(wall s: the project's whole run, training, per-epoch validation, checkpoints and the "
        f"final evaluation; LightGBM's fit; load average now {load})"
    )


if __name__ == "__main__":
    common.run(main)
