"""Pure helpers for the figures: percentiles, run summaries and ratios (no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks.

    The same definition as ``numpy.percentile``'s default, so a reader can check it.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is zero."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Best and median of repeated measurements of a rate (higher is better)."""

    runs: int
    best: float
    median: float
    worst: float

    @classmethod
    def of(cls, rates: Sequence[float]) -> RunSummary:
        if not rates:
            raise ValueError("no runs to summarise")
        return cls(len(rates), max(rates), statistics.median(rates), min(rates))

    def as_dict(self) -> dict[str, float | int]:
        return {"runs": self.runs, "best": self.best, "median": self.median, "worst": self.worst}


def rate(events: int, seconds: float) -> float:
    """Events per second; a non-positive duration is a measurement error, not infinity."""
    if seconds <= 0:
        raise ValueError(f"cannot take a rate over {seconds} s")
    return events / seconds
