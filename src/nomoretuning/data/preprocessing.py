"""A trained run's preprocessing: new files read as the training data was read, and encoded with
the vocabularies and statistics fitted on its training split.

`Preprocessing` joins a dataset's `InputFormat` (how its raw files are read), its fitted
`FeatureEncoder` (schema, vocabularies, dense mean and std) and its tasks (with the ranking
objective's `PairwiseSpec` when it has one). It is plain data: `save` writes it as versioned JSON
(never pickle) and `load` reads it back without the training data.

Reading is chunked (`read`): a file of any size passes through in pieces of ``chunk_rows`` rows,
except LETOR files, which are parsed whole. Unseen ids map to the OOV index 0, as in training.
Group ids (for gAUC and ranking metrics) are 64-bit hashes of the raw group tokens, the same in
every chunk; a ranking file's queries come from its ``qid:`` or ``.query`` file.

Example:
    >>> import pathlib, tempfile
    >>> from nomoretuning.data import load_table
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rows = "".join(f"u{i % 7},{i / 10},{i % 2}\\n" for i in range(60))
    >>> _ = (folder / "log.csv").write_text("user,price,click\\n" + rows)
    >>> ds = load_table(folder / "log.csv", sparse=["user"], dense=["price"], labels=["click"])
    >>> prep = Preprocessing.from_dataset(ds)
    >>> prep.save(folder / "preprocessing.json")
    >>> again = Preprocessing.load(folder / "preprocessing.json")
    >>> rows = next(again.read(folder / "log.csv", labels=True))
    >>> rows.sparse.shape, rows.dense.shape, rows.labels["click"][:4].tolist()
    ((60, 1), (60, 1), [0.0, 1.0, 0.0, 1.0])
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nomoretuning.data.batching import PreparedDataset
from nomoretuning.data.census import CENSUS_COLUMNS, CENSUS_READ_OPTIONS, census_frame
from nomoretuning.data.encoders import (
    CategoricalEncoder,
    DenseScaler,
    FeatureEncoder,
    to_tokens,
)
from nomoretuning.data.formats import InputFormat
from nomoretuning.data.prepare import binary_label, ranking_label, shift_rows
from nomoretuning.data.ranking.spec import PairwiseSpec
from nomoretuning.data.ranking.svmlight import load_svmlight_ranking
from nomoretuning.data.readers import read_json, read_table_chunks
from nomoretuning.data.schema import MissingColumnError, Schema, missing_column
from nomoretuning.data.tiktok import TIKTOK_COLUMNS, TIKTOK_READ_OPTIONS, tiktok_frame
from nomoretuning.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PREPROCESSING_VERSION", "EncodedRows", "Preprocessing"]

PREPROCESSING_VERSION = 1
"""Version of the ``preprocessing.json`` layout; another version is refused with a clear message."""

PathLike = str | os.PathLike[str]


@dataclass
class EncodedRows:
    """Model inputs of some rows: ``sparse`` int64 ``[N, S]``, ``dense`` float32 ``[N, D]``, the
    labels per task (None when not asked for), the group ids (None without a group column) and the
    columns carried through (``kept``, None when none were asked for)."""

    sparse: np.ndarray
    dense: np.ndarray
    labels: dict[str, np.ndarray] | None
    groups: np.ndarray | None
    kept: pd.DataFrame | None = None

    def __len__(self) -> int:
        return int(self.sparse.shape[0])


class Preprocessing:
    """How a run reads and encodes rows (see the module docstring).

    Args:
        input_format: the reader of the run's raw files.
        encoder: the `FeatureEncoder` fitted on the training split; its schema's labels are the
            run's tasks, in order.
        objective: the ranking objective's spec; None for binary tasks.
    """

    def __init__(
        self,
        input_format: InputFormat,
        encoder: FeatureEncoder,
        objective: PairwiseSpec | None = None,
    ) -> None:
        self.input_format = input_format
        self.encoder = encoder
        self.objective = objective

    @property
    def schema(self) -> Schema:
        return self.encoder.schema

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.schema.labels

    @property
    def ranking(self) -> bool:
        """Whether the tasks are pairwise ranking tasks on one score (graded labels)."""
        return self.objective is not None

    # ------------------------------------------------------------------ building and saving
    @classmethod
    def from_dataset(
        cls, dataset: PreparedDataset, tasks: Sequence[str] | None = None
    ) -> Preprocessing:
        """The preprocessing of a dataset built by one of the library's builders.

        ``tasks`` (default: the dataset's) are the tasks a run trained, in its order.

        Raises:
            DataError: the dataset records no input format (built by hand).
        """
        chosen = tuple(tasks) if tasks is not None else tuple(dataset.tasks)
        input_format = dataset.metadata.get("input_format")
        if not isinstance(input_format, InputFormat):
            raise DataError(
                f"dataset {dataset.name!r} records no input format, so new files cannot be read "
                "as its training data was; build it with one of nomoretuning.data's loaders"
            )
        spec = dataset.metadata.get("objective")
        objective = spec if isinstance(spec, PairwiseSpec) else None
        fitted = dataset.metadata.get("encoder")
        if isinstance(fitted, FeatureEncoder):
            encoder = FeatureEncoder.from_dict(fitted.to_dict())
            s = encoder.schema
            encoder.schema = Schema(s.sparse, s.dense, chosen, s.group)
        else:
            encoder = _identity_encoder(dataset, chosen, input_format.options.get("group"))
        return cls(input_format, encoder, objective)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see `save`)."""
        objective = None
        if self.objective is not None:
            objective = {
                "pair_masks": dict(self.objective.pair_masks),
                "gains": dict(self.objective.gains),
                "max_pairs_per_group": self.objective.max_pairs_per_group,
                "k": self.objective.k,
                "loss": self.objective.loss,
            }
        return {
            "version": PREPROCESSING_VERSION,
            "input_format": self.input_format.to_dict(),
            "encoder": self.encoder.to_dict(),
            "objective": objective,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any], source: str = "preprocessing") -> Preprocessing:
        """Reads `to_dict`'s form back.

        Raises:
            DataError: another version, or a missing or malformed entry.
        """
        version = state.get("version") if isinstance(state, Mapping) else None
        if version != PREPROCESSING_VERSION:
            raise DataError(
                f"{source}: preprocessing version {version!r} is not supported (this library "
                f"reads version {PREPROCESSING_VERSION}); score it with the version that trained "
                "it, or train the run again"
            )
        try:
            spec = state["objective"]
            objective = None if spec is None else PairwiseSpec(**spec)
            return cls(
                InputFormat.from_dict(state["input_format"]),
                FeatureEncoder.from_dict(state["encoder"]),
                objective,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"{source}: malformed preprocessing ({error}); train the run again"
            ) from None

    def save(self, path: PathLike) -> None:
        """Writes the JSON form to ``path`` atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: PathLike) -> Preprocessing:
        """Reads a file written by `save`.

        Raises:
            DataError: a missing, unreadable or incompatible file.
        """
        file = Path(path)
        if not file.is_file():
            raise DataError(f"{file}: no preprocessing file; is this a run directory of `train`?")
        return cls.from_dict(read_json(file, "preprocessing"), str(file))

    # ------------------------------------------------------------------------- reading
    def input_columns(self) -> tuple[str, ...]:
        """The columns a file of this run has (the names ``keep`` may use)."""
        kind = self.input_format.kind
        if kind == "census_income":
            return tuple(c for c in CENSUS_COLUMNS if c != "instance_weight")
        if kind == "tiktok":
            return TIKTOK_COLUMNS
        if kind == "letor":
            return ("qid", *self.tasks)
        return self.schema.columns

    def read(
        self,
        path: PathLike,
        *,
        labels: bool = False,
        keep: Sequence[str] = (),
        chunk_rows: int = 100_000,
    ) -> Iterator[EncodedRows]:
        """A file in the run's input format, encoded, in pieces of at most ``chunk_rows`` rows in
        file order (LETOR files in one piece).

        With ``labels``, each piece holds every task's labels; ``keep`` columns of the file are
        carried through unchanged. Row numbers in errors count from the top of the file.

        Raises:
            DataError: a missing or unreadable file, a missing column (named), a bad value.
        """
        src = str(path)
        offset = 0
        try:
            for frame in self._frames(path, src, labels, tuple(keep), chunk_rows):
                rows = self.encode(frame, src, labels=labels, keep=keep)
                yield rows
                offset += len(rows)
        except MissingColumnError as error:
            if error.column in keep:  # a --keep column, not one the run needs
                raise missing_column(src, error.column, error.present, "given to keep") from None
            raise
        except DataError as error:
            raise shift_rows(error, offset) from None

    def _frames(
        self, path: PathLike, src: str, labels: bool, keep: tuple[str, ...], chunk_rows: int
    ) -> Iterator[pd.DataFrame]:
        kind, options = self.input_format.kind, self.input_format.options
        if kind == "census_income":
            for raw in read_table_chunks(path, chunk_rows=chunk_rows, **CENSUS_READ_OPTIONS):
                yield census_frame(raw, self.tasks, src, labels=labels)
        elif kind == "tiktok":
            for raw in read_table_chunks(path, chunk_rows=chunk_rows, **TIKTOK_READ_OPTIONS):
                yield tiktok_frame(raw, src)
        elif kind == "letor":
            yield self._letor_frame(path, options, labels, keep)
        else:
            schema = self.schema
            wanted = [*schema.features, *(schema.labels if labels else ())]
            if schema.group is not None and labels:  # gAUC and NDCG need it, scores do not
                wanted.append(schema.group)
            wanted = list(dict.fromkeys([*wanted, *keep]))
            # ids read verbatim, as in training (an encoded table's ids are numbers already)
            ids = (*schema.sparse, *([schema.group] if schema.group else []))
            text = {} if kind == "encoded" else dict.fromkeys(ids, str)
            yield from read_table_chunks(
                path, chunk_rows=chunk_rows, sep=options.get("sep"), columns=wanted, dtype=text
            )

    def _letor_frame(
        self, path: PathLike, options: Mapping[str, Any], labels: bool, keep: tuple[str, ...]
    ) -> pd.DataFrame:
        """The rows of a LETOR file; queries are needed to evaluate or to keep ``qid``, not to
        score (rows without them get query -1)."""
        import pandas as pd

        data = load_svmlight_ranking(
            Path(path),
            n_features=options.get("n_features"),
            zero_based=options.get("zero_based", "auto"),
            require_groups=labels or "qid" in keep,
        )
        frame = pd.DataFrame(data.features, columns=list(self.schema.dense))
        for task in self.tasks:
            frame[task] = data.relevance
        frame["qid"] = data.groups
        return frame

    # ------------------------------------------------------------------------ encoding
    def encode(
        self,
        frame: pd.DataFrame,
        source: str = "data",
        *,
        labels: bool = False,
        keep: Sequence[str] = (),
    ) -> EncodedRows:
        """The model inputs of ``frame``: a table with the run's named columns (features, the group
        column if any, and with ``labels`` a column per task).

        With ``labels``, each task's label column is checked (0/1 for binary tasks, finite numbers
        for ranking tasks) and returned.

        Raises:
            DataError: a missing column (named), a non-numeric dense value, a bad label.
        """
        frame = frame.reset_index(drop=True)
        sparse, dense = self.encoder.transform(frame, source)
        targets: dict[str, np.ndarray] | None = None
        if labels:
            targets = {}
            for task in self.tasks:
                if task not in frame.columns:
                    raise missing_column(source, task, [str(c) for c in frame.columns])
                targets[task] = self._label(frame[task], task, source)
        twice = [c for i, c in enumerate(keep) if c in keep[:i]]
        if twice:
            raise DataError(f"keep lists the column {twice[0]!r} twice; list it once")
        for column in keep:
            if column not in frame.columns:
                present = [str(c) for c in frame.columns]
                raise missing_column(source, column, present, "given to keep")
        kept = frame[list(keep)].reset_index(drop=True) if keep else None
        groups = self._groups(frame, sparse, source, required=labels)
        return EncodedRows(sparse, dense, targets, groups, kept)

    def _label(self, values: pd.Series, task: str, source: str) -> np.ndarray:
        if not self.ranking:
            return binary_label(values, task, source)
        return ranking_label(values, task, source)

    def _groups(
        self, frame: pd.DataFrame, sparse: np.ndarray, source: str, *, required: bool
    ) -> np.ndarray | None:
        """The group ids of ``frame`` (None without a group column: rows to score need none)."""
        import pandas as pd

        group = self.schema.group
        if group is None:
            return None
        if self.input_format.options.get("groups_from_encoded"):
            return sparse[:, self.schema.sparse.index(group)].copy()
        if group not in frame.columns:
            if not required:
                return None
            raise missing_column(source, group, [str(c) for c in frame.columns])
        if self.input_format.kind in ("letor", "encoded"):
            return np.asarray(pd.to_numeric(frame[group]), dtype=np.int64)
        hashed = pd.util.hash_pandas_object(to_tokens(frame[group]), index=False)
        return np.asarray(hashed.to_numpy(dtype=np.uint64).view(np.int64))


def _identity_encoder(
    dataset: PreparedDataset, tasks: tuple[str, ...], group: object
) -> FeatureEncoder:
    """The encoder of a generator's data: sparse columns already hold indices 0..V-1 (index i
    keeps i, anything else is OOV 0), dense columns are used as they are."""
    features = dataset.features
    encoder = FeatureEncoder(
        Schema(
            sparse=[f.name for f in features.sparse],
            dense=features.dense,
            labels=tasks,
            group=group if isinstance(group, str) else None,
        )
    )
    for field in features.sparse:
        categorical = CategoricalEncoder.from_dict(
            {"min_count": 1, "vocabulary": [str(i) for i in range(1, field.vocab_size)]}
        )
        encoder.categorical[field.name] = categorical
    encoder.scaler = DenseScaler.identity(len(features.dense))
    return encoder
