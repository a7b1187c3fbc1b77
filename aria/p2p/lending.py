"""The serving side of the RPC tunnel: lending this machine's compute to one peer at a time.

A verified peer opens ``/aria/rpc-tunnel/1.0.0``. The stream is admitted by the guard's
rate limit, then by the operator's consent contract (:func:`aria.consent.evaluate`:
``split`` in ``lend.tasks``, the peer allowed, its reputation high enough, within the
hours and on mains power if the contract says so); the worker gets ``lend.threads``
threads and offers ``lend.ram_gb``. ggml-rpc serves
one client at a time, so one session holds the worker: a new stream waits for it a
little (asking an idle session to give way), then is refused ``busy``.

An admitted stream is answered ``accept`` and joined to the RPC worker through a fresh
ggml-rpc filter (:class:`aria.rpc.filter.RpcFilter`) sized by the operator's
offer and session limits; the worker is started on first use with the starter the node
injects (:func:`aria.rpc.workers.start_rpc_worker`: confined by :mod:`aria.rpc.sandbox`),
and restarted after it stops. Every accepted and closed
session is one log line (peer, bytes both ways, duration, why it ended). A peer whose
session was cut by the filter, or ended with the worker dead, is penalised.

:meth:`Lending.apply_terms` is how a live consent change reaches the lender: sessions
the new terms no longer allow are cut at once, and the worker stops when lending is off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import trio

from aria.consent import Ask, Refuse, evaluate, on_mains_power
from aria.errors import BackendUnavailable, ConfigError
from aria.p2p.context import PeerContext
from aria.p2p.inference import Reason
from aria.p2p.transport.guarded import guarded_pipe
from aria.p2p.transport.relay import RelayStats, TcpFarSide
from aria.rpc.filter import FilterLimits, RpcFilter
from aria.rpc.ggml_rpc import parse_endpoint

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from libp2p.abc import INetStream

    from aria.p2p.transport.relay import Duplex
    from aria.rpc.workers import RpcWorker

__all__ = ["Lending", "StartWorker"]

log = logging.getLogger(__name__)

_SLOT_WAIT_S = 30.0  # how long a new session waits for the one in progress
_YIELD_IDLE_S = 10.0  # a session idle this long gives way to a waiting peer
_GIB = 1024**3


class StartWorker(Protocol):
    """How the node starts its RPC worker (:func:`aria.rpc.workers.start_rpc_worker`)."""

    def __call__(
        self, *, log_path: Path, threads: int, memory_gb: float, secrets: Sequence[Path]
    ) -> RpcWorker: ...


@dataclass
class _Session:
    peer: str
    machine: RpcFilter
    scope: trio.CancelScope
    started: float
    stats: RelayStats = field(default_factory=RelayStats)


class Lending:
    """This node's RPC worker and the peer session using it."""

    def __init__(self, ctx: PeerContext, start_worker: StartWorker) -> None:
        self.ctx = ctx
        self._start_worker = start_worker
        self.served = RelayStats()  # every session's bytes, for reports
        self._worker: RpcWorker | None = None
        self._worker_lock = trio.Lock()
        self._slot = trio.Lock()
        self._session: _Session | None = None

    # -- admission --------------------------------------------------------------------

    def refusal(self, peer: str) -> Refuse | None:
        """The consent contract's answer for ``peer`` now (None: it may borrow)."""
        ctx = self.ctx
        contract = ctx.provenance.contract().contract
        ask = Ask("split", peer, ctx.reputation(peer), on_ac_power=on_mains_power())
        decision = evaluate(contract, ask, datetime.now())
        return decision if isinstance(decision, Refuse) else None

    async def serve(
        self,
        stream: INetStream,
        peer: str,
        refuse: Callable[[INetStream, Reason, str], Awaitable[None]],
        accept: Callable[[INetStream], Awaitable[Duplex]],
    ) -> None:
        """Run one tunnel stream from ``peer`` (already verified and rate-admitted)."""
        denied = self.refusal(peer)
        if denied is not None:
            log.info("refused an RPC tunnel from %s: %s", peer, denied.reason)
            await refuse(stream, denied.reason, denied.message)
            return
        if not await self._take_slot():
            log.info("refused an RPC tunnel from %s: busy", peer)
            await refuse(stream, "busy", "this node's RPC worker is serving another peer")
            return
        try:
            await self._run(stream, peer, refuse, accept)
        finally:
            self._slot.release()

    async def _take_slot(self) -> bool:
        with trio.move_on_after(_SLOT_WAIT_S):
            if self._slot.locked() and self._session is not None:
                self._session.machine.shorten_idle(_YIELD_IDLE_S)
            await self._slot.acquire()
            return True
        return False

    async def _run(
        self,
        stream: INetStream,
        peer: str,
        refuse: Callable[[INetStream, Reason, str], Awaitable[None]],
        accept: Callable[[INetStream], Awaitable[Duplex]],
    ) -> None:
        denied = self.refusal(peer)  # the terms may have changed while it waited
        if denied is not None:
            await refuse(stream, denied.reason, denied.message)
            return
        try:
            worker = await self._ensure_worker()
        except (BackendUnavailable, ConfigError) as exc:
            log.warning("cannot start the RPC worker for %s: %s", peer, exc.message)
            await refuse(stream, "failed", "this node's RPC worker cannot start")
            return
        far = await TcpFarSide(*parse_endpoint(worker.endpoint)).open()
        try:
            near = await accept(stream)
        except BaseException:
            await far.aclose()  # never leave the worker's one client slot taken
            raise
        session = _Session(
            peer, RpcFilter(self._limits(worker)), trio.CancelScope(), time.monotonic()
        )
        self._session = session
        log.info("RPC tunnel from %s accepted (offer %d bytes)", peer, worker.ready.offered_bytes)
        ended = "closed"
        try:
            with session.scope:
                refusal = await guarded_pipe(near, far, session.machine, session.stats)
                if refusal is not None:
                    ended = f"cut: {refusal.reason} ({refusal.detail})"
            if session.scope.cancelled_caught:
                ended = "cut: consent changed"
        finally:
            self._session = None
            self.served.add(to_far=session.stats.to_far, to_near=session.stats.to_near)
            if not worker.alive():
                ended += "; the RPC worker died"
            self._log_closed(session, ended)
        self._penalize(peer, session, worker)

    def _limits(self, worker: RpcWorker) -> FilterLimits:
        consent = self.ctx.settings.consent
        return FilterLimits(
            max_alloc_bytes=worker.ready.offered_bytes,
            idle_s=consent.rpc_idle_timeout_s,
            max_session_s=consent.rpc_session_max_s,
            max_client_bytes=int(consent.rpc_session_max_gb * _GIB),
        )

    def _log_closed(self, session: _Session, ended: str) -> None:
        log.info(
            "RPC tunnel from %s closed after %.1f s: %d bytes to the worker, %d back; %s",
            session.peer,
            time.monotonic() - session.started,
            session.stats.to_far,
            session.stats.to_near,
            ended,
        )

    def _penalize(self, peer: str, session: _Session, worker: RpcWorker) -> None:
        refusal = session.machine.refusal
        if not worker.alive():
            self.ctx.penalize(peer, "crashed_worker")
        elif refusal is not None and refusal.reason not in ("idle", "duration", "quota", "worker"):
            self.ctx.penalize(peer, "malformed")

    # -- the worker -------------------------------------------------------------------

    async def _ensure_worker(self) -> RpcWorker:
        async with self._worker_lock:
            if self._worker is None or not self._worker.alive():
                if self._worker is not None:
                    code = self._worker.process.returncode
                    log.warning("the RPC worker stopped (exit %s); starting a new one", code)
                    self._worker.stop()
                self._worker = await trio.to_thread.run_sync(self._start)
            return self._worker

    def _start(self) -> RpcWorker:
        ctx = self.ctx
        lend = ctx.provenance.contract().contract.lend
        return self._start_worker(
            log_path=ctx.paths.logs / "rpc-worker.log",
            threads=lend.threads or ctx.settings.inference.threads or 1,
            memory_gb=lend.ram_gb,
            secrets=[ctx.paths.node / "identity.key", ctx.paths.api / "keys.json"],
        )

    async def stop_worker(self) -> None:
        async with self._worker_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            await trio.to_thread.run_sync(worker.stop)

    # -- live consent -----------------------------------------------------------------

    async def apply_terms(self) -> None:
        """Enforce the node's current consent: cut a session it no longer allows; stop the
        worker when lending is off, or when the offer changed and nobody uses it (the
        next session starts one with the new offer)."""
        session = self._session
        if session is not None and self.refusal(session.peer) is not None:
            log.info("consent changed: ending the RPC session of %s", session.peer)
            session.scope.cancel()
            session = None
        contract = self.ctx.provenance.contract().contract
        worker = self._worker
        stale = worker is not None and worker.ready.offered_bytes > contract.lend.ram_gb * _GIB
        if not contract.lends("split") or (stale and session is None):
            await self.stop_worker()
