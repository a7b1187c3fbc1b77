"""Remote inference ``/aria/inference/1.0.0`` (sans-I/O): messages, admission, peer choice.

One stream carries one request. The requester sends a ``request`` frame holding an
OpenAI ``/v1/chat/completions`` body and then ``end``. The server answers either
``reject`` (a reason code and a sentence) or a run of ``chunk`` frames, each one SSE
``data:`` payload exactly as its API produced it (a non-streamed request gets one
chunk: the whole JSON response), then ``done``
(or ``error`` if generation failed mid-way), then ``end``. A stream that stops before
``end`` was cut: the requester reports the peer failure, the server cancels the job.

Everything here is pure: the I/O lives in ``aria.p2p.remote``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field, TypeAdapter

from aria.consent import Ask, Contract, Refuse, evaluate
from aria.consent import Reason as ConsentReason
from aria.p2p.codec import End, MessageDecoder, WireModel, encode_message
from aria.p2p.views import ModelProvider

__all__ = [
    "INFERENCE_PROTOCOL",
    "MAX_CHUNK_FRAME",
    "MAX_REQUEST_FRAME",
    "CONSENT_REASONS",
    "Admission",
    "Chunk",
    "Done",
    "Failed",
    "InferenceMessage",
    "Reason",
    "Reject",
    "Request",
    "admit",
    "decoder",
    "encode",
    "rank_providers",
]

INFERENCE_PROTOCOL = "/aria/inference/1.0.0"
MAX_REQUEST_FRAME = 1_048_576  # an OpenAI request body (the API's own default cap is 4 MiB)
MAX_CHUNK_FRAME = 262_144  # one SSE event, or a whole non-streamed response
MAX_FRAME = MAX_REQUEST_FRAME

# the consent contract's reasons (aria.consent.evaluate), then the request's or the node's
Reason = Literal[ConsentReason, "bad_request", "no_model", "no_api", "failed"]
# Refusals that are the operator's will (a requester reports ConsentRefused), not load.
CONSENT_REASONS = frozenset(get_args(ConsentReason)) - {"busy", "too_many_tokens"}


class Request(WireModel):
    type: Literal["request"] = "request"
    body: dict[str, Any]


class Chunk(WireModel):
    type: Literal["chunk"] = "chunk"
    data: str = Field(max_length=MAX_CHUNK_FRAME)


class Done(WireModel):
    type: Literal["done"] = "done"


class Reject(WireModel):
    type: Literal["reject"] = "reject"
    reason: Reason
    message: str = Field(max_length=512)


class Failed(WireModel):
    type: Literal["error"] = "error"
    reason: Reason
    message: str = Field(max_length=512)


InferenceMessage = Request | Chunk | Done | Reject | Failed | End
_ADAPTER: TypeAdapter[InferenceMessage] = TypeAdapter(InferenceMessage)
_TYPES = frozenset({"request", "chunk", "done", "reject", "error", "end"})


def decoder(max_size: int = MAX_FRAME) -> MessageDecoder[InferenceMessage]:
    """A decoder of this protocol's frames (raises ``CodecError`` on anything else)."""
    return MessageDecoder(_ADAPTER, _TYPES, max_size)


def encode(message: WireModel) -> bytes:
    return encode_message(message, MAX_FRAME)


@dataclass(frozen=True)
class Admission:
    """The server's decision: run ``body`` (clamped) under the contract ``contract``
    (its hash, for the receipt), or refuse with a reason."""

    body: dict[str, Any] | None
    reject: Reject | None = None
    contract: str | None = None


# Replaced (max_tokens) or never honoured for a peer (ARIA's memory fields).
_NOT_FORWARDED = frozenset({"max_completion_tokens", "memory", "conversation_id"})


def admit(
    contract: Contract, ask: Ask, body: dict[str, Any], shared: Collection[str], now: datetime
) -> Admission:
    """Check one peer request against the operator's consent contract
    (:func:`aria.consent.evaluate`, with ``ask`` saying who asks and how busy this node is).

    Only a model this node shares (``shared``: installed, verified, licence allows
    sharing — what its advert lists) may be named: never ``auto``, a yellow-licence or
    local-only model, or one this node would itself have to fetch from other peers.

    ``max_tokens`` above ``lend.max_tokens`` is refused (``too_many_tokens``) rather than
    silently clamped: the requester then knows to ask another peer. A request without
    ``max_tokens`` gets the limit as its ``max_tokens``. A peer's request is never served
    with this node's memory: it goes on with ``memory: false``.
    """
    if not contract.lends("inference"):  # refused before the body is even read
        return _refused(evaluate(contract, ask, now))
    model = body.get("model")
    if not isinstance(model, str) or not model or not isinstance(body.get("messages"), list):
        message = "a remote request needs a model name and a messages list"
        return Admission(None, Reject(reason="bad_request", message=message))
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool)):
        return Admission(
            None, Reject(reason="bad_request", message="max_tokens must be an integer")
        )
    decision = evaluate(contract, replace(ask, model=model, max_tokens=asked), now)
    if isinstance(decision, Refuse):
        return _refused(decision)
    if model.casefold() not in {m.casefold() for m in shared}:
        message = f"this node does not share a model named {model!r} with peers"
        return Admission(None, Reject(reason="no_model", message=message))
    admitted = {k: v for k, v in body.items() if k not in _NOT_FORWARDED}
    admitted["max_tokens"] = decision.max_tokens
    admitted["memory"] = False  # a peer's request never reaches this operator's memory
    return Admission(admitted, contract=decision.contract)


def _refused(decision: object) -> Admission:
    assert isinstance(decision, Refuse)
    return Admission(None, Reject(reason=decision.reason, message=decision.message))


def rank_providers(
    providers: Iterable[ModelProvider],
    rtt_ms: dict[str, float],
    scores: dict[str, float],
    min_reputation: float = 0.0,
) -> list[str]:
    """Peer ids to try, best first: only peers whose advert consents and whose reputation
    (``scores``, 0..1) is at least ``min_reputation``; those with a free slot by their
    last advert first, then fewest active jobs, lowest RTT (unknown last), most reputation
    (advertised load and measured RTT predict latency; the reputation breaks ties).

    A peer whose advert shows no free slot is still tried, last: adverts lag behind the
    jobs they count, and the peer itself answers ``busy`` at once when it is full."""
    usable = [
        p
        for p in providers
        if p.consent.share_inference and scores.get(p.peer_id, 0.0) >= min_reputation
    ]
    usable.sort(
        key=lambda p: (
            p.load.active_jobs >= p.consent.max_remote_jobs,
            p.load.active_jobs,
            rtt_ms.get(p.peer_id, float("inf")),
            -scores.get(p.peer_id, 0.0),
            p.peer_id,
        )
    )
    return [p.peer_id for p in usable]
