"""Peak memory of the data pipeline and of training on a large TikTok-format file.

Generates a file in the ICME 2019 TikTok track-2 format (tab separated, 12 integer columns, no
header) with ``--rows`` rows (default 10 million) in a temporary folder: user, item, author, music
and device ids drawn from heavy-tailed (Zipf) distributions with the real dataset's cardinalities,
``finish`` ~37 % and ``like`` ~1 % positive. Then, in a fresh process (so that generation does not
count), it loads the file with ``nomoretuning.data.load_tiktok`` (STEM's split and vocabularies)
and trains a small MMoE with NMT for ``--steps`` steps per stage. The process's peak resident
memory (``ru_maxrss``, and a 20 ms sampler of ``/proc/self/statm`` for the phases) is compared with
the file's raw size. Target: peak <= 2x the raw size of the data.

Usage:
    python benchmarks/bench_memory.py                    # 10M rows (~0.55 GB), several minutes
    python benchmarks/bench_memory.py --rows 1000000     # a quick look
    python benchmarks/bench_memory.py --file PATH        # an existing TikTok-format file
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

# Cardinalities of the real track-2 training log (276M rows), as published with the data.
CARDINALITY = {
    "uid": 73_974,
    "user_city": 396,
    "item_id": 4_122_689,
    "author_id": 850_308,
    "item_city": 461,
    "channel": 5,
    "music_id": 89_778,
    "device": 75_085,
}


def generate(path: Path, rows: int, seed: int = 0, chunk: int = 1_000_000) -> None:
    """Writes ``rows`` TikTok-format rows to ``path`` (tab separated, no header)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)

    def zipf_ids(n: int, cardinality: int, a: float = 1.2) -> np.ndarray:
        # Zipf ranks folded into [0, cardinality), then a fixed shuffle of the id space.
        ranks = (rng.zipf(a, n) - 1) % cardinality
        return np.asarray((ranks * 2_654_435_761) % cardinality, dtype=np.int64)

    names = [
        "uid", "user_city", "item_id", "author_id", "item_city", "channel",
        "finish", "like", "music_id", "device", "time", "duration_time",
    ]  # fmt: skip
    options = pacsv.WriteOptions(include_header=False, delimiter="\t")
    with pacsv.CSVWriter(str(path), _schema(pa, names), write_options=options) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            music = zipf_ids(n, CARDINALITY["music_id"])
            music[rng.random(n) < 0.3] = -1  # the real log has many missing music ids
            columns = {
                "uid": zipf_ids(n, CARDINALITY["uid"], 1.1),
                "user_city": zipf_ids(n, CARDINALITY["user_city"]),
                "item_id": zipf_ids(n, CARDINALITY["item_id"], 1.05),
                "author_id": zipf_ids(n, CARDINALITY["author_id"], 1.1),
                "item_city": zipf_ids(n, CARDINALITY["item_city"]),
                "channel": rng.integers(0, CARDINALITY["channel"], n),
                "finish": (rng.random(n) < 0.37).astype(np.int64),
                "like": (rng.random(n) < 0.01).astype(np.int64),
                "music_id": music,
                "device": zipf_ids(n, CARDINALITY["device"], 1.1),
                "time": 53_085_000_000 + rng.integers(0, 3_000_000, n),
                "duration_time": np.clip(rng.gamma(2.0, 6.0, n), 0, 300).astype(np.int64),
            }
            writer.write_table(pa.table({k: columns[k] for k in names}))


def _schema(pa: Any, names: list[str]) -> Any:
    return pa.schema([(name, pa.int64()) for name in names])


