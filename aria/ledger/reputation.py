"""A peer's reputation from its spot-check record (pure).

The mean of a Beta(1, 1) prior updated with the checks: each answer found equal counts
as one honest observation, each mismatch as ``MISMATCH_WEIGHT`` dishonest ones (a
greedy re-execution that differs is strong evidence, not noise)::

    reputation = (passed + 1) / (passed + 1 + MISMATCH_WEIGHT * failed + 1)

A peer never checked is at 0.5; one mismatch with no honest history puts it at 0.045;
an honest history dilutes a mismatch only slowly (100 passed, 1 failed: 0.83; 3 failed:
0.62). Combined with the node's short-term guard score by taking the lower of the two.
"""

from __future__ import annotations

__all__ = ["MISMATCH_WEIGHT", "NEUTRAL", "reputation"]

MISMATCH_WEIGHT = 20
NEUTRAL = 0.5


def reputation(passed: int, failed: int) -> float:
    """0..1; ``NEUTRAL`` for a peer never checked."""
    return (passed + 1) / (passed + 1 + MISMATCH_WEIGHT * failed + 1)
