"""SVMlight/LETOR learning-to-rank files: `load_svmlight_ranking` and its `RankingArrays`.

A row is ``label [qid:Q] index:value ... [# comment]``; groups (queries) come from a LightGBM-style
``.query`` file of group sizes or from the rows' ``qid:``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from nomoretuning.checks import optional_path
from nomoretuning.errors import DataError

__all__ = ["RankingArrays", "check_relevance", "load_svmlight_ranking"]


class RankingArrays(NamedTuple):
    """Rows of a learning-to-rank file: ``features`` float32 ``[N, F]`` (dense), ``relevance``
    float32 ``[N]``, ``groups`` int64 ``[N]`` (0..G-1 in order of first appearance)."""

    features: np.ndarray
    relevance: np.ndarray
    groups: np.ndarray


def load_svmlight_ranking(
    path: str | Path,
    *,
    query_path: str | Path | None = None,
    n_features: int | None = None,
    zero_based: bool | Literal["auto"] = "auto",
    require_groups: bool = True,
) -> RankingArrays:
    """Reads an SVMlight/LETOR ranking file: ``label [qid:Q] index:value ... [# comment]``.

    Groups come from, in this order: ``query_path`` (one group size per line, rows in file
    order, as LightGBM's ``.query`` files), else the ``qid:`` of every row (rows with the same
    qid form one group), else a sibling ``<path>.query`` file. Parsing uses scikit-learn's
    ``load_svmlight_file`` (imported here, so only this loader needs scikit-learn).

    Args:
        path: the SVMlight/LETOR file.
        query_path: optional group-size file.
        n_features: number of columns (default: the largest index in the file).
        zero_based: whether indices start at 0; ``"auto"`` (scikit-learn's rule: one-based
            unless an index 0 appears). LETOR and LightGBM's example are one-based.
        require_groups: with False, a file without group information for every row (``qid:``
            on some rows or none, no ``.query``) reads with every group -1 (rows to score, not
            to rank).

    Raises:
        DataError: missing file, unparsable row, group sizes that do not sum to the row count,
            or no group information, with a one-line message naming the file.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "toy.txt"
        >>> _ = f.write_text("2 qid:9 1:0.5\\n0 qid:9 2:1\\n1 qid:4 1:1 2:1\\n")
        >>> data = load_svmlight_ranking(f)
        >>> data.features.shape, data.relevance.tolist(), data.groups.tolist()
        ((3, 2), [2.0, 0.0, 1.0], [0, 0, 1])
    """
    optional_path(path, "path", error=DataError)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: file not found; pass the path of an SVMlight/LETOR ranking file")
    features, relevance, qid = _parse(file, n_features, zero_based)
    sibling = file.with_name(file.name + ".query")
    ungrouped = len(qid) < relevance.size and not sibling.is_file()
    if not require_groups and query_path is None and ungrouped:
        return RankingArrays(features, relevance, np.full(relevance.size, -1, dtype=np.int64))
    sizes_file = _group_size_file(file, query_path, has_qid=len(qid) > 0)
    if sizes_file is not None:
        groups = _groups_from_sizes(sizes_file, file, relevance.size)
    else:
        groups = _groups_from_qid(file, qid, relevance.size)
    return RankingArrays(features, relevance, groups)


def _parse(
    file: Path, n_features: int | None, zero_based: bool | Literal["auto"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense float32 features, finite float32 relevance labels and the qids (empty if none)."""
    try:
        from sklearn.datasets import load_svmlight_file
    except ImportError:  # pragma: no cover - scikit-learn ships with the data extra
        raise ImportError(
            "load_svmlight_ranking needs scikit-learn to parse SVMlight files: "
            "pip install 'nomoretuning[data]'"
        ) from None
    try:
        X, y, qid = load_svmlight_file(
            str(file),
            n_features=n_features,
            dtype=np.float32,
            zero_based=zero_based,
            query_id=True,
        )
    except ValueError as error:
        located = _first_bad_line(file, n_features, zero_based)
        message = located or " ".join(str(error).split())
        raise DataError(
            f"{file}: not a valid SVMlight/LETOR file ({message}); expected lines "
            "'label [qid:ID] index:value ...'"
        ) from None
    if int(X.shape[0]) == 0:
        raise DataError(f"{file}: no rows; expected lines 'label [qid:ID] index:value ...'")
    relevance = np.asarray(y, dtype=np.float32)
    if not np.isfinite(relevance).all():
        raise DataError(f"{file}: relevance labels must be finite numbers")
    return np.asarray(X.toarray(), dtype=np.float32), relevance, np.asarray(qid)


def _group_size_file(file: Path, query_path: str | Path | None, has_qid: bool) -> Path | None:
    """``query_path``, else None when the rows have qids, else the sibling ``<file>.query``."""
    if query_path is not None:
        return Path(query_path)
    if has_qid:
        return None
    sibling = file.with_name(file.name + ".query")
    if not sibling.is_file():
        raise DataError(
            f"{file}: no query ids (no 'qid:' and no {sibling.name} beside it); give the rows "
            f"'qid:', or write {sibling.name} with one group size per line (in Python, "
            "query_path= names the file)"
        )
    return sibling


def _groups_from_sizes(sizes_file: Path, file: Path, n: int) -> np.ndarray:
    sizes = _read_group_sizes(sizes_file)
    if int(sizes.sum()) != n:
        raise DataError(
            f"{sizes_file}: group sizes sum to {int(sizes.sum())} but {file.name} has {n} "
            "rows; the file needs one group size per line, in row order"
        )
    return np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)


