"""The plain share names of ``aria node share`` and the dashboard, mapped onto clauses."""

from __future__ import annotations

import pytest

from aria.consent import SHARE_NAMES, Contract, share_descriptions, shares_of, with_shares
from aria.errors import ContractError


def test_switches_add_and_remove_task_kinds_and_names_map_to_clauses() -> None:
    contract = Contract()
    changed = with_shares(
        contract,
        {
            "share_inference": True,
            "share_rpc": True,
            "rpc_peers": [" *", "*", ""],
            "use_peers": True,
        },
    )
    assert changed.lend.tasks == ("inference", "split") and changed.lend.split_peers == ("*",)
    assert changed.use.prompts_may_leave is True
    off = with_shares(changed, {"share_inference": False, "max_remote_tokens": 256})
    assert off.lend.tasks == ("split",) and off.lend.max_tokens == 256
    assert shares_of(off) == {
        "share_inference": False,
        "share_rpc": True,
        "share_library": False,
        "max_remote_jobs": 1,
        "max_remote_tokens": 256,
        "use_peers": True,
        "rpc_memory_gb": 2.0,
        "rpc_peers": ["*"],
        "rpc_min_reputation": 0.0,
    }
    assert with_shares(off, {}) == off
    assert with_shares(off, {"share_rpc": True}) == off  # already lent: no change
    assert with_shares(off, {"share_library": True}).lend.tasks == ("split", "library")


def test_every_name_is_described_with_its_clause() -> None:
    described = share_descriptions()
    assert set(described) == set(SHARE_NAMES)
    assert described["max_remote_tokens"].endswith("(lend.max_tokens)")


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"max_remote_jobs": -1}, "max_remote_jobs"),
        ({"max_remote_tokens": 0}, "max_remote_tokens"),
        ({"rpc_memory_gb": 0}, "rpc_memory_gb"),
        ({"rpc_peers": ["x" * 129]}, "rpc_peers"),
        ({"share_inference": "maybe"}, "share_inference"),
        ({"free_lunch": True}, "free_lunch"),
    ],
)
def test_a_refused_value_names_its_field(changes: dict[str, object], param: str) -> None:
    with pytest.raises(ContractError) as refused:
        with_shares(Contract(), changes)
    assert refused.value.param == param and refused.value.message.startswith(f"{param}: ")
