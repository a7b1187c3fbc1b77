"""Remote inference ``/aria/inference/1.1.0`` (sans-I/O): messages, admission, errors.

One stream carries one request. The requester sends a ``request`` frame holding an
OpenAI ``/v1/chat/completions`` body (``messages``) or ``/v1/completions`` body
(``prompt``), built from the job by :func:`request_body`, and then ``end``. The server
answers either ``reject`` (a reason code and a sentence) or a run of ``chunk`` frames,
each one SSE ``data:`` payload exactly as its API produced it, then ``done`` (or
``error`` if generation failed), then ``end``. An ``error`` carries the serving side's
error in ARIA's wire form (:meth:`aria.errors.AriaError.to_wire`), so a client error
(``context_length_exceeded``) reaches the requester's client as that error
(:func:`peer_failure`). A stream that stops before ``end`` was cut: the requester
reports the peer failure, the server cancels the job.

The exchange itself is the pair of machines in :mod:`aria.p2p.inference_machines`;
everything here is pure too. The I/O lives in ``aria.p2p.remote``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aria.backends.protocol import GenerationJob, GrammarSpec
from aria.consent import Ask, Contract, Refuse, evaluate
from aria.consent import Reason as ConsentReason
from aria.errors import (
    AriaError,
    AuthenticationError,
    ConsentRefused,
    MisdirectedRequest,
    OriginRefused,
    PayloadTooLarge,
    PeerError,
    RequestError,
    RequestTimeout,
    from_wire,
)
from aria.p2p.codec import End, MessageDecoder, WireModel, encode_message

__all__ = [
    "INFERENCE_PROTOCOL",
    "MAX_CHUNK_FRAME",
    "MAX_REQUEST_FRAME",
    "CONSENT_REASONS",
    "Admission",
    "Chunk",
    "Done",
    "ErrorInfo",
    "Failed",
    "InferenceMessage",
    "Reason",
    "Reject",
    "Request",
    "admit",
    "decoder",
    "encode",
    "peer_failure",
    "request_body",
]

INFERENCE_PROTOCOL = "/aria/inference/1.1.0"
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


class ErrorInfo(BaseModel):
    """An error in ARIA's wire form (``AriaError.to_wire``), as a peer may send it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    code: str = Field(max_length=64)
    message: str = Field(max_length=512)
    param: str | None = Field(default=None, max_length=256)
    type: str = Field(max_length=64)
    status: int = Field(ge=400, le=599)

    @classmethod
    def of(cls, error: AriaError) -> ErrorInfo:
        wire = error.to_wire()
        return cls.model_validate({**wire, "message": error.message[:512]})


class Failed(WireModel):
    type: Literal["error"] = "error"
    reason: Reason
    message: str = Field(max_length=512)
    error: ErrorInfo | None = None


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
    with this node's memory: a chat goes on with ``memory: false``.
    """
    if not contract.lends("inference"):  # refused before the body is even read
        return _refused(evaluate(contract, ask, now))
    model = body.get("model")
    chat = isinstance(body.get("messages"), list)
    if not isinstance(model, str) or not model or chat == isinstance(body.get("prompt"), str):
        message = "a remote request needs a model name and either a messages list or a prompt"
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
    if chat:  # a peer's chat never reaches this operator's memory
        admitted["memory"] = False
    return Admission(admitted, contract=decision.contract)


def _refused(decision: object) -> Admission:
    assert isinstance(decision, Refuse)
    return Admission(None, Reject(reason=decision.reason, message=decision.message))


def request_body(job: GenerationJob, model: str) -> dict[str, Any]:
    """The OpenAI body that runs ``job`` on a peer's ``model``, streamed with usage.

    The inverse of the API's request-to-job translation: what a peer's API validates is
    exactly what this node would have run, and nothing else of the client's request
    (``user``, ARIA's own fields) leaves the machine.
    """
    body: dict[str, Any] = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": job.temperature,
        "top_p": job.top_p,
    }
    if job.messages is not None:
        body["messages"] = list(job.messages)
    else:
        body["prompt"] = job.prompt
    optional = {
        "max_tokens": job.max_tokens,
        "stop": list(job.stop) or None,
        "seed": job.seed,
        "presence_penalty": job.presence_penalty or None,
        "frequency_penalty": job.frequency_penalty or None,
        "logit_bias": {str(k): v for k, v in job.logit_bias.items()} or None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if job.grammar is not None:
        body.update(_grammar_fields(job.grammar))
    return body


def _grammar_fields(grammar: GrammarSpec) -> dict[str, Any]:
    if grammar.kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if grammar.kind == "json_schema":
        schema = {"name": "response", "schema": grammar.schema}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    choice: Any = grammar.mode
    if grammar.mode == "named":
        choice = {"type": "function", "function": {"name": grammar.name}}
    fields = {"tools": list(grammar.tools), "tool_choice": choice}
    return {**fields, "parallel_tool_calls": False} if grammar.single else fields


# A request error about the hop from the serving node to its own API, not about the
# client's request: another peer may well take the request.
_HOP_ERRORS = (
    AuthenticationError,
    OriginRefused,
    MisdirectedRequest,
    RequestTimeout,
    PayloadTooLarge,
)


def peer_failure(peer: str, frame: Reject | Failed) -> AriaError:
    """What a peer's ``reject`` or ``error`` frame means on this side.

    A client error the peer's API raised (``context_length_exceeded``, a bad grammar...)
    is that client error, status, type, code and param kept: another peer would refuse
    it too, so it is not an availability error. Anything else says this peer cannot
    serve: ``ConsentRefused`` for a refusal by consent, ``PeerError`` otherwise (both let
    a fallback chain move on).
    """
    if isinstance(frame, Failed) and frame.error is not None:
        raised = from_wire(frame.error.model_dump(), fallback=PeerError)
        if isinstance(raised, RequestError) and not isinstance(raised, _HOP_ERRORS):
            return raised
    verb = "refused the request" if isinstance(frame, Reject) else "failed"
    text = f"peer {peer} {verb} ({frame.reason}): {frame.message}"
    if frame.reason in CONSENT_REASONS:
        return ConsentRefused(text)
    return PeerError(text)
