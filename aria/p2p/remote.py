"""Remote inference over libp2p: the serving handler and the requesting control op.

Both sides run the sans-I/O machines of :mod:`aria.p2p.inference_machines` over the
stream with the one pump (:mod:`aria.p2p.transport.pump`); this module only moves what
they decide.

Serving: a verified peer opens ``/aria/inference/1.1.0``; the context admits the
stream, ``inference.admit`` checks the operator's consent and limits, and an admitted
request is forwarded to this machine's own API (``local_api``), whose SSE chunks go
back unchanged. Anything the requester sends after its request, or its leaving, cancels
the job, which closes the HTTP request and makes the API stop the generation. An error
of the API travels in ARIA's wire form.

Requesting: the control op ``infer {"peer_id", "body"}`` (how the API and the CLI run a
chain entry placed on a peer) streams the named peer's answer. Which peer, and what to
try when it cannot serve, is the node's placement decision (:mod:`aria.router`), not
this module's, except that the contract's ``use`` clauses are checked once more here,
right before the prompt leaves (``use.prompts_may_leave``, ``use.min_reputation``). Once
the peer has answered, the work is settled in the background: its receipt cross-signed
and recorded, the answer maybe kept for a spot check
(:func:`aria.p2p.receipt_exchange.settle`).

A served request is forwarded with :func:`~aria.p2p.local_api.relay_headers` (origin
``peer``, the peer id, the contract hash it was admitted under), so the API's receipt
says whom it was for; the receipt id is remembered for the cross-signing exchange.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from aria.consent import Ask, Refuse, evaluate, on_mains_power
from aria.errors import AriaError, ConsentRefused, InvalidRequest, PeerError
from aria.ledger import json_digest
from aria.p2p.context import PeerContext, reset
from aria.p2p.control import control_token
from aria.p2p.inference import (
    INFERENCE_PROTOCOL,
    ErrorInfo,
    Failed,
    Reason,
    Request,
    admit,
    peer_failure,
)
from aria.p2p.inference_machines import (
    Broken,
    Cut,
    Declined,
    Delivered,
    Finished,
    InferenceCall,
    InferenceService,
    Left,
    Requested,
    ServiceEvent,
    TimedOut,
)
from aria.p2p.local_api import forward, read_endpoint, relay_headers
from aria.p2p.receipt_exchange import settle
from aria.p2p.transport.pump import drive, flush

if TYPE_CHECKING:
    from libp2p.abc import INetStream

__all__ = ["infer_handler", "request_inference", "serve_inference"]

log = logging.getLogger(__name__)

_OPEN_TIMEOUT_S = 15.0
_MAX_PEER_ID = 128


# -- serving side ---------------------------------------------------------------------


async def serve_inference(ctx: PeerContext, stream: INetStream) -> None:
    """Handle one inbound inference stream (registered on the node's host)."""
    peer = await ctx.admit_stream(stream)
    if peer is None:
        return
    service = InferenceService()
    async with contextlib.aclosing(drive(stream, service, ctx.clock)) as events:
        request = await _request(ctx, peer, stream, events)
        if request is None:
            return
        shared = {offer.id for offer in await ctx.shareable()}
        ask = Ask(
            "inference",
            peer,
            reputation=ctx.reputation(peer),
            active_jobs=ctx.active_jobs,
            on_ac_power=on_mains_power(),
        )
        contract = ctx.provenance.contract().contract
        admission = admit(contract, ask, request.body, shared, datetime.now())
        if admission.reject is not None:
            log.info("refused inference from %s: %s", peer, admission.reject.reason)
            service.refuse(admission.reject)
            await flush(stream, service, ctx.clock)
            with contextlib.suppress(Exception):
                await stream.close()
            return
        assert admission.body is not None
        ctx.active_jobs += 1
        headers = relay_headers(
            control_token(ctx.paths) or "", "peer", peer=peer, contract=admission.contract
        )
        asked = json_digest(request.body)

        def remember(reply_headers: Any) -> None:
            receipt = reply_headers.get("x-aria-receipt")
            if receipt:  # for the cross-signing exchange that follows
                ctx.provenance.remember_served(peer, asked, receipt, ctx.clock())

        try:
            await _answer(ctx, stream, service, events, admission.body, headers, remember)
        except Exception as exc:  # the connection broke
            log.info("inference stream from %s ended early: %s", peer, exc)
            await reset(stream)
        finally:
            ctx.active_jobs -= 1
            log.info("remote job for %s ended; %d in flight", peer, ctx.active_jobs)


async def _request(
    ctx: PeerContext, peer: str, stream: INetStream, events: AsyncIterator[ServiceEvent]
) -> Request | None:
    """The peer's request, or None (stream reset, the peer scored) if it broke the protocol."""
    event = await anext(events, None)
    if isinstance(event, Requested):
        return event.request
    if isinstance(event, Broken):
        ctx.penalize(peer, event.violation.value)
    elif isinstance(event, TimedOut):
        ctx.penalize(peer, "timeout")
    await reset(stream)
    return None


async def _answer(
    ctx: PeerContext,
    stream: INetStream,
    service: InferenceService,
    events: AsyncIterator[ServiceEvent],
    body: dict[str, Any],
    headers: dict[str, str],
    on_headers: Callable[[Any], None],
) -> None:
    """Relay this machine's API answer to ``body`` (``headers``: whom it is for); stop as
    soon as the requester leaves."""
    async with trio.open_nursery() as nursery:

        async def watch_requester() -> None:
            async for event in events:
                if isinstance(event, Left):
                    log.info("requester left; cancelling the remote job")
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(watch_requester)
        failure: Failed | None = None
        chunks = forward(ctx.paths, body, headers=headers, on_headers=on_headers)
        try:
            async for data in chunks:
                service.send(data)
                await flush(stream, service, ctx.clock)
        except AriaError as exc:
            reason: Reason = "no_api" if read_endpoint(ctx.paths) is None else "failed"
            failure = Failed(reason=reason, message=exc.message[:512], error=ErrorInfo.of(exc))
        finally:
            with trio.CancelScope(shield=True):
                await chunks.aclose()
        service.finish(failure)
        await flush(stream, service, ctx.clock)
        nursery.cancel_scope.cancel()
    await stream.close()


# -- requesting side ------------------------------------------------------------------


async def request_inference(
    ctx: PeerContext, peer: str, body: dict[str, Any]
) -> AsyncGenerator[str, None]:
    """Run ``body`` on ``peer``; yield its SSE ``data`` payloads as they arrive.

    Raises:
        ConsentRefused: the peer's operator does not share inference.
        PeerError: the peer refused (reason in the message), failed, or hung up.
        RequestError: the peer's API refused the request itself (its class and code).
    """
    stream = await ctx.open_stream(peer, INFERENCE_PROTOCOL, _OPEN_TIMEOUT_S)
    call = InferenceCall(Request(body=body))
    finished = False
    try:
        async with contextlib.aclosing(drive(stream, call, ctx.clock)) as events:
            async for event in events:
                if isinstance(event, Delivered):
                    yield event.data
                elif isinstance(event, Finished):
                    finished = True
                elif isinstance(event, Declined):
                    raise peer_failure(peer, event.frame)
                elif isinstance(event, Broken):
                    ctx.penalize(peer, event.violation.value)
                    raise PeerError(f"peer {peer} broke the inference protocol ({event.detail})")
                elif isinstance(event, Cut):
                    raise PeerError(f"peer {peer} {event.detail}")
    finally:
        if finished:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.close()
        else:
            await reset(stream)


def infer_handler(
    ctx: PeerContext,
) -> Callable[[dict[str, Any]], Awaitable[AsyncGenerator[dict[str, Any], None]]]:
    """Control op ``infer``: ``{"peer_id": str, "body": <OpenAI request>}`` →
    ``{"peer", "data"}`` for the first chunk, then ``{"data"}`` per chunk.

    Raises (from the stream):
        InvalidRequest: no peer id, or no body naming a model.
        ConsentRefused: this node's contract keeps prompts here, or the peer is below
            ``use.min_reputation`` (reason code in the message).
        ConsentRefused, PeerError, RequestError: see :func:`request_inference`.
    """

    async def handler(args: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        peer, body = args.get("peer_id"), args.get("body")
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(peer, str) or not 0 < len(peer) <= _MAX_PEER_ID:
            raise InvalidRequest("infer needs the peer_id of the peer to run the request on")
        if not isinstance(body, dict) or not isinstance(model, str) or not model:
            raise InvalidRequest("infer needs a request body naming a model")
        return _relayed(ctx, peer, body)

    return handler


async def _relayed(
    ctx: PeerContext, peer: str, body: dict[str, Any]
) -> AsyncGenerator[dict[str, Any], None]:
    contract = ctx.provenance.contract().contract
    use = evaluate(contract, Ask("use_peer", peer, ctx.reputation(peer)), datetime.now())
    if isinstance(use, Refuse):
        raise ConsentRefused(use.message)
    first = True
    received: list[str] = []
    started_ms, began = int(time.time() * 1000), time.perf_counter()
    async with contextlib.aclosing(request_inference(ctx, peer, body)) as chunks:
        async for data in chunks:
            received.append(data)
            yield {"peer": peer, "data": data} if first else {"data": data}
            first = False
    duration_ms = int((time.perf_counter() - began) * 1000)
    settled = partial(settle, started_ms=started_ms, duration_ms=duration_ms)
    ctx.spawn(settled, ctx, peer, body, received)
