"""Serving the library: one stream, one file, one verified peer, within the operator's limits.

An inbound ``/aria/library/1.0.0`` stream is admitted by the node (a verified ARIA peer
within its rate limit), then its ``want`` is put to the operator's consent contract
(:func:`aria.consent.evaluate` with task ``library``: ``library`` in ``lend.tasks``, the
peer allowed by ``lend.peers``/``deny``/``min_reputation``, the file's model by
``lend.models``, ``lend.hours`` and ``only_on_ac_power``; refusals carry its reason
codes), to ``[consent] library_max_uploads`` (``busy``) and to the file's standing:
published, or being fetched (a node serves the chunks it verified so far), and still
allowed to leave the machine (:mod:`aria.library.gate`). Each chunk then waits for the
upload buckets (:mod:`aria.library.limits`) and is read from disk off the event loop.

One log line per served stream: peer, file, chunks and bytes, duration, why it ended.
A peer that breaks the protocol is penalised; :meth:`Server.apply_terms` ends the streams
the contract now in force no longer allows (a contract that stops lending ``library``
ends them all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import trio

from aria.consent import Ask, Refuse, evaluate, on_mains_power
from aria.library.bitmap import Bitmap
from aria.library.limits import UploadLimits, terms_from_consent
from aria.library.machines import (
    Broken,
    Cut,
    FetcherDone,
    Ready,
    ServeEvent,
    ServeMachine,
    Stalled,
    Tick,
    Wanted,
)
from aria.library.net import PeerNet, end_stream
from aria.library.wire import Reason
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec
from aria.p2p.transport.driver import drive

__all__ = ["Server", "Source"]

log = logging.getLogger(__name__)

_ANNOUNCE_S = 1.0  # a provider still fetching tells its fetchers what it gained this often


class Source(Protocol):
    """A file this node can serve (published, or being fetched)."""

    @property
    def model_id(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def envelope(self) -> SignedEnvelope: ...
    @property
    def chunks(self) -> int: ...
    def held(self) -> Bitmap | None: ...  # None: every chunk
    def length(self, index: int) -> int: ...
    def read(self, index: int) -> bytes: ...  # blocking: called from a worker thread


@dataclass
class _Upload:
    peer: str
    started: float
    scope: trio.CancelScope
    source: Source | None = None
    chunks: int = 0
    bytes: int = 0
    ended: str = "closed"
    announced: Bitmap | None = None


@dataclass
class ServedTotals:
    transfers: int = 0
    bytes: int = 0
    chunks: int = 0
    by_peer: dict[str, int] = field(default_factory=dict)


class Server:
    """This node's side of every library stream."""

    def __init__(
        self,
        net: PeerNet,
        spec: LibrarySpec,
        sources: Callable[[str], Source | None],
    ) -> None:
        self._net = net
        self._spec = spec
        self._sources = sources
        self._limits = UploadLimits(terms_from_consent(net.consent(), net.contract()), net.now())
        self._uploads: list[_Upload] = []
        self.totals = ServedTotals()

    @property
    def serving(self) -> int:
        """Streams holding an offered file now."""
        return sum(1 for u in self._uploads if u.source is not None)

    async def handle(self, stream: Any) -> None:
        """Serve one inbound library stream (registered on the node's host)."""
        peer = await self._net.admit(stream)
        if peer is None:
            return
        upload = _Upload(peer, time.monotonic(), trio.CancelScope())
        machine = ServeMachine(self._spec)
        self._uploads.append(upload)
        try:
            with upload.scope:
                await drive(stream, machine, self._net.now, self._on_events(machine, upload))
            if upload.scope.cancelled_caught:
                upload.ended = "cut: consent changed"
        finally:
            self._uploads.remove(upload)
            clean = machine.done and not machine.failed and not upload.scope.cancelled_caught
            await end_stream(stream, clean=clean)
            self._log(upload)

    def _on_events(
        self, machine: ServeMachine, upload: _Upload
    ) -> Callable[[list[ServeEvent]], Awaitable[None]]:
        async def on_events(events: list[ServeEvent]) -> None:
            for event in events:
                if isinstance(event, Wanted):
                    self._offer(machine, upload, event.sha256)
                elif isinstance(event, Ready):
                    await self._serve_next(machine, upload)
                elif isinstance(event, Tick):
                    self._announce(machine, upload)
                elif isinstance(event, Broken):
                    upload.ended = f"cut: {event.violation.value} ({event.detail})"
                    self._net.penalize(upload.peer, event.violation.value)
                elif isinstance(event, Cut | Stalled):
                    upload.ended = f"ended early: {event.detail}"
                elif isinstance(event, FetcherDone):
                    upload.ended = "closed"

        return on_events

    # -- decisions --------------------------------------------------------------------------

    def _refusal(self, peer: str, model: str | None = None) -> Refuse | None:
        """The contract's answer to ``peer`` fetching (a file of ``model``) now."""
        net = self._net
        ask = Ask("library", peer, net.reputation(peer), model=model, on_ac_power=on_mains_power())
        decision = evaluate(net.contract(), ask, datetime.now())
        return decision if isinstance(decision, Refuse) else None

    def _admission(self, peer: str, source: Source | None) -> tuple[Reason, str] | None:
        """Why ``peer`` may not have ``source`` now (None: offer it). The contract speaks
        first, so a node that lends nothing does not even say whether it holds the file."""
        net = self._net
        refused = self._refusal(peer)
        if refused is None:
            if self.serving >= net.consent().library_max_uploads:
                return "busy", f"this node already serves {self.serving} peer(s) its model files"
            if source is None:
                return "not_shared", "this node does not share that file"
            refused = self._refusal(peer, source.model_id)
        if refused is not None:
            return refused.reason, refused.message
        if self._limits.allowance(peer, net.now()) <= 0:
            return "quota", "you fetched this node's daily allowance already"
        return None

    def _offer(self, machine: ServeMachine, upload: _Upload, sha256: str) -> None:
        source = self._sources(sha256)
        refused = self._admission(upload.peer, source)
        if refused is not None:
            upload.ended = f"refused: {refused[0]}"
            machine.refuse(*refused)
            return
        assert source is not None  # _admission refuses a file this node does not hold
        held = source.held()
        upload.source = source
        upload.announced = None if held is None else held.copy()
        machine.offer(source.envelope, source.chunks, "" if held is None else held.to_hex())
        if held is not None:
            machine.wake_at(self._net.now() + _ANNOUNCE_S)

    async def _serve_next(self, machine: ServeMachine, upload: _Upload) -> None:
        source = upload.source
        index = machine.next_request()
        if source is None or index is None:
            return
        held = source.held()
        if held is not None and index not in held:
            machine.send_missing(index)
            return
        length = source.length(index)
        net = self._net
        if self._limits.allowance(upload.peer, net.now()) < length:
            upload.ended = "stopped: the peer's daily allowance is spent"
            machine.fail("quota", "you fetched this node's daily allowance")
            return
        wait = self._limits.reserve(upload.peer, length, net.now())
        if wait > 0:
            await trio.sleep(wait)
        data = await trio.to_thread.run_sync(source.read, index)
        machine.send_chunk(index, data)
        upload.chunks += 1
        upload.bytes += len(data)

    def _announce(self, machine: ServeMachine, upload: _Upload) -> None:
        source, announced = upload.source, upload.announced
        if source is None or announced is None:
            return
        held = source.held()
        now_held = Bitmap.full(source.chunks) if held is None else held
        gained = tuple(i for i in now_held if i not in announced)
        for index in gained:
            announced.add(index)
        if gained:
            machine.announce(gained)
        if not announced.complete:
            machine.wake_at(self._net.now() + _ANNOUNCE_S)

    # -- live consent -----------------------------------------------------------------------

    def apply_terms(self) -> None:
        """A new contract or new limits: new rates, and every stream the contract in force
        no longer allows (its peer, its file's model, the task itself) is ended."""
        net = self._net
        self._limits.update(terms_from_consent(net.consent(), net.contract()), net.now())
        for upload in self._uploads:
            model = None if upload.source is None else upload.source.model_id
            if self._refusal(upload.peer, model) is not None:
                upload.scope.cancel()

    # -- reports ----------------------------------------------------------------------------

    def _log(self, upload: _Upload) -> None:
        elapsed = time.monotonic() - upload.started
        totals = self.totals
        if upload.chunks:
            totals.transfers += 1
            totals.bytes += upload.bytes
            totals.chunks += upload.chunks
            totals.by_peer[upload.peer] = totals.by_peer.get(upload.peer, 0) + upload.bytes
        if upload.source is not None:
            what = f"{upload.source.model_id} ({upload.source.sha256[:12]}…)"
        else:
            what = "nothing"
        rate = upload.bytes / elapsed / 1e6 if elapsed > 0 else 0.0
        log.info(
            "library: served %s to %s: %d chunks, %.1f MiB in %.1f s (%.1f MB/s); %s",
            what,
            upload.peer,
            upload.chunks,
            upload.bytes / 2**20,
            elapsed,
            rate,
            upload.ended,
        )
        self._limits.forget_idle(self._net.now())
