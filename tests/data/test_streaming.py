"""Streamed datasets: the epochs they give, their vocabularies, splits and bad input.

On the real Census-Income rows written as a table and on the real TikTok sample: the fitting pass
gives the in-memory path's vocabularies (same training rows: split by file), every training row
comes once per epoch, an epoch is a function of the generator, a resumed epoch (``start``) is the
rest of the full one, the lanes of several ranks make up one process's lanes, and memory holds a
window of rows, not the split.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from census_table import census_schema, table_columns, write_census_table

from nomoretuning.data import load_table, load_tiktok
from nomoretuning.data.prepare import SPLITS
from nomoretuning.data.streaming import StreamingSplit, StreamOptions
from nomoretuning.data.streaming.encoding import PieceEncoder
from nomoretuning.errors import DataError


@pytest.fixture(scope="module")
def census_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_census_table(tmp_path_factory.mktemp("census") / "census.csv")


@pytest.fixture(scope="module")
def census_files(census_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The table as train (two files in a folder), valid and test files."""
    frame = pd.read_csv(census_csv, dtype=str, keep_default_na=False)
    root = tmp_path_factory.mktemp("split-files")
    (root / "train").mkdir()
    frame.iloc[:40_000].to_csv(root / "train" / "a.csv", index=False)
    frame.iloc[40_000:80_000].to_csv(root / "train" / "b.csv", index=False)
    frame.iloc[80_000:90_000].to_csv(root / "valid.csv", index=False)
    frame.iloc[90_000:].to_csv(root / "test.csv", index=False)
    return {"train": root / "train", "valid": root / "valid.csv", "test": root / "test.csv"}


def rows_of(batches: list, columns: int = 6) -> Counter:  # type: ignore[type-arg]
    """The rows of batches as a multiset of tuples (the first sparse ids and the labels)."""
    out: Counter = Counter()  # type: ignore[type-arg]
    for b in batches:
        ids = b.sparse[:, :columns].tolist()
        labels = torch.stack(list(b.labels.values()), 1).tolist()
        out.update(tuple(i) + tuple(y) for i, y in zip(ids, labels, strict=True))
    return out


def test_streamed_vocabularies_and_scaler_are_the_in_memory_ones(
    census_files: dict[str, Path],
) -> None:
    columns = table_columns(census_schema())
    memory = load_table(**census_files, **columns, min_count=2)  # type: ignore[arg-type]
    stream = load_table(**census_files, **columns, min_count=2, streaming=True)  # type: ignore[arg-type]
    assert isinstance(stream.train, StreamingSplit)
    assert stream.features == memory.features
    for split in SPLITS:
        assert len(getattr(stream, split)) == len(getattr(memory, split))
    a, b = memory.metadata["encoder"], stream.metadata["encoder"]
    for column, enc in a.categorical.items():  # type: ignore[attr-defined]
        other = b.categorical[column]  # type: ignore[attr-defined]
        assert (enc.vocabulary, enc.counts) == (other.vocabulary, other.counts), column
    np.testing.assert_allclose(b.scaler.mean, a.scaler.mean, rtol=1e-12)  # type: ignore[attr-defined]
    np.testing.assert_allclose(b.scaler.std, a.scaler.std, rtol=1e-12)  # type: ignore[attr-defined]
    # Read in file order, the streamed splits hold the in-memory tensors (groups are hashes of
    # the same ids: the same grouping).
    for split in SPLITS:
        streamed = list(getattr(stream, split).batches(8192, shuffle=False))
        whole = getattr(memory, split)
        assert torch.equal(torch.cat([x.sparse for x in streamed]).long(), whole.sparse.long())
        torch.testing.assert_close(torch.cat([x.dense for x in streamed]), whole.dense)
        for task in memory.tasks:
            assert torch.equal(torch.cat([x.labels[task] for x in streamed]), whole.labels[task])
        hashed = torch.cat([x.groups for x in streamed]).numpy()
        assert len(np.unique(hashed)) == len(np.unique(whole.groups.numpy()))
        pairs = set(zip(hashed.tolist(), whole.groups.tolist(), strict=True))
        assert len(pairs) == len(np.unique(hashed))  # one streamed id per in-memory group


