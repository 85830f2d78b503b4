"""torch-rechub's MTLTrainer on arrays exported by bench_trainer.py (run in its own environment).

Runs with benchmarks/.venv-rechub/bin/python (torch-rechub is a peer, not a dependency of
nomoretuning, so this file imports nothing from it). Reads ``DATA.npz`` (sparse ids, dense values,
labels, vocabulary sizes of the same Census-Income training and validation splits), builds
torch-rechub's MMOE with the layers of the benchmark MMoE, and times ``MTLTrainer.train_one_epoch``
(its DataLoader over a per-row dict Dataset included) and ``MTLTrainer.evaluate``. Prints one JSON
line.

Usage (bench_trainer.py calls it):
    benchmarks/.venv-rechub/bin/python benchmarks/rechub_mmoe.py DATA.npz --epochs 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import numpy as np
import torch
from torch_rechub.basic.features import DenseFeature, SparseFeature
from torch_rechub.models.multi_task import MMOE
from torch_rechub.trainers import MTLTrainer
from torch_rechub.utils.data import DataGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help=".npz written by bench_trainer.py")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the timed epochs")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--expert-dims", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--tower-dims", type=int, nargs="+", default=[16])
    parser.add_argument("--embedding-dim", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    arrays = np.load(args.data)
    vocab = arrays["vocab"].tolist()
    n_sparse, n_dense = arrays["train_sparse"].shape[1], arrays["train_dense"].shape[1]
    features = [
        SparseFeature(f"s{j}", vocab_size=vocab[j], embed_dim=args.embedding_dim)
        for j in range(n_sparse)
    ] + [DenseFeature(f"d{j}") for j in range(n_dense)]

    def x_dict(split: str, rows: int | None = None) -> dict[str, np.ndarray]:
        x = {f"s{j}": arrays[f"{split}_sparse"][:rows, j] for j in range(n_sparse)}
        x.update({f"d{j}": arrays[f"{split}_dense"][:rows, j] for j in range(n_dense)})
        return x

    loaders = DataGenerator(x_dict("train"), arrays["train_labels"]).generate_dataloader(
        x_val=x_dict("valid"),
        y_val=arrays["valid_labels"],
        x_test=x_dict("valid"),
        y_test=arrays["valid_labels"],
        batch_size=args.batch_size,
    )
    train_loader, valid_loader = loaders[0], loaders[1]
    warm = 10 * args.batch_size
    warm_loader = DataGenerator(
        x_dict("train", warm), arrays["train_labels"][:warm]
    ).generate_dataloader(
        x_val=x_dict("valid", warm),
        y_val=arrays["valid_labels"][:warm],
        x_test=x_dict("valid", warm),
        y_test=arrays["valid_labels"][:warm],
        batch_size=args.batch_size,
    )[0]
    model = MMOE(
        features,
        task_types=["classification", "classification"],
        n_expert=args.experts,
        expert_params={"dims": args.expert_dims},
        tower_params_list=[{"dims": args.tower_dims}, {"dims": args.tower_dims}],
    )
    trainer = MTLTrainer(
        model,
        task_types=["classification", "classification"],
        optimizer_params={"lr": 1e-3, "weight_decay": 0.0},
        n_epoch=args.epochs,
        device="cpu",
    )
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        trainer.train_one_epoch(warm_loader)  # warm-up (10 batches), not timed
        rounds = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for _ in range(args.epochs):
                trainer.train_one_epoch(train_loader)
            rounds.append(time.perf_counter() - start)
        start = time.perf_counter()
        scores = trainer.evaluate(trainer.model, valid_loader)
        eval_s = time.perf_counter() - start
    rows = len(arrays["train_labels"]) * args.epochs
    print(
        json.dumps(
            {
                "train_s": rounds,
                "rows": rows,
                "eval_s": eval_s,
                "valid_rows": len(arrays["valid_labels"]),
                "valid_auc": [float(s) for s in scores],
                "parameters": sum(p.numel() for p in model.parameters()),
                "torch_rechub": _version(),
            }
        )
    )


def _version() -> str:
    from importlib.metadata import version

    return version("torch-rechub")


if __name__ == "__main__":
    main()
