"""Proof of useful work, the running part: re-executing peers' answers when idle.

Every few seconds the node looks at the answers it kept (``pending`` in the ledger,
sampled by :func:`aria.p2p.receipt_exchange.settle`). When no peer job runs here and
this machine's API has nothing queued, it takes the oldest answers whose model it has
installed — the very file the peer's receipt names — and re-executes each request
through its own API (marked ``spotcheck``: the re-execution has a receipt too, so its
energy is counted), then compares the answers (:func:`aria.ledger.compare`). The
verdict is a ``spotcheck`` entry, and the peer's standing moves with it: reputation is
read from that standing when the node ranks peers and decides whom to lend to.

Answers whose model is not here wait (bounded by ``ledger.spot_check_pending``); a
model file other than the one the peer used cannot check anything, so such answers are
dropped; answers older than a day are dropped too.
"""

from __future__ import annotations

import logging
import time

import trio

from aria.errors import AriaError
from aria.ledger import Answer, Pending, SpotCheck, answer_from_chunks, compare
from aria.p2p.context import PeerContext
from aria.p2p.control import control_token
from aria.p2p.local_api import api_busy, forward, relay_headers

__all__ = ["check_pending", "spotcheck_loop"]

log = logging.getLogger(__name__)

_INTERVAL_S = 1.0
_BATCH = 16
_MAX_AGE_MS = 24 * 3600 * 1000


async def spotcheck_loop(ctx: PeerContext) -> None:
    """Run :func:`check_pending` forever, ``_INTERVAL_S`` apart."""
    while True:
        await trio.sleep(_INTERVAL_S)
        try:
            await check_pending(ctx)
        except Exception:  # a check must never stop the node
            log.exception("spot check failed")


def _installed(ctx: PeerContext) -> dict[str, str]:
    return {m.model_id: m.sha256 for m in ctx.store.installed()}


def _as_ran(request: dict[str, object]) -> dict[str, object]:
    """``request`` as the peer ran it, not streamed: a chat never with this node's memory
    (:func:`aria.p2p.inference.admit`); a text completion has no memory fields."""
    body = {k: v for k, v in request.items() if k != "conversation_id"}
    body["stream"] = False
    body.pop("stream_options", None)
    if "messages" in body:
        body["memory"] = False
    return body


async def _reexecute(ctx: PeerContext, request: dict[str, object]) -> tuple[Answer, str | None]:
    """The answer this node gives to ``request`` (through its API), and its receipt id."""
    token = control_token(ctx.paths) or ""
    headers = relay_headers(token, "spotcheck")
    receipt: list[str] = []
    chunks = [
        data
        async for data in forward(
            ctx.paths,
            _as_ran(request),
            headers=headers,
            on_headers=lambda h: receipt.extend(h.get_list("x-aria-receipt")),
        )
    ]
    return answer_from_chunks(chunks), (receipt[0] if receipt else None)


async def check_pending(ctx: PeerContext, *, batch: int = _BATCH) -> int:
    """Check up to ``batch`` waiting answers if this node is idle; how many were checked."""
    provenance = ctx.provenance
    ledger = provenance.ledger
    if ledger is None or ctx.active_jobs > 0:
        return 0
    installed = await trio.to_thread.run_sync(_installed, ctx)
    waiting = await trio.to_thread.run_sync(
        lambda: ledger.pending(models=set(installed), limit=batch)
    )
    checked = 0
    for pending in waiting:
        if ctx.active_jobs > 0 or await api_busy(ctx.paths) is not False:
            break  # serve first, check later (or no API here to check with)
        if await _check_one(ctx, pending, installed):
            checked += 1
    return checked


async def _check_one(ctx: PeerContext, pending: Pending, installed: dict[str, str]) -> bool:
    provenance = ctx.provenance
    ledger = provenance.ledger
    assert ledger is not None
    used = str(pending.received.get("model_sha256") or "")
    too_old = time.time() * 1000 - pending.queued_ms > _MAX_AGE_MS
    if too_old or (used and installed.get(pending.model) != used):
        await trio.to_thread.run_sync(ledger.drop_pending, pending.receipt_id)
        return False
    try:
        expected, receipt_id = await _reexecute(ctx, pending.request)
    except AriaError as exc:
        log.info("cannot re-execute %s's answer now: %s", pending.peer, exc.message)
        return False
    received = Answer.from_json(pending.received.get("answer") or {})
    result = compare(expected, received)
    check = SpotCheck(
        peer=pending.peer,
        receipt_id=pending.receipt_id,
        model=pending.model,
        verdict=result.verdict,
        received_sha256=received.sha256,
        expected_sha256=expected.sha256,
        first_difference=result.first_difference,
        check_receipt_id=receipt_id,
    )
    await trio.to_thread.run_sync(provenance.record_spotcheck, check)
    level = logging.WARNING if result.verdict == "mismatch" else logging.INFO
    log.log(
        level,
        "spot check of %s's answer %s: %s (reputation now %.2f)",
        pending.peer,
        pending.receipt_id,
        result.verdict,
        provenance.work_reputation(pending.peer),
    )
    return True