def test_an_epoch_holds_every_training_row_once_and_depends_on_the_generator_only(
    census_csv: Path,
) -> None:
    options = {"piece_rows": 3000, "shuffle_rows": 10_000}
    data = load_table(census_csv, **table_columns(census_schema()), streaming=options)  # type: ignore[arg-type]
    train = data.train
    assert isinstance(train, StreamingSplit)
    assert 0.78 < len(train) / 99_762 < 0.82 and 0.09 < len(data.valid) / 99_762 < 0.11  # type: ignore[arg-type]
    in_order = rows_of(list(train.batches(4096, shuffle=False)))

    def epoch(seed: int, start: int = 0) -> list:  # type: ignore[type-arg]
        generator = torch.Generator().manual_seed(seed)
        return list(train.batches(1000, shuffle=True, generator=generator, start=start))

    first = epoch(0)
    assert [len(b) for b in first] == [1000] * (len(train) // 1000) + [len(train) % 1000]
    assert len(first) == train.num_batches(1000)
    assert rows_of(first) == in_order  # every row once
    again, other = epoch(0), epoch(1)
    assert all(torch.equal(a.sparse, b.sparse) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0].sparse, other[0].sparse)
    # A resumed epoch (from batch 37, inside a later window) is the rest of the full one.
    rest = epoch(0, start=37)
    assert len(rest) == len(first) - 37
    for a, b in zip(first[37:], rest, strict=True):
        assert torch.equal(a.sparse, b.sparse) and torch.equal(a.dense, b.dense)
    # Shuffled beyond one piece: consecutive rows of a batch come from many pieces.
    assert len({int(g) for g in first[0].groups}) > 1  # type: ignore[union-attr]


def test_lanes_deal_pieces_to_ranks_and_make_up_one_process(census_csv: Path) -> None:
    def split(lanes: int | None) -> StreamingSplit:
        options = StreamOptions(piece_rows=2500, shuffle_rows=8000, lanes=lanes)
        data = load_table(census_csv, **table_columns(census_schema()), streaming=options)  # type: ignore[arg-type]
        assert isinstance(data.train, StreamingSplit)
        return data.train

    two = split(2)
    generator = torch.Generator().manual_seed(5)
    whole = list(two.batches(512, shuffle=True, generator=generator))
    assert len(whole) == two.num_batches(512)
    assert all(len(b) == 512 for b in whole)
    ranks = [
        list(split(None).batches(512, shuffle=True, generator=torch.Generator().manual_seed(5),
                                 rank=r, world=2))
        for r in range(2)
    ]  # fmt: skip
    assert [len(r) for r in ranks] == [len(whole)] * 2
    for batch, a, b in zip(whole, *ranks, strict=True):
        assert len(a) == len(b) == 256
        assert torch.equal(batch.sparse, torch.cat([a.sparse, b.sparse]))
    # Each rank reads only its lane's pieces, and every row is seen at most once per epoch
    # (a few rows of the longer lane wait for another epoch).
    seen = rows_of([b for rank in ranks for b in rank])
    assert max(seen.values()) <= max(rows_of(list(two.batches(8192, shuffle=False))).values())
    assert sum(seen.values()) >= len(two) - 2 * 2500
    for lanes in (1, 3):
        part = split(lanes)
        got = list(part.batches(300, shuffle=True, generator=torch.Generator().manual_seed(0)))
        assert len(got) == part.num_batches(300)
    with pytest.raises(DataError, match="lanes=3 cannot be dealt to 2 ranks"):
        next(split(3).batches(300, shuffle=True, world=2))
    # more lanes than pieces: a lane without a batch is one line, not an empty epoch
    lonely = split(64)
    with pytest.raises(DataError, match=r"dealt to 64 lanes leave a lane without a batch"):
        lonely.num_batches(512)


