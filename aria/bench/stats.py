"""Median / min / max summaries of repeated measurements (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Summary", "summarize"]


@dataclass(frozen=True)
class Summary:
    """What a benchmark reports for one metric over R runs."""

    median: float
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "max": self.max, "n": self.n}


def summarize(values: Sequence[float]) -> Summary:
    """Summarize ``values``; the median resists the odd run disturbed by other processes.

    Raises:
        ValueError: no values (a benchmark with zero runs measured nothing).
    """
    if not values:
        raise ValueError("cannot summarize zero measurements")
    return Summary(
        median=float(statistics.median(values)),
        min=float(min(values)),
        max=float(max(values)),
        n=len(values),
    )
