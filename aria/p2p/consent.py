"""What this node's operator lets peers do, decided in one place (pure).

Every peer request that would use this machine — a remote inference job, a tunnel to
the RPC worker — is put to :func:`decide` with the operator's :class:`ConsentTerms`.
Today the terms come from ``[consent]`` in ``config.toml`` (:func:`terms_from_settings`,
changed live with ``aria node share``); a signed consent contract can produce the same
value later without touching the callers.

Lending compute is opt-in twice: ``share_rpc`` turns it on, and ``rpc_peers`` names who
may borrow (``"*"``, written by the operator, means any verified peer). A peer below
``rpc_min_reputation`` (its guard score, 0..1) is refused too.

Serving model files to peers' libraries goes through it too: opt-in (``share_library``)
and bounded by ``library_max_uploads`` peers served at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aria.config import ConsentSettings

__all__ = [
    "ANY_PEER",
    "Allowed",
    "ConsentTerms",
    "Decision",
    "Denied",
    "PeerAsk",
    "decide",
    "terms_from_settings",
]

ANY_PEER = "*"

Action = Literal["infer", "lend", "library"]
DenyReason = Literal["consent_off", "not_allowed", "busy"]


@dataclass(frozen=True)
class ConsentTerms:
    """The operator's terms for peers, whatever their source."""

    share_inference: bool = False
    max_remote_jobs: int = 0
    share_rpc: bool = False
    rpc_peers: frozenset[str] = frozenset()
    rpc_min_reputation: float = 0.0
    share_library: bool = False
    library_max_uploads: int = 0


@dataclass(frozen=True)
class PeerAsk:
    """One request from a verified peer: what it wants, and what this node knows of it."""

    action: Action
    peer_id: str
    reputation: float = 1.0  # the guard's score over its maximum, 0..1
    active_jobs: int = 0  # remote jobs this node runs now (for ``infer``)
    active_uploads: int = 0  # library uploads this node serves now (for ``library``)


@dataclass(frozen=True)
class Allowed:
    pass


@dataclass(frozen=True)
class Denied:
    reason: DenyReason
    message: str


Decision = Allowed | Denied


def terms_from_settings(consent: ConsentSettings) -> ConsentTerms:
    return ConsentTerms(
        share_inference=consent.share_inference,
        max_remote_jobs=consent.max_remote_jobs,
        share_rpc=consent.share_rpc,
        rpc_peers=frozenset(consent.rpc_peers),
        rpc_min_reputation=consent.rpc_min_reputation,
        share_library=consent.share_library,
        library_max_uploads=consent.library_max_uploads,
    )


def decide(terms: ConsentTerms, ask: PeerAsk) -> Decision:
    """Whether the operator's terms allow ``ask`` (the reason and a sentence if not)."""
    if ask.action == "infer":
        if not terms.share_inference:
            return Denied("consent_off", _INFERENCE_OFF)
        if ask.active_jobs >= terms.max_remote_jobs:
            return Denied(
                "busy", f"this node already runs {ask.active_jobs} remote job(s), its limit"
            )
        return Allowed()
    if ask.action == "library":
        if not terms.share_library:
            return Denied("consent_off", _LIBRARY_OFF)
        if ask.active_uploads >= terms.library_max_uploads:
            return Denied(
                "busy", f"this node already serves {ask.active_uploads} peer(s) its model files"
            )
        return Allowed()
    if not terms.share_rpc:
        return Denied("consent_off", _RPC_OFF)
    if ANY_PEER not in terms.rpc_peers and ask.peer_id not in terms.rpc_peers:
        return Denied(
            "not_allowed",
            "this node lends compute only to the peers its operator named "
            "(`aria node share --rpc on --rpc-peer PEER_ID`)",
        )
    if ask.reputation < terms.rpc_min_reputation:
        return Denied(
            "not_allowed",
            f"this node lends compute to peers with a reputation of at least "
            f"{terms.rpc_min_reputation:.2f} (yours is {ask.reputation:.2f})",
        )
    return Allowed()


_INFERENCE_OFF = (
    "this node does not accept inference from peers (its operator can enable it with "
    "`aria node share --inference on`)"
)
_LIBRARY_OFF = (
    "this node does not share its model library (its operator can enable it with "
    "`aria node share --library on`)"
)
_RPC_OFF = (
    "this node does not lend compute to peers (its operator can enable it with "
    "`aria node share --rpc on`)"
)