def test_memory_holds_a_window_of_rows(census_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = StreamOptions(piece_rows=2000, shuffle_rows=6000)
    data = load_table(census_csv, **table_columns(census_schema()), streaming=options)  # type: ignore[arg-type]
    held: list[int] = []
    window = StreamingSplit._window

    def counted(self: StreamingSplit, pieces: list[int], *args: object) -> object:
        rows = window(self, pieces, *args)  # type: ignore[arg-type]
        held.append(len(rows))  # type: ignore[arg-type]
        return rows

    monkeypatch.setattr(StreamingSplit, "_window", counted)
    total = sum(len(b) for b in data.train.batches(512, shuffle=True))  # type: ignore[attr-defined]
    assert total == len(data.train)  # type: ignore[arg-type]
    assert len(held) >= len(data.train) // 8000  # type: ignore[arg-type]
    assert max(held) < 6000 + 2000  # the buffer and at most one piece more


def test_a_key_column_keeps_each_value_in_one_split(census_csv: Path) -> None:
    # five races, one of them most rows: the splits come out far from their fractions, said
    with pytest.warns(UserWarning, match="split_key='race' gave train .* a few 'race' values"):
        data = load_table(
            census_csv,
            **table_columns(census_schema()),  # type: ignore[arg-type]
            streaming=True,
            split_key="race",  # also the group column: its ids are hashes of the raw values
            split=(0.6, 0.2, 0.2),
        )
    values = [
        {int(g) for b in getattr(data, s).batches(50_000, shuffle=False) for g in b.groups}
        for s in SPLITS
    ]
    assert all(values) and not (
        values[0] & values[1] or values[0] & values[2] or values[1] & values[2]
    )


def test_hashed_ids_need_no_pass_and_serve_every_split(tiktok_path: Path) -> None:
    data = load_tiktok(tiktok_path, streaming=True, hash_buckets=1000, allow_single_class=True)
    assert [f.vocab_size for f in data.features.sparse] == [1001] * 8
    assert sum(data.metadata["rows"].values()) == 200  # type: ignore[attr-defined]
    batches = list(data.train.batches(64, shuffle=True))  # type: ignore[attr-defined]
    ids = torch.cat([b.sparse for b in batches])
    assert int(ids.min()) >= 0 and int(ids.max()) <= 1000
    memory = load_tiktok(tiktok_path, hash_buckets=1000, allow_single_class=True)
    ours = sorted(map(tuple, torch.cat([b.sparse for b in batches]).tolist()))
    assert len(ours) == len(data.train)  # type: ignore[arg-type]
    mixed = load_tiktok(
        tiktok_path, streaming=True, hash_buckets={"item_id": 50}, allow_single_class=True
    )
    sizes = {f.name: f.vocab_size for f in mixed.features.sparse}
    assert sizes["item_id"] == 51 and sizes["uid"] == memory_vocab(tiktok_path)["uid"]
    assert set(ours) <= set(map(tuple, torch.cat(
        [memory.train.sparse, memory.valid.sparse, memory.test.sparse]).tolist()))  # type: ignore[attr-defined]  # fmt: skip


def test_a_streamed_tiktok_log_splits_by_user(tiktok_path: Path) -> None:
    data = load_tiktok(tiktok_path, streaming=True, split_key="uid", allow_single_class=True)
    assert sum(data.metadata["rows"].values()) == 200  # type: ignore[attr-defined]
    users = [  # raw uids are the groups: no user in two splits
        {int(g) for b in getattr(data, s).batches(1000, shuffle=False) for g in b.groups}
        for s in SPLITS
    ]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert "column 'uid'" in data.description
    with pytest.raises(DataError, match="split_key='uid' splits a streamed log"):
        load_tiktok(tiktok_path, split_key="uid", allow_single_class=True)
    for column in ("user", "like"):  # not a column; a label, not an id
        with pytest.raises(DataError, match=f"split_key='{column}' is not an id column"):
            load_tiktok(tiktok_path, streaming=True, split_key=column, allow_single_class=True)


def test_bad_streaming_options_and_inputs(census_csv: Path, tmp_path: Path) -> None:
    columns = table_columns(census_schema())
    for streaming, message in (
        ({"buffer": 3}, "streaming option 'buffer' is unknown"),
        ({"piece_rows": 0}, "piece_rows must be"),
        ("yes", "streaming='yes' is invalid"),
    ):
        with pytest.raises(DataError, match=message):
            load_table(census_csv, **columns, streaming=streaming)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="hash_buckets=-3 is invalid"):
        load_table(census_csv, **columns, hash_buckets=-3)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="split_key='race' splits a streamed table"):
        load_table(census_csv, **columns, split_key="race")  # type: ignore[arg-type]
    packed = tmp_path / "census.csv.gz"
    packed.write_bytes(b"")
    with pytest.raises(DataError, match="file is empty"):
        load_table(packed, **columns, streaming=True)  # type: ignore[arg-type]
    pd.read_csv(census_csv, nrows=2000).to_csv(packed, index=False)
    with pytest.raises(DataError, match="compressed text file cannot be streamed"):
        load_table(packed, **columns, streaming=True)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="is missing"):
        load_table(census_csv, **{**columns, "labels": ["clicked"]}, streaming=True)  # type: ignore[arg-type]
    assert PieceEncoder  # the encoder is public for custom streams


