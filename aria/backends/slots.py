"""How many sequences a backend decodes together, and which slot a new prompt takes (pure).

A *slot* is one sequence of the worker's llama.cpp context: a request is decoded in a
slot, and when it ends the slot keeps the tokens whose K/V it computed, so the next
prompt that starts the same way (the same system prompt, a chat that continues) skips
them. Every slot may fill a whole context window, so the KV cache holds
``slots * n_ctx`` cells and no request can ever run out of room because of another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SlotChoice", "SlotPlan", "choose_slot", "common_prefix", "plan_slots"]


@dataclass(frozen=True)
class SlotPlan:
    """Parallel slots of one backend and the KV cache they need."""

    slots: int
    n_ctx: int  # the context window of each sequence
    kv_bytes_per_token: int

    @property
    def kv_cells(self) -> int:
        return self.slots * self.n_ctx

    @property
    def kv_bytes(self) -> int:
        return self.kv_cells * self.kv_bytes_per_token


def plan_slots(
    *, n_ctx: int, kv_bytes_per_token: int, kv_budget_bytes: int | None, max_slots: int
) -> SlotPlan:
    """As many full context windows as the KV budget holds, between 1 and ``max_slots``.

    One slot is always granted (that is what serving at all costs); ``None`` means no
    memory bound beyond ``max_slots``.
    """
    if n_ctx < 1 or max_slots < 1:
        raise ValueError("n_ctx and max_slots must be positive")
    slots = max_slots
    if kv_budget_bytes is not None:
        per_slot = max(1, n_ctx * kv_bytes_per_token)
        slots = max(1, min(max_slots, kv_budget_bytes // per_slot))
    return SlotPlan(slots=slots, n_ctx=n_ctx, kv_bytes_per_token=kv_bytes_per_token)


def common_prefix(first: Sequence[int], second: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    size = min(len(first), len(second))
    for index in range(size):
        if first[index] != second[index]:
            return index
    return size


@dataclass(frozen=True)
class SlotChoice:
    slot: int
    reused: int  # prompt tokens whose K/V the slot already holds


def choose_slot(prompt: Sequence[int], free: Mapping[int, Sequence[int]]) -> SlotChoice:
    """The free slot whose cached tokens share the longest prefix with ``prompt``.

    ``free`` maps each free slot to its cached tokens, least recently used first: among
    equal prefixes the least recently used slot is taken, so the caches most likely to
    be wanted again survive longest. At least the last prompt token is always evaluated
    (its logits give the first generated token).
    """
    if not free:
        raise ValueError("no free slot")
    best = SlotChoice(next(iter(free)), -1)
    for slot, cached in free.items():
        shared = common_prefix(prompt, cached)
        if shared > best.reused:
            best = SlotChoice(slot, shared)
    return SlotChoice(best.slot, max(0, min(best.reused, len(prompt) - 1)))