class Sampler:
    """Samples this process's resident memory every ``interval`` seconds; marks phases."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss_mib(self) -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self.page / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            value = self.rss_mib()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), value)
            time.sleep(self.interval)

    def mark(self, phase: str) -> None:
        value = self.rss_mib()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), value)
        self.phase = phase

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mark("end")
        self._stop.set()
        self._thread.join()


def measure(path: Path, steps: int, threads: int) -> dict[str, Any]:
    """Runs in a fresh process: load ``path`` with ``load_tiktok``, train briefly, report memory."""
    import torch

    import nomoretuning as nt
    from nomoretuning.data import tiktok
    from nomoretuning.models import build_model
    from nomoretuning.training.trainer import Trainer, TrainerConfig

    torch.set_num_threads(threads)
    with Sampler() as sampler:
        baseline = sampler.rss_mib()
        # Phases inside load_tiktok: the reader, the frame checks, the encoders and tensors.
        for name, phase in (
            ("read_table", "load: read_table"),
            ("check_frame", "load: check_frame"),
            ("build_dataset", "load: build_dataset"),
        ):
            original = getattr(tiktok, name)

            def wrapped(*args: Any, _f: Any = original, _p: str = phase, **kw: Any) -> Any:
                sampler.mark(_p)
                try:
                    return _f(*args, **kw)
                finally:
                    sampler.mark("load: other")

            setattr(tiktok, name, wrapped)
        start = time.perf_counter()
        sampler.mark("load: other")
        data = tiktok.load_tiktok(path)
        load_s = time.perf_counter() - start
        after_load = sampler.rss_mib()
        tensors = sum(
            t.numel() * t.element_size()
            for split in (data.train, data.valid, data.test)
            for t in (split.sparse, split.dense, split.groups, *split.labels.values())  # type: ignore[attr-defined]
            if t is not None
        )
        sampler.mark("train")
        torch.manual_seed(0)
        model = build_model(
            "mmoe",
            data.features,
            data.tasks,
            num_experts=4,
            expert_dims=(64,),
            tower_dims=(16,),
            embedding_dim=16,
        )
        config = TrainerConfig(
            batch_size=4096, max_steps=steps, eval_batch_size=65536, progress=False, device="cpu"
        )
        start = time.perf_counter()
        Trainer(model, nt.NMT(list(data.tasks)), data, config).fit()
        train_s = time.perf_counter() - start
    return {
        "baseline_mib": baseline,
        "after_load_mib": after_load,
        "peak_mib": common.peak_rss_mib(),
        "phases": sampler.peaks,
        "tensors_mib": tensors / 2**20,
        "rows": [len(data.train), len(data.valid), len(data.test)],  # type: ignore[arg-type]
        "vocab": [f.vocab_size for f in data.features.sparse],
        "parameters": common.parameters(model),
        "load_s": load_s,
        "train_s": train_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--file", type=Path, default=None, help="an existing TikTok-format file")
    parser.add_argument("--steps", type=int, default=20, help="training steps per NMT stage")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the fresh process
        print(json.dumps(measure(args.measure, args.steps, args.threads)))
        return

    print(common.machine(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "final_track2_train.txt"
            start = time.perf_counter()
            generate(path, args.rows)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.0f} s: {path}")
        raw = path.stat().st_size / 2**20
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                str(path),
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"measurement failed: {done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
    peak = result["peak_mib"]
    print(
        f"file: {sum(result['rows']):,} rows, raw size {raw:,.0f} MiB; splits "
        f"{'/'.join(f'{n:,}' for n in result['rows'])}; vocabularies {result['vocab']}"
    )
    print(
        f"load_tiktok: {result['load_s']:.0f} s; tensors of the three splits "
        f"{result['tensors_mib']:,.0f} MiB ({result['tensors_mib'] / raw:.2f}x raw)"
    )
    print(
        f"training: MMoE {result['parameters']:,} parameters, NMT, batch 4096, {args.steps} steps "
        f"per stage, evaluation on the full validation split: {result['train_s']:.0f} s"
    )
    print(f"{'resident memory (MiB)':<34} {'peak':>9} {'x raw':>7}")
    print(f"{'  after imports (baseline)':<34} {result['baseline_mib']:>9,.0f}")
    for phase, value in result["phases"].items():
        if phase in ("start", "end"):
            continue
        print(f"  {phase:<32} {value:>9,.0f} {value / raw:>7.2f}")
    after = result["after_load_mib"]
    print(f"{'  after loading':<34} {after:>9,.0f} {after / raw:>7.2f}")
    print(f"{'peak of the process (ru_maxrss)':<34} {peak:>9,.0f} {peak / raw:>7.2f}")
    excess = peak - result["baseline_mib"]
    print(f"{'peak above the baseline':<34} {excess:>9,.0f} {excess / raw:>7.2f}")
    verdict = "met" if peak <= 2 * raw else "MISSED"
    print(f"target peak <= 2x raw size: {peak / raw:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
