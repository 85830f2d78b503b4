"""Helpers of the NMT tests that drive the constrained stages by hand."""

from __future__ import annotations

import functools

import torch

import nomoretuning as nt

NMT = functools.partial(nt.NMT, joint_start=False)
"""NMT without the joint first stage (the default schedule is tested in test_combiner.py)."""


def scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def in_stage_two(**kwargs: object) -> nt.NMT:
    """An NMT over ("top", "low") in its constrained stage, the top task's bound 1."""
    nmt = NMT(["top", "low"], **kwargs)  # type: ignore[arg-type]
    nmt.next_stage(bound=1.0)
    return nmt
