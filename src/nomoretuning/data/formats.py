"""`InputFormat`: how a dataset's raw files are read, as plain JSON data.

Every builder that reads files stores one in ``PreparedDataset.metadata["input_format"]``, so a
trained run can read new files the way its training data was read
(`nomoretuning.data.preprocessing`). ``kind`` names the reader; ``options`` are its settings.

Kinds:

- ``census_income``: the raw UCI Census-Income (KDD) file (``tasks``: the label rules to apply);
- ``tiktok``: the ICME 2019 track-2 log (tab separated, no header);
- ``qk_video``: Tenrec's ``QK-video.csv`` (or Parquet with its columns);
- ``table``: a CSV/TSV/Parquet table with a header (``sep``: its separator, or null);
- ``letor``: an SVMlight/LETOR ranking file (``n_features``, ``zero_based``);
- ``encoded``: a CSV/Parquet table whose sparse columns already hold vocabulary indices and whose
  dense columns hold model inputs (the generators' data: ``synthetic``, ``search_logs``).

Example:
    >>> fmt = InputFormat("table", {"sep": ","})
    >>> InputFormat.from_dict(fmt.to_dict()) == fmt
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from nomoretuning.errors import DataError

__all__ = ["INPUT_KINDS", "InputFormat", "InputKind"]

InputKind = Literal["census_income", "tiktok", "qk_video", "table", "letor", "encoded"]
INPUT_KINDS: tuple[InputKind, ...] = get_args(InputKind)
"""Every `InputKind`."""


@dataclass(frozen=True)
class InputFormat:
    """A reader (``kind``) and its options (JSON values only)."""

    kind: InputKind
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise DataError(
                f"input format {self.kind!r} is unknown; known: {', '.join(INPUT_KINDS)}"
            )
        object.__setattr__(self, "options", dict(self.options))

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.options))))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> InputFormat:
        return cls(cast(InputKind, state["kind"]), dict(state.get("options", {})))
