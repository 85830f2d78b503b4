"""NMT: the combiner (`combiner`), its constraints' formulas (`constraint`), the multiplier update
rules (`dual`) and the parsing of priority levels (`levels`)."""

from nomoretuning.core.nmt.combiner import NMT
from nomoretuning.core.nmt.dual import DualRule, MultiplierState, PIController, ProjectedAscent

__all__ = ["NMT", "DualRule", "MultiplierState", "PIController", "ProjectedAscent"]
