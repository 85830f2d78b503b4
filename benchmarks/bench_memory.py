"""Memory and speed of loading and streaming TikTok-format logs of millions of rows, in one run.

Generates files in the ICME 2019 TikTok track-2 format (tab separated, 12 integer columns, no
header; user, item, author, music and device ids drawn from heavy-tailed (Zipf) distributions with
the real log's cardinalities, ``finish`` ~37 % and ``like`` ~1 % positive), then measures, each in a
fresh process that first imports everything it needs (the baseline):

1. **In memory** (`load_tiktok`, the lean pyarrow path; STEM's split and vocabularies): peak
   resident memory above the baseline, against the file's raw size (target <= 2x), and the loading
   time. ``--legacy`` adds the pandas path the loader used before, on the smallest file.
2. **Streaming** (`load_tiktok(streaming=True)`): the peak of a whole run (fitting pass, training
   for ``--stream-steps`` steps, validation and test by streaming) with hashed ids (2**16 buckets
   per column; memory does not grow with the vocabulary) and, on the smaller file, with fitted
   vocabularies. Target: the peaks at the two sizes within 10 % of each other and under 1.5 GB.
3. **Throughput**: the same MMoE trained on the same file in memory and streamed (samples/s of
   the training steps, epoch ends and window reads included; target >= 0.8x).

Validation and test are kept whole to compute exact AUCs, so their size sets a memory of its own
(about 50 bytes a row): the streaming runs hold them at 100,000 rows each at every file size, the
throughput runs split 98 / 1 / 1 %.

Usage:
    python benchmarks/bench_memory.py                 # 3M/10M in memory, 10M/50M streamed (~15 min)
    python benchmarks/bench_memory.py --quick         # 1M/3M in memory, 3M/6M streamed
    python benchmarks/bench_memory.py --keep DIR      # generate into DIR and keep the files
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
HASH_BUCKETS = 1 << 16
TEST_SIZE = 0.01  # 98 / 1 / 1 %
EVAL_ROWS = 100_000  # validation and test rows of the streaming runs, whatever the file's size
BATCH = 4096


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
    schema = pa.schema([(name, pa.int64()) for name in names])
    with pacsv.CSVWriter(str(path), schema, write_options=options) as writer:
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


# ------------------------------------------------------------------ measured in a fresh process
def _imports() -> Any:
    """Everything a measurement uses, imported before the baseline is taken."""
    import pandas  # noqa: F401
    import pyarrow.compute
    import pyarrow.csv  # noqa: F401
    import torch

    import nomoretuning as nt
    import nomoretuning.data.streaming
    from nomoretuning.models import build_model
    from nomoretuning.training import trainer

    return torch, nt, build_model, trainer


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(build_model: Any, torch: Any, data: Any) -> Any:
    torch.manual_seed(0)
    return build_model(
        "mmoe", data.features, data.tasks, num_experts=4, expert_dims=(64,), tower_dims=(16,),
        embedding_dim=16,
    )  # fmt: skip


def _timed_steps(trainer: Any) -> list[float]:
    """Records the time of every training step (patched onto the Trainer class)."""
    stamps: list[float] = []
    step = trainer.Trainer._train_step

    def timed(self: Any, batch: Any, bar: Any) -> None:
        stamps.append(time.perf_counter())
        step(self, batch, bar)

    trainer.Trainer._train_step = timed
    return stamps


def measure(job: dict[str, Any]) -> dict[str, Any]:
    torch, nt, build_model, trainer = _imports()
    from nomoretuning.data import load_tiktok

    torch.set_num_threads(job["threads"])
    baseline = _rss_mib()
    path = Path(job["path"])
    out: dict[str, Any] = {"baseline_mib": baseline}
    start = time.perf_counter()
    if job["kind"] == "legacy":
        data = _legacy_load(path)
    else:
        streaming = job["kind"] == "stream"
        data = load_tiktok(
            path,
            test_size=job.get("test_size", TEST_SIZE if streaming or job.get("steps") else 0.1),
            streaming=streaming,
            hash_buckets=HASH_BUCKETS if job.get("hashed") else None,
        )
    out["load_s"] = time.perf_counter() - start
    out["after_load_mib"] = _rss_mib() - baseline
    out["rows"] = {s: len(getattr(data, s)) for s in ("train", "valid", "test")}
    out["vocab"] = [f.vocab_size for f in data.features.sparse]
    if job.get("steps"):
        stamps = _timed_steps(trainer)
        config = trainer.TrainerConfig(
            batch_size=BATCH, max_steps=job["steps"], max_epochs=job.get("epochs", 1),
            eval_every=10**9, patience=10**6, eval_batch_size=65_536, progress=False,
            device="cpu",
        )  # fmt: skip
        model = _model(build_model, torch, data)
        result = trainer.Trainer(model, nt.EqualWeights(list(data.tasks)), data, config).fit()
        out["steps"] = result.steps
        out["train_s"] = stamps[-1] - stamps[0]
        out["samples_per_s"] = (len(stamps) - 1) * BATCH / (stamps[-1] - stamps[0])
        out["test_auc"] = {t: result.test[t]["auc"] for t in data.tasks}
        out["parameters"] = sum(p.numel() for p in model.parameters())
    out["peak_mib"] = _peak_mib() - baseline
    return out


def _legacy_load(path: Path) -> Any:
    """The pandas path ``load_tiktok`` took before the lean loader (read_table + build_dataset)."""
    from nomoretuning.data.prepare import build_dataset, check_frame
    from nomoretuning.data.readers import read_table
    from nomoretuning.data.schema import Schema
    from nomoretuning.data.splits import stem_split
    from nomoretuning.data.tiktok import TIKTOK_READ_OPTIONS, TIKTOK_SPARSE, tiktok_frame

    frame = tiktok_frame(read_table(path, **TIKTOK_READ_OPTIONS), str(path))
    schema = Schema(sparse=TIKTOK_SPARSE, labels=("finish", "like"), group="uid")
    frame = check_frame(frame, schema, str(path))
    train, valid, test = stem_split(len(frame))
    return build_dataset(
        frame, {"train": train, "valid": valid, "test": test}, schema, name="tiktok",
        description="", source=str(path), min_count=10,
    )  # fmt: skip


# ---------------------------------------------------------------------------------- the parent
def _run(job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", json.dumps(job)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"measurement {job} failed: {done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _generate(folder: Path, rows: int) -> Path:
    path = folder / f"tiktok_{rows // 1_000_000}M.txt"
    if not path.exists():
        start = time.perf_counter()
        # In a child process: ru_maxrss would count the generator's pages in every later child.
        subprocess.run([sys.executable, __file__, "--generate", str(path), str(rows)], check=True)
        size = path.stat().st_size / 2**20
        print(f"generated {rows:,} rows ({size:,.0f} MiB) in {time.perf_counter() - start:.0f} s")
    return path


def in_memory(files: dict[int, Path], rows: list[int], legacy: bool, base: dict[str, Any]) -> None:
    print("\n1. In memory (load_tiktok: STEM split, vocabularies with min count 10)")
    print(f"{'file':>16} {'raw MiB':>8} {'load s':>7} {'peak above imports':>19} {'x raw':>6}"
          f" {'kept':>9}")  # fmt: skip
    jobs = [("lean", r) for r in rows]
    if legacy:
        jobs.insert(0, ("legacy", rows[0]))
    for kind, r in jobs:
        got = _run({**base, "kind": kind, "path": str(files[r])})
        raw = files[r].stat().st_size / 2**20
        label = f"{r}M" + (", pandas path" if kind == "legacy" else "")
        print(f"{label:>16} {raw:>8,.0f} {got['load_s']:>7.1f} {got['peak_mib']:>15,.0f} MiB"
              f" {got['peak_mib'] / raw:>6.2f} {got['after_load_mib']:>5,.0f} MiB")  # fmt: skip


def streaming(files: dict[int, Path], rows: list[int], steps: int, base: dict[str, Any]) -> None:
    print(f"\n2. Streaming: the fitting pass, {steps} steps of {BATCH}, validation and test "
          f"({EVAL_ROWS:,} rows each)")  # fmt: skip
    print(f"{'file':>5} {'ids':>14} {'raw MiB':>8} {'fit s':>6} {'train s':>8}"
          f" {'peak above imports':>19}")  # fmt: skip
    peaks = {}
    for r, hashed in [(r, True) for r in rows] + [(rows[0], False)]:
        job = {**base, "kind": "stream", "path": str(files[r]), "hashed": hashed, "steps": steps,
               "test_size": EVAL_ROWS / (r * 1_000_000)}  # fmt: skip
        got = _run(job)
        if hashed:
            peaks[r] = got["peak_mib"]
        ids = f"hashed 2^{HASH_BUCKETS.bit_length() - 1}" if hashed else "vocabularies"
        raw = files[r].stat().st_size / 2**20
        print(f"{r:>4}M {ids:>14} {raw:>8,.0f} {got['load_s']:>6.1f} {got['train_s']:>8.1f}"
              f" {got['peak_mib']:>15,.0f} MiB")  # fmt: skip
    small, large = peaks[rows[0]], peaks[rows[1]]
    spread = abs(large - small) / small
    verdict = "met" if spread <= 0.10 and max(small, large) < 1536 else "MISSED"
    print(f"hashed ids: peaks {small:,.0f} and {large:,.0f} MiB, {spread:.1%} apart "
          f"({verdict}: within 10 % and under 1.5 GB)")  # fmt: skip


def throughput(file: Path, steps: int, base: dict[str, Any]) -> None:
    print(f"\n3. Throughput: the MMoE, batch {BATCH}, {steps} steps, {base['threads']} threads, "
          f"{file.name}")  # fmt: skip
    rates = {}
    for label, kind, hashed in (
        ("in memory", "lean", False),
        ("streamed", "stream", False),
        ("streamed, hashed ids", "stream", True),
    ):
        job = {**base, "kind": kind, "path": str(file), "hashed": hashed, "steps": steps,
               "epochs": 100}  # fmt: skip
        got = _run(job)
        rates[label] = got["samples_per_s"]
        auc = ", ".join(f"{t} {v:.4f}" for t, v in got["test_auc"].items())
        print(f"{label:>22}: {got['samples_per_s']:>9,.0f} samples/s ({got['steps']} steps, "
              f"{got['parameters']:,} parameters, test AUC {auc})")  # fmt: skip
    ratio = rates["streamed"] / rates["in memory"]
    print(f"streamed / in memory: {ratio:.2f}x ({'met' if ratio >= 0.8 else 'MISSED'}: >= 0.8x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M/3M in memory, 3M/6M streamed")
    parser.add_argument("--keep", type=Path, default=None, help="generate into (and keep) DIR")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--legacy", action="store_true", help="also the pandas path (smallest)")
    parser.add_argument("--stream-steps", type=int, default=300)
    parser.add_argument("--throughput-steps", type=int, default=1500)
    parser.add_argument(
        "--sections", default="1,2,3", help="which of 1 (in memory), 2 (streaming), 3 (speed)"
    )
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:  # the fresh process
        print(json.dumps(measure(json.loads(args.measure))))
        return
    if args.generate is not None:
        generate(Path(args.generate[0]), int(args.generate[1]))
        return

    import common

    memory_rows, stream_rows = ([1, 3], [3, 6]) if args.quick else ([3, 10], [10, 50])
    print(common.machine(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = {r: _generate(folder, r * 1_000_000) for r in sorted({*memory_rows, *stream_rows})}
        base = {"threads": args.threads}
        sections = set(args.sections.split(","))
        if "1" in sections:
            in_memory(files, memory_rows, args.legacy, base)
        if "2" in sections:
            streaming(files, stream_rows, args.stream_steps, base)
        if "3" in sections:
            throughput(files[3], args.throughput_steps, base)


if __name__ == "__main__":
    main()
