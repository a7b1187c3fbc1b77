"""A byte relay between a local TCP listener and a pluggable far side, counting bytes.

This is the shape of the RPC tunnel between peers: the orchestrator's ggml-rpc client
connects to a relay on 127.0.0.1, and the relay carries the bytes to a *far side*: a
TCP connection to a worker on this machine today (:class:`TcpFarSide`), a libp2p stream
to the peer that runs the worker in the tunnel. On the worker's machine the same
:func:`pipe` joins the incoming stream to the worker's loopback port.

Both directions are counted (:class:`RelayStats`), which is how the benchmark measures
what crosses the wire at load time and per generated token. Only anyio primitives
are used, so the relay runs on trio with the libp2p host, or in a background thread
for synchronous callers (:func:`relay_in_thread`).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Protocol

import anyio
from anyio.abc import ByteStream, SocketStream, TaskStatus
from anyio.from_thread import start_blocking_portal

from aria.rpc.ggml_rpc import LOOPBACK_HOST

__all__ = [
    "Duplex",
    "FarSide",
    "Relay",
    "RelayStats",
    "TcpFarSide",
    "pipe",
    "relay_in_thread",
]

_CHUNK = 256 * 1024


class Duplex(Protocol):
    """The least a byte stream must do to be relayed (anyio streams already do)."""

    async def send(self, item: bytes) -> None: ...

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Some bytes; raises ``anyio.EndOfStream`` at the end."""
        ...

    async def aclose(self) -> None: ...


class FarSide(Protocol):
    """Opens one far-side stream per accepted local connection."""

    async def open(self) -> Duplex:
        """Raises: OSError: the far side cannot be reached (the local peer is closed)."""
        ...


@dataclass
class RelayStats:
    """Bytes moved by a relay (updated on the relay's loop, read from any thread)."""

    to_far: int = 0
    to_near: int = 0
    connections: int = 0
    round_trips: int = 0  # far-to-near turns: a request answered
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _awaiting_reply: bool = field(default=False, repr=False)

    def add(self, *, to_far: int = 0, to_near: int = 0, connections: int = 0) -> None:
        with self._lock:
            self.to_far += to_far
            self.to_near += to_near
            self.connections += connections
            if to_near and self._awaiting_reply:
                self.round_trips += 1
            if to_far or to_near:
                self._awaiting_reply = bool(to_far)

    @property
    def total(self) -> int:
        return self.to_far + self.to_near


@dataclass(frozen=True)
class TcpFarSide:
    """The far side is a TCP endpoint on this machine (an RPC worker's loopback port)."""

    host: str
    port: int

    async def open(self) -> Duplex:
        stream: SocketStream = await anyio.connect_tcp(self.host, self.port)
        return stream


async def _copy(source: Duplex, sink: Duplex, stats: RelayStats, *, towards_far: bool) -> None:
    try:
        while True:
            data = await source.receive(_CHUNK)
            await sink.send(data)
            if towards_far:
                stats.add(to_far=len(data))
            else:
                stats.add(to_near=len(data))
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass


async def pipe(near: Duplex, far: Duplex, stats: RelayStats) -> None:
    """Copy bytes both ways until either side ends, then close both.

    One side ending ends the whole pipe: ggml-rpc has no half-closed state, and a
    worker that vanished must look like a reset to the orchestrator at once.
    """
    try:
        async with anyio.create_task_group() as group:

            async def one_way(source: Duplex, sink: Duplex, towards_far: bool) -> None:
                await _copy(source, sink, stats, towards_far=towards_far)
                group.cancel_scope.cancel()

            group.start_soon(one_way, near, far, True)
            group.start_soon(one_way, far, near, False)
    finally:  # also when the relay itself is cancelled: never leak a half-open pipe
        with anyio.CancelScope(shield=True):
            for stream in (near, far):
                with suppress(anyio.BrokenResourceError, OSError):
                    await stream.aclose()


Join = Callable[[Duplex, Duplex, RelayStats], Awaitable[object]]


class Relay:
    """Listens on 127.0.0.1 and pipes each accepted connection to a new far-side stream.

    ``join`` moves the bytes of one connection (default :func:`pipe`);
    :func:`aria.p2p.transport.guarded.guarded` gives one that runs each connection through a
    fresh ggml-rpc filter, as a lender's tunnel does.
    """

    def __init__(self, far: FarSide, stats: RelayStats | None = None, *, join: Join = pipe) -> None:
        self.far = far
        self.stats = stats or RelayStats()
        self.join = join

    async def serve(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; reports the listening port through ``task_status``."""
        listener = await anyio.create_tcp_listener(local_host=LOOPBACK_HOST, local_port=0)
        async with listener:
            port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
            task_status.started(port)
            await listener.serve(self._handle)

    async def _handle(self, near: ByteStream) -> None:
        self.stats.add(connections=1)
        try:
            far = await self.far.open()
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await near.aclose()
            if isinstance(exc, OSError):
                return  # the orchestrator sees a closed connection, as from a dead worker
            raise
        await self.join(near, far, self.stats)


@contextmanager
def relay_in_thread(far: FarSide, stats: RelayStats | None = None) -> Iterator[tuple[int, Relay]]:
    """Run a :class:`Relay` on a trio loop in a background thread; yields (port, relay).

    For synchronous callers only: async code starts ``Relay.serve`` in its own task
    group (``port = await group.start(relay.serve)``).
    """
    relay = Relay(far, stats)
    with start_blocking_portal("trio") as portal:
        future, port = portal.start_task(relay.serve)
        try:
            yield port, relay
        finally:
            future.cancel()
