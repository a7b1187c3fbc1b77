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
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, TypeAdapter

from aria.config import ConsentSettings
from aria.p2p.codec import End, MessageDecoder, WireModel, encode_message
from aria.p2p.consent import Denied, PeerAsk, decide, terms_from_settings
from aria.p2p.views import ModelProvider

__all__ = [
    "INFERENCE_PROTOCOL",
    "MAX_CHUNK_FRAME",
    "MAX_REQUEST_FRAME",
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

Reason = Literal[
    "consent_off",
    "not_allowed",
    "busy",
    "too_many_tokens",
    "bad_request",
    "no_model",
    "no_api",
    "failed",
]


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
    """The server's decision: run ``body`` (possibly clamped) or refuse with a reason."""

    body: dict[str, Any] | None
    reject: Reject | None = None


# Replaced (max_tokens) or never honoured for a peer (ARIA's memory fields).
_NOT_FORWARDED = frozenset({"max_completion_tokens", "memory", "conversation_id"})


def admit(
    consent: ConsentSettings,
    active_jobs: int,
    body: dict[str, Any],
    shared: Collection[str],
) -> Admission:
    """Check the operator's consent (:func:`aria.p2p.consent.decide`) and limits for one
    peer request.

    Only a model this node shares (``shared``: installed, verified, licence allows
    sharing — what its advert lists) may be named: never ``auto``, a yellow-licence or
    local-only model, or one this node would itself have to fetch from other peers.

    ``max_tokens`` above ``consent.max_remote_tokens`` is refused (``too_many_tokens``)
    rather than silently clamped: the requester then knows to ask another peer. A
    request without ``max_tokens`` gets the limit as its ``max_tokens``. A peer's request
    is never served with this node's memory: it goes on with ``memory: false``.
    """
    decision = decide(terms_from_settings(consent), PeerAsk("infer", "", active_jobs=active_jobs))
    if isinstance(decision, Denied):
        return Admission(None, Reject(reason=decision.reason, message=decision.message))
    model = body.get("model")
    if not isinstance(model, str) or not model or not isinstance(body.get("messages"), list):
        message = "a remote request needs a model name and a messages list"
        return Admission(None, Reject(reason="bad_request", message=message))
    if model.casefold() not in {m.casefold() for m in shared}:
        message = f"this node does not share a model named {model!r} with peers"
        return Admission(None, Reject(reason="no_model", message=message))
    limit = consent.max_remote_tokens
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool)):
        return Admission(
            None, Reject(reason="bad_request", message="max_tokens must be an integer")
        )
    if asked is not None and asked > limit:
        message = f"max_tokens {asked} exceeds this node's limit of {limit} for peer requests"
        return Admission(None, Reject(reason="too_many_tokens", message=message))
    admitted = {k: v for k, v in body.items() if k not in _NOT_FORWARDED}
    admitted["max_tokens"] = asked if asked is not None else limit
    admitted["memory"] = False  # a peer's request never reaches this operator's memory
    return Admission(admitted)


def rank_providers(
    providers: Iterable[ModelProvider], rtt_ms: dict[str, float], scores: dict[str, float]
) -> list[str]:
    """Peer ids to try, best first: only peers whose advert consents and has a free slot;
    then fewest active jobs, lowest RTT (unknown last), most reputation (as advertised
    load and measured RTT are what predict latency; the score only breaks ties)."""
    usable = [
        p
        for p in providers
        if p.consent.share_inference and p.load.active_jobs < p.consent.max_remote_jobs
    ]
    usable.sort(
        key=lambda p: (
            p.load.active_jobs,
            rtt_ms.get(p.peer_id, float("inf")),
            -scores.get(p.peer_id, 0.0),
            p.peer_id,
        )
    )
    return [p.peer_id for p in usable]
