"""evaluate(contract, ask, now): each clause refuses what it forbids and admits what it allows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from aria.consent import Admit, Ask, Contract, LendTerms, Refuse, UseTerms, evaluate

PEER = "12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER = "12D3KooWOtherBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
NOON = datetime(2026, 12, 4, 12, 0)
NIGHT = datetime(2026, 12, 4, 23, 30)
EARLY = datetime(2026, 12, 5, 6, 59)


def _contract(**lend: Any) -> Contract:
    terms = {"tasks": ("inference", "split", "library"), "split_peers": ("*",), **lend}
    return Contract(lend=LendTerms(**terms))


def _ask(**fields: Any) -> Ask:
    return Ask(**{"task": "inference", "peer_id": PEER, "model": "tiny", **fields})


# (clause, contract terms, ask fields, now, expected reason or None for admit)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], datetime, str | None]] = [
    ("tasks: not lent", {"tasks": ()}, {}, NOON, "task_not_allowed"),
    ("tasks: other kind", {"tasks": ("split",)}, {}, NOON, "task_not_allowed"),
    ("tasks: lent", {"tasks": ("inference",)}, {}, NOON, None),
    ("tasks: library", {"tasks": ("library",)}, {"task": "library"}, NOON, None),
    ("deny: listed", {"deny": (PEER,)}, {}, NOON, "peer_denied"),
    ("deny: wins over allow", {"deny": (PEER,), "peers": (PEER,)}, {}, NOON, "peer_denied"),
    ("deny: another peer", {"deny": (OTHER,)}, {}, NOON, None),
    ("peers: not named", {"peers": (OTHER,)}, {}, NOON, "peer_not_allowed"),
    ("peers: named", {"peers": (PEER,)}, {}, NOON, None),
    ("peers: nobody", {"peers": ()}, {}, NOON, "peer_not_allowed"),
    ("peers: any", {"peers": ("*",)}, {}, NOON, None),
    ("split: nobody named", {"split_peers": ()}, {"task": "split"}, NOON, "peer_not_allowed"),
    ("split: named", {"split_peers": (PEER,)}, {"task": "split"}, NOON, None),
    (
        "split: not lent by peers",
        {"split_peers": (OTHER,)},
        {"task": "split"},
        NOON,
        "peer_not_allowed",
    ),
    ("reputation: below", {"min_reputation": 0.6}, {"reputation": 0.5}, NOON, "low_reputation"),
    ("reputation: at", {"min_reputation": 0.5}, {"reputation": 0.5}, NOON, None),
    ("models: not listed", {"models": ("big",)}, {}, NOON, "model_not_allowed"),
    ("models: listed", {"models": ("tiny",)}, {}, NOON, None),
    ("hours: outside", {"hours": ("22:00-07:00",)}, {}, NOON, "outside_hours"),
    ("hours: late", {"hours": ("22:00-07:00",)}, {}, NIGHT, None),
    ("hours: early, across midnight", {"hours": ("22:00-07:00",)}, {}, EARLY, None),
    ("hours: end is exclusive", {"hours": ("09:00-12:00",)}, {}, NOON, "outside_hours"),
    ("hours: second window", {"hours": ("01:00-02:00", "11:00-13:00")}, {}, NOON, None),
    ("power: battery", {"only_on_ac_power": True}, {"on_ac_power": False}, NOON, "not_on_ac_power"),
    ("power: mains", {"only_on_ac_power": True}, {"on_ac_power": True}, NOON, None),
    ("power: unknown", {"only_on_ac_power": True}, {"on_ac_power": None}, NOON, None),
    ("power: clause off", {}, {"on_ac_power": False}, NOON, None),
    ("jobs: at limit", {"max_jobs": 2}, {"active_jobs": 2}, NOON, "busy"),
    ("jobs: below", {"max_jobs": 2}, {"active_jobs": 1}, NOON, None),
    ("jobs: none lent", {"max_jobs": 0}, {}, NOON, "busy"),
    ("tokens: above", {"max_tokens": 100}, {"max_tokens": 101}, NOON, "too_many_tokens"),
    ("tokens: at", {"max_tokens": 100}, {"max_tokens": 100}, NOON, None),
    (
        "memory: above",
        {"ram_gb": 1.0},
        {"task": "split", "ram_bytes": 2 * 1024**3},
        NOON,
        "too_much_memory",
    ),
    ("memory: within", {"ram_gb": 2.0}, {"task": "split", "ram_bytes": 1024**3}, NOON, None),
    (
        "tokens do not limit split",
        {"max_tokens": 1},
        {"task": "split", "max_tokens": 9},
        NOON,
        None,
    ),
]


@pytest.mark.parametrize(
    ("clause", "terms", "fields", "now", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_each_clause(
    clause: str, terms: dict[str, Any], fields: dict[str, Any], now: datetime, expected: str | None
) -> None:
    decision = evaluate(_contract(**terms), _ask(**fields), now)
    if expected is None:
        assert isinstance(decision, Admit), decision
    else:
        assert isinstance(decision, Refuse) and decision.reason == expected, decision
        assert decision.message  # one readable sentence


def test_first_refusing_clause_decides() -> None:
    contract = _contract(tasks=(), deny=(PEER,), max_jobs=0)
    decision = evaluate(contract, _ask(active_jobs=5), NOON)
    assert isinstance(decision, Refuse) and decision.reason == "task_not_allowed"


def test_admit_carries_the_limits_and_the_contract_hash() -> None:
    contract = _contract(max_tokens=300, threads=2, ram_gb=1.5, upload_mbps=8.0)
    decision = evaluate(contract, _ask(max_tokens=None), NOON)
    assert decision == Admit(
        contract=contract.sha256,
        max_tokens=300,
        threads=2,
        ram_bytes=int(1.5 * 1024**3),
        upload_bytes_per_s=1_000_000,
    )
    asked = evaluate(contract, _ask(max_tokens=12), NOON)
    assert isinstance(asked, Admit) and asked.max_tokens == 12


@pytest.mark.parametrize(
    ("use", "reputation", "expected"),
    [
        ({"prompts_may_leave": False}, 1.0, "task_not_allowed"),
        ({"prompts_may_leave": True, "min_reputation": 0.3}, 0.2, "low_reputation"),
        ({"prompts_may_leave": True, "min_reputation": 0.3}, 0.3, None),
    ],
)
def test_use_clauses_decide_what_leaves_this_machine(
    use: dict[str, Any], reputation: float, expected: str | None
) -> None:
    contract = Contract(use=UseTerms(**use))
    decision = evaluate(contract, Ask("use_peer", PEER, reputation=reputation), NOON)
    if expected is None:
        assert isinstance(decision, Admit)
    else:
        assert isinstance(decision, Refuse) and decision.reason == expected


def test_the_hash_follows_every_clause() -> None:
    base = Contract()
    hashes = {base.sha256}
    for change in (
        {"lend": LendTerms(tasks=("inference",))},
        {"lend": LendTerms(max_tokens=5)},
        {"use": UseTerms(prompts_may_leave=True)},
        {"version": 2},
    ):
        hashes.add(base.model_copy(update=change).sha256)
    assert len(hashes) == 5
    assert Contract().sha256 == base.sha256  # stable


def test_split_work_is_lent_to_nobody_until_borrowers_are_named() -> None:
    contract = Contract(lend=LendTerms(tasks=("split",)))
    decision = evaluate(contract, _ask(task="split"), NOON)
    assert isinstance(decision, Refuse) and decision.reason == "peer_not_allowed"
    assert "split_peers" in decision.message
