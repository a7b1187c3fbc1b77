"""The cross-signed receipt exchange over libp2p (messages and checks: ``aria.p2p.receipts``).

Serving side (:func:`serve_receipts`): a verified peer asks for the receipt of a request
it sent; this node sends its signed ledger entry, reads the peer's acknowledgement and,
when it verifies, records it as a ``countersign`` entry.

Requesting side (:func:`settle`): after a peer served a request, the node asks for the
receipt, checks it, acknowledges it, and records its own ``consumed`` receipt with both
signatures — or, when the peer gave none or a receipt that does not hold, records what
it received and, for a receipt that lies, a ``spotcheck`` entry as evidence. Then it may
keep the answer to re-execute later (:mod:`aria.p2p.spotchecks`).

All of it runs after the client has its answer: it never delays inference.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import trio

from aria.ledger import (
    Ack,
    Answer,
    Pending,
    SpotCheck,
    answer_from_chunks,
    checkable,
    json_digest,
    sampled,
    sign_ack,
)
from aria.p2p.codec import CodecError, End, MessageDecoder, Violation, WireModel
from aria.p2p.context import PeerContext, reset
from aria.p2p.receipts import (
    RECEIPT_PROTOCOL,
    AckFrame,
    AskFrame,
    Checked,
    Missing,
    ReceiptMessage,
    Refuted,
    WorkFrame,
    check_ack,
    check_work,
    consumed_receipt,
    decoder,
    encode,
)

if TYPE_CHECKING:
    from libp2p.abc import INetStream

__all__ = ["serve_receipts", "settle"]

log = logging.getLogger(__name__)

_STEP_TIMEOUT_S = 15.0
_READ = 65536


async def _read(stream: INetStream) -> bytes:
    try:
        return await stream.read(_READ)
    except Exception:
        return b""


async def _next(
    stream: INetStream, messages: MessageDecoder[ReceiptMessage], buffer: list[ReceiptMessage]
) -> ReceiptMessage:
    """The next message (a closed stream is a truncation)."""
    while not buffer:
        data = await _read(stream)
        if not data:
            raise CodecError(Violation.TRUNCATED, "the stream ended early")
        buffer.extend(messages.feed(data))
    return buffer.pop(0)


async def _expect(
    stream: INetStream,
    messages: MessageDecoder[ReceiptMessage],
    buffer: list[ReceiptMessage],
    kinds: tuple[type[WireModel], ...],
) -> ReceiptMessage:
    """One message of ``kinds`` followed by ``end``."""
    message = await _next(stream, messages, buffer)
    if not isinstance(message, kinds):
        raise CodecError(Violation.UNKNOWN_MESSAGE, f"unexpected {message.type!r}")
    if not isinstance(await _next(stream, messages, buffer), End):
        raise CodecError(Violation.UNKNOWN_MESSAGE, "expected end")
    return message


# -- serving side ----------------------------------------------------------------------


async def serve_receipts(ctx: PeerContext, stream: INetStream) -> None:
    """Handle one inbound receipt stream (registered on the node's host)."""
    peer = await ctx.admit_stream(stream)
    if peer is None:
        return
    messages = decoder()
    buffer: list[ReceiptMessage] = []
    try:
        with trio.fail_after(_STEP_TIMEOUT_S):
            ask = await _expect(stream, messages, buffer, (AskFrame,))
        assert isinstance(ask, AskFrame)
        entry = ctx.provenance.served_entry(peer, ask.request_sha256, ctx.clock())
        if entry is None:
            await stream.write(
                encode(Missing(message="no receipt of that request")) + encode(End())
            )
            await stream.close()
            return
        await stream.write(
            encode(WorkFrame(entry=entry.text, hash=entry.hash, sig=entry.sig)) + encode(End())
        )
        with trio.fail_after(_STEP_TIMEOUT_S):
            frame = await _expect(stream, messages, buffer, (AckFrame,))
        assert isinstance(frame, AckFrame)
    except CodecError as exc:
        ctx.penalize(peer, exc.violation.value)
        await reset(stream)
        return
    except trio.TooSlowError:
        await reset(stream)  # no ack: the receipt stays without countersignature
        return
    except Exception as exc:  # the connection broke
        log.info("receipt stream from %s ended early: %s", peer, exc)
        await reset(stream)
        return
    receipt_id = str(entry.decoded()["body"]["id"])
    countersign = check_ack(frame, peer=peer, receipt_id=receipt_id, receipt_hash=entry.hash)
    if countersign is None:
        log.info("peer %s sent an acknowledgement that does not verify", peer)
        ctx.penalize(peer, "malformed")
    else:
        await trio.to_thread.run_sync(ctx.provenance.append, "countersign", countersign)
    with contextlib.suppress(Exception):
        await stream.write(encode(End()))
        await stream.close()


# -- requesting side ---------------------------------------------------------------------


async def _exchange(
    ctx: PeerContext, peer: str, request_sha256: str, model: str, answer: Answer
) -> tuple[Checked | Refuted | None, Ack | None, str | None]:
    """Ask ``peer`` for its receipt, check it, acknowledge it."""
    stream = await ctx.open_stream(peer, RECEIPT_PROTOCOL, _STEP_TIMEOUT_S)
    messages = decoder()
    buffer: list[ReceiptMessage] = []
    try:
        await stream.write(encode(AskFrame(request_sha256=request_sha256)) + encode(End()))
        with trio.fail_after(_STEP_TIMEOUT_S):
            frame = await _expect(stream, messages, buffer, (WorkFrame, Missing))
        if not isinstance(frame, WorkFrame):
            return None, None, None
        me = ctx.key.peer_id
        result = check_work(frame, server=peer, requester=me, model=model, answer=answer)
        if isinstance(result, Refuted):
            return result, None, None
        ack = Ack(
            receipt=frame.hash,
            by=me,
            request_sha256=request_sha256,
            received_sha256=answer.sha256,
            received_at_ms=int(time.time() * 1000),
        )
        signature = sign_ack(ack, ctx.key)
        await stream.write(encode(AckFrame(ack=ack, sig=signature)) + encode(End()))
        with trio.move_on_after(_STEP_TIMEOUT_S):
            await _read(stream)  # the server's end (or it hung up): either way we are done
        return result, ack, signature
    finally:
        await reset(stream)


async def settle(
    ctx: PeerContext,
    peer: str,
    body: dict[str, Any],
    chunks: Sequence[str],
    *,
    started_ms: int,
    duration_ms: int,
) -> None:
    """Record the work ``peer`` did for ``body`` (answered with ``chunks``), cross-signed
    when the peer's receipt holds; keep a sample of greedy answers for a spot check."""
    provenance = ctx.provenance
    if provenance.ledger is None:
        return
    model = str(body.get("model"))
    answer = answer_from_chunks(chunks)
    request_sha256 = json_digest(body)
    result: Checked | Refuted | None = None
    ack = signature = None
    try:
        result, ack, signature = await _exchange(ctx, peer, request_sha256, model, answer)
    except (CodecError, trio.TooSlowError) as exc:
        log.info("no receipt from %s: %s", peer, exc)
    except Exception as exc:  # the peer is unreachable or the stream broke
        log.info("no receipt from %s: %s", peer, exc)
    checked = result if isinstance(result, Checked) else None
    receipt = consumed_receipt(
        server=peer,
        model=model,
        answer=answer,
        request_sha256=request_sha256,
        started_ms=started_ms,
        duration_ms=duration_ms,
        origin="api",
        checked=checked,
        ack=ack,
        ack_sig=signature,
    )
    await trio.to_thread.run_sync(provenance.append, "inference", receipt)
    if isinstance(result, Refuted):
        log.warning("peer %s sent a receipt that does not hold: %s", peer, result.detail)
        evidence = SpotCheck(
            peer=peer,
            receipt_id=receipt.id,
            model=model,
            verdict="receipt_mismatch",
            received_sha256=answer.sha256,
            expected_sha256=checked.receipt.output_sha256 if checked else answer.sha256,
            detail=f"{result.reason}: {result.detail}"[:200],
        )
        await trio.to_thread.run_sync(provenance.record_spotcheck, evidence)
        return
    rate = provenance.settings.spot_check_rate
    if checkable(body) and sampled(rate, random.random()):
        pending = Pending(
            receipt_id=receipt.id,
            peer=peer,
            model=model,
            request=body,
            received={
                "answer": answer.to_json(),
                "model_sha256": checked.receipt.model.sha256 if checked else "",
            },
            queued_ms=int(time.time() * 1000),
        )
        await trio.to_thread.run_sync(provenance.keep_for_check, pending)
