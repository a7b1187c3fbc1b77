"""Remote inference over libp2p: the serving handler and the requesting control op.

Serving: a verified peer opens ``/aria/inference/1.0.0``; the guard admits the
stream, ``inference.admit`` checks the operator's consent and limits, and an
admitted request is forwarded to this machine's own API (``local_api``), whose SSE
chunks go back unchanged. A read on the stream after the request means the
requester left (it never half-closes): the job is cancelled, which closes the HTTP
request and makes the API stop the generation.

Requesting: the control op ``infer`` (the API's way in) finds the peers that
advertise the model, ranks them (``inference.rank_providers``), and tries them in
order until one answers; a peer that fails before its first chunk is skipped, one
that fails later ends the stream with an error (the client has tokens already).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from aria.consent import Ask, Refuse, evaluate, on_mains_power
from aria.errors import ConsentRefused, InvalidRequest, PeerError, RoutingError
from aria.ledger import json_digest
from aria.p2p.codec import CodecError, End, Violation
from aria.p2p.control import control_token
from aria.p2p.inference import (
    CONSENT_REASONS,
    INFERENCE_PROTOCOL,
    Chunk,
    Done,
    Failed,
    Reject,
    Request,
    admit,
    decoder,
    encode,
    rank_providers,
)
from aria.p2p.local import shareable_models
from aria.p2p.local_api import LocalApiError, relay_headers, stream_chat
from aria.p2p.receipt_exchange import settle
from aria.p2p.reports import find_providers
from aria.p2p.transport.host import connection_kind, libp2p_id

if TYPE_CHECKING:
    from libp2p.abc import INetStream

    from aria.p2p.node import Node

__all__ = ["infer_handler", "infer_op", "request_inference", "serve_inference"]

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT_S = 10.0
_OPEN_TIMEOUT_S = 15.0
_FIRST_CHUNK_TIMEOUT_S = 300.0  # model load + prompt processing on a busy peer
_CHUNK_GAP_TIMEOUT_S = 120.0
_READ = 65536


# -- serving side ---------------------------------------------------------------------


async def serve_inference(node: Node, stream: INetStream) -> None:
    """Handle one inbound inference stream (registered on the node's host)."""
    peer = str(stream.muxed_conn.peer_id)
    record = node.book.get(peer)
    if record is None or record.verified_at is None or not node.guard.admit(peer, node.clock()):
        await _reset(stream)
        return
    try:
        with trio.fail_after(_REQUEST_TIMEOUT_S):
            request = await _read_request(stream)
    except CodecError as exc:
        _penalize(node, peer, exc.violation.value)
        await _reset(stream)
        return
    except trio.TooSlowError:
        _penalize(node, peer, "timeout")
        await _reset(stream)
        return
    shared = {
        offer.id
        for offer in await trio.to_thread.run_sync(
            shareable_models, node.paths, node.catalog, node.denylist
        )
    }
    ask = Ask(
        "inference",
        peer,
        reputation=node.reputation(peer),
        active_jobs=node.active_jobs,
        on_ac_power=on_mains_power(),
    )
    contract = node.provenance.contract().contract
    admission = admit(contract, ask, request.body, shared, datetime.now())
    try:
        if admission.reject is not None:
            log.info("refused inference from %s: %s", peer, admission.reject.reason)
            await stream.write(encode(admission.reject) + encode(End()))
            await stream.close()
            return
        assert admission.body is not None
        node.active_jobs += 1
        try:
            headers = relay_headers(
                control_token(node.paths) or "", "peer", peer=peer, contract=admission.contract
            )

            def remember(reply_headers: Any) -> None:
                receipt = reply_headers.get("x-aria-receipt")
                if receipt:  # for the cross-signing exchange that follows
                    asked = json_digest(request.body)
                    node.provenance.remember_served(peer, asked, receipt, node.clock())

            await _relay(node, stream, admission.body, headers, remember)
        finally:
            node.active_jobs -= 1
            log.info("remote job for %s ended; %d in flight", peer, node.active_jobs)
    except Exception as exc:  # the requester left or the connection broke
        log.info("inference stream from %s ended early: %s", peer, exc)
        await _reset(stream)


async def _read_request(stream: INetStream) -> Request:
    """The request frame and its ``end`` (anything else is a protocol violation)."""
    messages = decoder()
    request: Request | None = None
    while True:
        data = await _read(stream)
        if not data:
            raise CodecError(Violation.TRUNCATED, "stream ended before the request's end")
        for message in messages.feed(data):
            if request is None and isinstance(message, Request):
                request = message
            elif request is not None and isinstance(message, End):
                return request
            else:
                raise CodecError(Violation.UNKNOWN_MESSAGE, f"unexpected {message.type!r}")


async def _relay(
    node: Node,
    stream: INetStream,
    body: dict[str, Any],
    headers: dict[str, str],
    on_headers: Callable[[Any], None],
) -> None:
    """Forward ``body`` to the local API (``headers``: whom it is for) and stream its
    chunks; stop if the peer leaves."""
    async with trio.open_nursery() as nursery:

        async def watch_requester() -> None:
            with contextlib.suppress(Exception):
                await stream.read(1)  # data, EOF or reset: the requester is gone
            log.info("requester left; cancelling the remote job")
            nursery.cancel_scope.cancel()

        nursery.start_soon(watch_requester)
        final: Done | Failed = Done()
        chunks = stream_chat(node.paths, body, headers=headers, on_headers=on_headers)
        try:
            async for data in chunks:
                await stream.write(encode(Chunk(data=data)))
        except LocalApiError as exc:
            final = Failed(
                reason="no_api" if exc.status == 0 else "failed", message=exc.message[:500]
            )
        finally:
            with trio.CancelScope(shield=True):
                await chunks.aclose()
        await stream.write(encode(final) + encode(End()))
        nursery.cancel_scope.cancel()
    await stream.close()


def _penalize(node: Node, peer: str, kind: str) -> None:
    if node.guard.penalize(peer, kind, node.clock()) is not None:
        node._spawn(node._disconnect, libp2p_id(peer))


async def _read(stream: INetStream) -> bytes:
    """Up to ``_READ`` bytes; b"" once the peer closed, reset or the connection broke
    (py-libp2p raises several exception types for those, or returns b"")."""
    try:
        return await stream.read(_READ)
    except Exception:
        return b""


async def _reset(stream: INetStream) -> None:
    with trio.CancelScope(shield=True), contextlib.suppress(Exception):
        await stream.reset()


# -- requesting side ------------------------------------------------------------------


async def request_inference(
    node: Node, peer: str, body: dict[str, Any]
) -> AsyncGenerator[str, None]:
    """Run ``body`` on ``peer``; yield its SSE ``data`` payloads as they arrive.

    Raises:
        ConsentRefused: the peer's operator does not share inference.
        PeerError: the peer refused (reason in the message), failed, or hung up.
    """
    from libp2p.custom_types import TProtocol

    assert node.host is not None
    pid = libp2p_id(peer)
    if connection_kind(node.host, pid) == "none":
        await node.reach(peer)
    try:
        with trio.fail_after(_OPEN_TIMEOUT_S):
            stream = await node.host.new_stream(pid, [TProtocol(INFERENCE_PROTOCOL)])
    except Exception as exc:
        raise PeerError(f"cannot open an inference stream to peer {peer}: {exc}") from None
    messages = decoder()
    timeout = _FIRST_CHUNK_TIMEOUT_S
    finished = False
    try:
        try:
            await stream.write(encode(Request(body=body)) + encode(End()))
        except Exception as exc:
            raise PeerError(f"cannot send the request to peer {peer}: {exc}") from None
        while True:
            with trio.move_on_after(timeout) as waited:
                data = await _read(stream)
            if waited.cancelled_caught:
                raise PeerError(f"peer {peer} sent nothing for {timeout:.0f} s")
            if not data:
                raise PeerError(f"peer {peer} hung up before finishing its answer")
            for message in messages.feed(data):
                if isinstance(message, Chunk):
                    timeout = _CHUNK_GAP_TIMEOUT_S
                    yield message.data
                elif isinstance(message, Reject):
                    raise _refusal(peer, message)
                elif isinstance(message, Failed):
                    raise PeerError(f"peer {peer} failed ({message.reason}): {message.message}")
                elif isinstance(message, End):
                    finished = True
                    return
                elif not isinstance(message, Done):
                    raise CodecError(Violation.UNKNOWN_MESSAGE, f"unexpected {message.type!r}")
    except CodecError as exc:
        _penalize(node, peer, exc.violation.value)
        raise PeerError(f"peer {peer} broke the inference protocol ({exc})") from None
    finally:
        if finished:
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.close()
        else:
            await _reset(stream)


def _refusal(peer: str, reject: Reject) -> PeerError:
    text = f"peer {peer} refused the request ({reject.reason}): {reject.message}"
    return ConsentRefused(text) if reject.reason in CONSENT_REASONS else PeerError(text)


async def infer_op(node: Node, args: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    """Control op ``infer``: ``{"body": <chat request>, "peer_id"?: str}`` →
    ``{"peer", "data"}`` for the first chunk, then ``{"data"}`` per chunk.

    Without ``peer_id`` the peers advertising the model are tried best first; a peer
    that fails before its first chunk is skipped and named in the final error. Only what
    the consent contract's ``use`` clauses allow leaves: no prompt at all unless
    ``use.prompts_may_leave``, and never to a peer below ``use.min_reputation``. Once a
    peer has answered, the work is settled in the background (its receipt cross-signed
    and recorded, the answer maybe kept for a spot check: :func:`settle`).

    Raises:
        InvalidRequest: no body or model; RoutingError: no willing peer serves it;
        ConsentRefused/PeerError: every peer tried refused or failed.
    """
    body = args.get("body")
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(model, str) or not model:
        raise InvalidRequest("infer needs a chat request body naming a model")
    contract = node.provenance.contract().contract
    target = args.get("peer_id")
    if isinstance(target, str) and target:
        use = evaluate(contract, Ask("use_peer", target, node.reputation(target)), datetime.now())
        if isinstance(use, Refuse):
            raise ConsentRefused(use.message)
        order = [target]
    else:
        if not contract.use.prompts_may_leave:
            use = evaluate(contract, Ask("use_peer", ""), datetime.now())
            raise ConsentRefused(use.message if isinstance(use, Refuse) else "prompts stay here")
        order = await _ranked(node, model, contract.use.min_reputation)
    failures: list[PeerError] = []
    for peer in order:
        started = False
        started_ms, began = int(time.time() * 1000), time.perf_counter()
        received: list[str] = []
        try:
            async with contextlib.aclosing(request_inference(node, peer, body)) as chunks:
                async for data in chunks:
                    received.append(data)
                    yield {"data": data} if started else {"peer": peer, "data": data}
                    started = True
            duration_ms = int((time.perf_counter() - began) * 1000)
            node._spawn(
                partial(settle, started_ms=started_ms, duration_ms=duration_ms),
                node,
                peer,
                body,
                received,
            )
            return
        except PeerError as exc:
            if started:
                raise
            log.info("peer %s did not take the request: %s", peer, exc.message)
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    summary = "; ".join(f.message for f in failures)
    raise PeerError(f"every peer serving {model} failed: {summary}")


async def _ranked(node: Node, model: str, min_reputation: float) -> list[str]:
    """The peers to try for ``model``, best first (see ``rank_providers``).

    Raises:
        ConsentRefused: they all refuse peers' inference, or all are below
            ``min_reputation``; RoutingError: nobody serves it.
    """
    providers = await find_providers(node, model)
    rtts = {r.peer_id: r.rtt_ms for r in node.book.known() if r.rtt_ms is not None}
    scores = {p.peer_id: node.reputation(p.peer_id) for p in providers}
    order = rank_providers(providers, rtts, scores, min_reputation)
    if order:
        return order
    if not providers:
        raise RoutingError(f"no peer on the network advertises the model {model}")
    names = ", ".join(p.peer_id for p in providers)
    if not any(p.consent.share_inference for p in providers):
        raise ConsentRefused(
            f"the peers serving {model} ({names}) do not accept inference requests from "
            "peers (task_not_allowed)"
        )
    raise ConsentRefused(
        f"the peers serving {model} ({names}) that accept inference requests are all below "
        f"this node's use.min_reputation {min_reputation:.2f} (low_reputation)"
    )


def infer_handler(
    node: Node,
) -> Callable[[dict[str, Any]], Awaitable[AsyncGenerator[dict[str, Any], None]]]:
    """``infer_op`` as a control-channel handler (which awaits, then streams the result)."""

    async def handler(args: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        return infer_op(node, args)

    return handler
