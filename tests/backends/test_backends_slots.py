"""Slots from the memory budget, prefix-reusing slot choice, and step planning (pure)."""

from __future__ import annotations

import pytest

from aria.backends.schedule import PrefillPacer, plan_step
from aria.backends.slots import SlotChoice, choose_slot, common_prefix, plan_slots

MIB = 2**20


def test_slots_are_as_many_whole_windows_as_the_kv_budget_holds() -> None:
    # SmolLM2-135M: 30 layers x 3 KV heads x (64 + 64) x 2 bytes = 23040 bytes a token.
    plan = plan_slots(n_ctx=8192, kv_bytes_per_token=23040, kv_budget_bytes=1024 * MIB, max_slots=8)
    assert plan.slots == 5  # 180 MiB per 8192-token window
    assert plan.kv_cells == 5 * 8192 and plan.kv_bytes == 5 * 8192 * 23040
    roomy = plan_slots(n_ctx=2048, kv_bytes_per_token=23040, kv_budget_bytes=10**12, max_slots=8)
    assert roomy.slots == 8
    assert (
        plan_slots(n_ctx=2048, kv_bytes_per_token=1, kv_budget_bytes=None, max_slots=3).slots == 3
    )


def test_one_slot_is_always_granted() -> None:
    assert (
        plan_slots(n_ctx=8192, kv_bytes_per_token=131072, kv_budget_bytes=0, max_slots=8).slots == 1
    )
    with pytest.raises(ValueError):
        plan_slots(n_ctx=0, kv_bytes_per_token=1, kv_budget_bytes=None, max_slots=1)


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([5], [6]) == 0


def test_the_slot_holding_the_longest_prefix_is_chosen() -> None:
    system = [1, 2, 3, 4, 5]
    free = {0: [9, 9], 1: [*system, 7, 7], 2: system[:2]}
    assert choose_slot([*system, 8], free) == SlotChoice(slot=1, reused=5)


def test_the_last_prompt_token_is_always_evaluated() -> None:
    prompt = [1, 2, 3]
    assert choose_slot(prompt, {0: [1, 2, 3, 4]}) == SlotChoice(slot=0, reused=2)
    assert choose_slot([1], {0: [1]}) == SlotChoice(slot=0, reused=0)


def test_without_a_shared_prefix_the_least_recently_used_slot_is_taken() -> None:
    assert choose_slot([7, 8], {3: [1], 0: [2], 5: []}) == SlotChoice(slot=3, reused=0)
    with pytest.raises(ValueError):
        choose_slot([1], {})


def test_decoding_sequences_get_one_token_and_prompts_share_the_rest() -> None:
    plan = plan_step([1, 2], [(3, 100), (4, 50)], capacity=64, prefill_budget=40)
    assert plan == [(1, 1), (2, 1), (3, 40)]
    plan = plan_step([1], [(3, 10), (4, 50)], capacity=64, prefill_budget=40)
    assert plan == [(1, 1), (3, 10), (4, 30)]
    assert plan_step([], [(3, 600)], capacity=512, prefill_budget=512) == [(3, 512)]
    assert plan_step(list(range(10)), [(99, 5)], capacity=8, prefill_budget=8) == [
        (n, 1) for n in range(8)
    ]
    assert plan_step([], [], capacity=8, prefill_budget=8) == []


def test_prefill_is_paced_to_the_measured_cost_of_a_token() -> None:
    pacer = PrefillPacer(stall_s=0.2, minimum=32, maximum=512)
    assert pacer.budget(decoding=False) == 512  # nobody to stall
    assert pacer.budget(decoding=True) == 32  # nothing measured yet
    pacer.observe(8, 1.0)  # a decode-only step says nothing about prompt tokens
    assert pacer.token_s is None
    pacer.observe(100, 0.5)  # 5 ms a token
    assert pacer.budget(decoding=True) == 40
    pacer.observe(100, 0.05)  # 0.5 ms a token, smoothed
    assert 40 < pacer.budget(decoding=True) <= 512
    fast = PrefillPacer(stall_s=0.2, minimum=32, maximum=512, token_s=1e-6)
    assert fast.budget(decoding=True) == 512
