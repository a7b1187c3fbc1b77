"""What goes into the next llama.cpp batch: continuous batching, step by step (pure).

Every step evaluates one token for each sequence that is decoding, plus a chunk of the
prompts of sequences that joined (first come, first served). The chunk is sized so a
joining prompt adds about ``stall_s`` to the step of the streams already decoding:
:class:`PrefillPacer` learns the cost of a batch token from the steps it has seen.
With nobody decoding there is no one to stall, and prompts go in whole batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PrefillPacer", "plan_step"]

# Steps with fewer tokens than this are dominated by reading the weights, not by
# per-token work: they say little about what one more prompt token costs.
_MIN_SAMPLE_TOKENS = 16
_SMOOTHING = 0.3


def plan_step(
    decoding: Sequence[int],
    prefilling: Sequence[tuple[int, int]],
    *,
    capacity: int,
    prefill_budget: int,
) -> list[tuple[int, int]]:
    """``(sequence, tokens)`` for the next batch.

    ``decoding`` sequences get one token each; ``prefilling`` ones, in order, share what
    is left of ``capacity`` (the batch size) up to ``prefill_budget`` prompt tokens.
    """
    plan = [(seq, 1) for seq in decoding[:capacity]]
    room = min(capacity - len(plan), prefill_budget)
    for seq, remaining in prefilling:
        if room <= 0:
            break
        take = min(remaining, room)
        if take > 0:
            plan.append((seq, take))
            room -= take
    return plan


@dataclass
class PrefillPacer:
    """How many prompt tokens a step may carry while other sequences are decoding."""

    stall_s: float
    minimum: int
    maximum: int
    token_s: float | None = None  # smoothed cost of one token in a large batch

    def observe(self, tokens: int, seconds: float) -> None:
        """Learn from one step that evaluated ``tokens`` in ``seconds``."""
        if tokens < _MIN_SAMPLE_TOKENS or seconds <= 0:
            return
        sample = seconds / tokens
        self.token_s = (
            sample if self.token_s is None else self.token_s + _SMOOTHING * (sample - self.token_s)
        )

    def budget(self, *, decoding: bool) -> int:
        if not decoding:
            return self.maximum
        if self.token_s is None:
            return self.minimum
        return max(self.minimum, min(self.maximum, int(self.stall_s / self.token_s)))