def test_a_subset_is_a_contiguous_share_in_file_order(census_csv: Path) -> None:
    options = StreamOptions(piece_rows=2500, shuffle_rows=8000)
    data = load_table(census_csv, **table_columns(census_schema()), streaming=options)  # type: ignore[arg-type]
    valid = data.valid
    assert isinstance(valid, StreamingSplit)
    whole = torch.cat([b.sparse for b in valid.batches(4096, shuffle=False)])
    for rows in (slice(0, 700), slice(333, 5001), slice(4000, None)):
        part = valid.subset(rows)
        got = torch.cat([b.sparse for b in part.batches(1000, shuffle=False)])
        assert len(part) == len(got) and torch.equal(got, whole[rows])
    inner = valid.subset(slice(1000, 6000)).subset(slice(10, 20))
    assert torch.equal(next(iter(inner.batches(64, shuffle=False))).sparse, whole[1010:1020])


def memory_vocab(path: Path) -> dict[str, int]:
    data = load_tiktok(path, allow_single_class=True)
    return {f.name: f.vocab_size for f in data.features.sparse}


def test_parquet_row_groups_stream_as_pieces(census_files: dict[str, Path], tmp_path: Path) -> None:
    columns = table_columns(census_schema())
    parquet = {}
    for name, path in census_files.items():
        text = dict.fromkeys((*census_schema().sparse, "race"), str)
        files = sorted(Path(path).glob("*.csv")) if Path(path).is_dir() else [Path(path)]
        frame = pd.concat([pd.read_csv(f, dtype=text) for f in files])  # missing ids: null
        parquet[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(parquet[name], index=False, row_group_size=7000)
    memory = load_table(**census_files, **columns)  # type: ignore[arg-type]
    stream = load_table(**parquet, **columns, streaming=True)  # type: ignore[arg-type]
    assert isinstance(stream.train, StreamingSplit)
    assert len(stream.train.pieces) == -(-80_000 // 7000)
    got = torch.cat([b.sparse for b in stream.train.batches(10_000, shuffle=False)])
    assert torch.equal(got.long(), memory.train.sparse.long())  # type: ignore[attr-defined]
    assert rows_of(list(stream.train.batches(999, shuffle=True))) == rows_of(
        [memory.train.full_batch()]
    )  # type: ignore[attr-defined]


def test_a_generated_log_of_many_pieces(tmp_path: Path) -> None:
    """A generated TikTok-format log (bench_memory's generator): the lean path gives the pandas
    path's dataset, and a streamed epoch holds every training row once."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_memory

    path = tmp_path / "log.txt"
    bench_memory.generate(path, 120_000, seed=3)
    data = load_tiktok(path, streaming={"piece_rows": 9000, "shuffle_rows": 30_000})
    train = data.train
    assert isinstance(train, StreamingSplit) and len(train.pieces) == 14
    epoch = list(train.batches(2048, shuffle=True, generator=torch.Generator().manual_seed(1)))
    assert rows_of(epoch, columns=8) == rows_of(list(train.batches(50_000, shuffle=False)), 8)
    memory = load_tiktok(path)
    assert memory.features.sparse[1].name == "item_id"
    assert 0.8 < sum(len(b) for b in epoch) / len(memory.train) < 1.2  # type: ignore[arg-type]