def _groups_from_qid(file: Path, qid: np.ndarray, n: int) -> np.ndarray:
    if len(qid) != n:
        first = next((number for number, tokens in _data_lines(file) if not _has_qid(tokens)), None)
        where = "" if first is None else f" (the first at line {first})"
        raise DataError(
            f"{file}: {n - len(qid)} of {n} rows lack 'qid:'{where}; give every row a qid, or "
            f"write {file.name}.query with one group size per line (in Python, query_path= "
            "names the file)"
        )
    return _first_appearance_codes(qid)


def _read_group_sizes(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: group-size file not found; pass query_path= with one size a line")
    sizes: list[int] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            size = int(text)
        except ValueError:
            size = 0
        if size < 1:
            raise DataError(
                f"{path}: line {number} is {text!r}; a group-size file holds one positive "
                "integer (rows of one query) per line"
            )
        sizes.append(size)
    if not sizes:
        raise DataError(f"{path}: no group sizes; expected one positive integer per line")
    return np.asarray(sizes, dtype=np.int64)


def _first_appearance_codes(ids: np.ndarray) -> np.ndarray:
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]


def check_relevance(file: Path, relevance: np.ndarray) -> None:
    """Refuses a negative relevance label of ``file`` (NDCG's gains need labels >= 0), naming
    its line; labels to train or evaluate on pass through it, rows to score need not.

    Example:
        >>> check_relevance(Path("rank.txt"), np.array([0.0, 2.0]))
    """
    negative = np.flatnonzero(relevance < 0)
    if negative.size:
        line = _data_lines(file)[int(negative[0])][0]
        raise DataError(
            f"{file}: relevance {float(relevance[negative[0]]):g} at line {line}; relevance "
            "labels must be >= 0 (NDCG's gains need it): shift or clip them at 0"
        )


def _data_lines(file: Path) -> list[tuple[int, list[str]]]:
    """(line number, tokens) of every data line, comments removed: for error messages only."""
    with file.open(encoding="utf-8", errors="replace") as handle:
        return [
            (number, tokens)
            for number, line in enumerate(handle, start=1)
            if (tokens := line.split("#", 1)[0].split())
        ]


def _has_qid(tokens: list[str]) -> bool:
    return len(tokens) > 1 and tokens[1].startswith("qid:")


def _first_bad_line(
    file: Path, n_features: int | None, zero_based: bool | Literal["auto"]
) -> str | None:
    """What is wrong with the first bad line (a label that is not a number, a feature index
    beyond ``n_features``, a malformed pair), or None when no line is found at fault."""
    offset = 0 if zero_based is True else 1
    for number, tokens in _data_lines(file):
        try:
            float(tokens[0])
        except ValueError:
            return f"line {number}: label {tokens[0]!r} is not a number"
        for token in tokens[1:]:
            key, _, value = token.partition(":")
            if key == "qid":
                continue
            try:
                index = int(key)
                float(value)
            except ValueError:
                return f"line {number}: {token!r} is not 'index:value'"
            if zero_based is not True and index == 0 and zero_based is False:
                return f"line {number}: index 0 in a one-based file (pass zero_based: true)"
            if n_features is not None and index - offset >= n_features:
                return f"line {number}: feature index {index} is beyond n_features {n_features}"
    return None
