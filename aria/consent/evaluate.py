"""Every request a peer makes of this machine, and every prompt this machine would send,
decided against the signed contract in one place (pure; time is a parameter).

``evaluate(contract, ask, now)`` returns :class:`Admit` (with the limits the work must
run under and the contract hash its receipt records) or :class:`Refuse` with a stable
reason code and one sentence. Clauses are checked in a fixed order and the first that
refuses decides:

==================  =====================================================================
reason              refused because
==================  =====================================================================
task_not_allowed    the task kind is not in ``lend.tasks`` (or ``use.prompts_may_leave``
                    is false, for this node's own prompts)
peer_denied         the peer is in ``lend.deny``
peer_not_allowed    ``lend.peers`` (``lend.split_peers`` for split work) names neither
                    the peer nor ``"*"``
low_reputation      the peer's reputation is below ``lend.min_reputation``
                    (``use.min_reputation`` when choosing a peer to send to)
model_not_allowed   ``lend.models`` names neither the model nor ``"*"``
outside_hours       ``now`` is in none of the ``lend.hours`` windows
not_on_ac_power     ``lend.only_on_ac_power`` and the machine runs on battery
busy                ``lend.max_jobs`` peer jobs already run
too_many_tokens     the request asks more than ``lend.max_tokens`` tokens
too_much_memory     split work asks more than ``lend.ram_gb``
==================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aria.consent.contract import ANY, Contract, TaskKind

__all__ = ["Admit", "Ask", "Decision", "Reason", "Refuse", "evaluate"]

Reason = Literal[
    "task_not_allowed",
    "peer_denied",
    "peer_not_allowed",
    "low_reputation",
    "model_not_allowed",
    "outside_hours",
    "not_on_ac_power",
    "busy",
    "too_many_tokens",
    "too_much_memory",
]

_GIB = 1024**3


@dataclass(frozen=True)
class Ask:
    """One decision to make: a peer asking to use this machine (``task`` a lent kind), or
    this machine about to send a prompt to ``peer_id`` (``task="use_peer"``)."""

    task: TaskKind | Literal["use_peer"]
    peer_id: str
    reputation: float = 0.5  # 0..1; a peer never checked is neutral
    model: str | None = None
    max_tokens: int | None = None  # asked for (inference)
    ram_bytes: int | None = None  # asked for (split)
    active_jobs: int = 0  # peer jobs running here now (inference)
    on_ac_power: bool | None = None  # None: cannot tell (no battery: mains)


@dataclass(frozen=True)
class Admit:
    """Go ahead, within these limits; ``contract`` is the hash the receipt records."""

    contract: str
    max_tokens: int | None = None
    threads: int | None = None
    ram_bytes: int | None = None
    upload_bytes_per_s: int | None = None


@dataclass(frozen=True)
class Refuse:
    reason: Reason
    message: str


Decision = Admit | Refuse


def _in_window(window: str, minute: int) -> bool:
    start = int(window[0:2]) * 60 + int(window[3:5])
    end = int(window[6:8]) * 60 + int(window[9:11])
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight


def _use(contract: Contract, ask: Ask) -> Decision:
    use = contract.use
    if not use.prompts_may_leave:
        return Refuse(
            "task_not_allowed",
            "this node's consent contract keeps prompts on this machine "
            "(`aria node consent set use.prompts_may_leave true` to allow peers)",
        )
    if ask.reputation < use.min_reputation:
        return Refuse(
            "low_reputation",
            f"peer {ask.peer_id} has a reputation of {ask.reputation:.2f}, below this node's "
            f"use.min_reputation {use.min_reputation:.2f}",
        )
    return Admit(contract.sha256)


def evaluate(contract: Contract, ask: Ask, now: datetime) -> Decision:
    """Whether ``contract`` allows ``ask`` at local time ``now``."""
    if ask.task == "use_peer":
        return _use(contract, ask)
    lend = contract.lend
    if ask.task not in lend.tasks:
        return Refuse(
            "task_not_allowed",
            f"this node's consent contract does not lend {ask.task} to peers "
            f"(its operator can add it to lend.tasks)",
        )
    if ask.peer_id in lend.deny:
        return Refuse("peer_denied", "this node's operator does not lend to this peer")
    allowed, clause = (
        (lend.split_peers, "split_peers") if ask.task == "split" else (lend.peers, "peers")
    )
    if ANY not in allowed and ask.peer_id not in allowed:
        return Refuse(
            "peer_not_allowed",
            f"this node lends {ask.task} only to the peers its operator named in lend.{clause}",
        )
    if ask.reputation < lend.min_reputation:
        return Refuse(
            "low_reputation",
            f"this node lends to peers with a reputation of at least "
            f"{lend.min_reputation:.2f} (yours is {ask.reputation:.2f})",
        )
    if ask.model is not None and ANY not in lend.models and ask.model not in lend.models:
        return Refuse("model_not_allowed", f"this node does not lend the model {ask.model!r}")
    minute = now.hour * 60 + now.minute
    if lend.hours and not any(_in_window(w, minute) for w in lend.hours):
        return Refuse(
            "outside_hours",
            f"this node lends only during {', '.join(lend.hours)} (its local time is {now:%H:%M})",
        )
    if lend.only_on_ac_power and ask.on_ac_power is False:
        return Refuse("not_on_ac_power", "this node lends only while on mains power")
    if ask.task == "inference":
        if ask.active_jobs >= lend.max_jobs:
            return Refuse(
                "busy", f"this node already runs {ask.active_jobs} peer job(s), its limit"
            )
        if ask.max_tokens is not None and ask.max_tokens > lend.max_tokens:
            return Refuse(
                "too_many_tokens",
                f"max_tokens {ask.max_tokens} exceeds this node's limit of {lend.max_tokens} "
                "for peer requests",
            )
    ram_limit = int(lend.ram_gb * _GIB)
    if ask.task == "split" and ask.ram_bytes is not None and ask.ram_bytes > ram_limit:
        return Refuse(
            "too_much_memory",
            f"this node lends at most {lend.ram_gb:g} GB to split work",
        )
    return Admit(
        contract=contract.sha256,
        max_tokens=min(ask.max_tokens or lend.max_tokens, lend.max_tokens),
        threads=lend.threads,
        ram_bytes=ram_limit,
        upload_bytes_per_s=None
        if lend.upload_mbps is None
        else int(lend.upload_mbps * 1_000_000 / 8),
    )
