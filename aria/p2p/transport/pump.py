"""The one adapter between a libp2p stream and a sans-I/O protocol machine.

It moves bytes both ways and feeds the machine the clock, EOF and its own
deadline, and nothing else: every decision stays in the machine (cf. aioquic's
asyncio adapter). :func:`pump` runs an exchange to its end (the handshake, an RPC
tunnel's answer); :func:`drive` hands each event over as it happens (a streamed
inference answer), and :func:`flush` writes what the caller queued between two reads.
A peer reset, any transport error and a silent EOF all reach the machine as
``receive_eof`` — the protocols' explicit ``end`` marker tells a complete exchange from
a cut one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol, TypeVar

import trio

__all__ = ["ByteStream", "Machine", "drive", "flush", "pump"]

E = TypeVar("E")

READ_SIZE = 16384


class ByteStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


class Machine(Protocol[E]):
    @property
    def deadline(self) -> float | None: ...

    @property
    def done(self) -> bool: ...
    def start(self, now: float) -> None: ...
    def receive_data(self, data: bytes, now: float) -> list[E]: ...
    def receive_eof(self, now: float) -> list[E]: ...
    def handle_timer(self, now: float) -> list[E]: ...
    def data_to_send(self) -> bytes: ...


async def flush(stream: ByteStream, machine: Machine[Any], clock: Callable[[], float]) -> list[Any]:
    """Write what ``machine`` has queued (the caller queued a message outside the loop of
    :func:`drive`); a transport failure is an EOF to the machine, whose events are returned."""
    outgoing = machine.data_to_send()
    if not outgoing:
        return []
    try:
        await stream.write(outgoing)
    except Exception:  # any transport failure is an EOF to the machine
        return machine.receive_eof(clock())
    return []


async def drive(
    stream: ByteStream, machine: Machine[E], clock: Callable[[], float]
) -> AsyncGenerator[E, None]:
    """Run ``machine`` over ``stream``, yielding its events as they happen, until it is done.

    ``clock`` gives wall-clock seconds (what the machine compares timestamps to);
    deadlines are converted to trio's monotonic clock for waiting.
    """
    machine.start(clock())
    while True:
        for event in await flush(stream, machine, clock):
            yield event
        if machine.done:
            return
        timeout = None if machine.deadline is None else max(0.0, machine.deadline - clock())
        data: bytes | None = None
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            try:
                data = await stream.read(READ_SIZE)
            except Exception:  # reset/EOF/closed: all end the peer's side
                data = b""
        now = clock()
        if data is None:
            events = machine.handle_timer(now)
        elif data:
            events = machine.receive_data(data, now)
        else:
            events = machine.receive_eof(now)
        for event in events:
            yield event


async def pump(stream: ByteStream, machine: Machine[E], clock: Callable[[], float]) -> list[E]:
    """Run ``machine`` over ``stream`` until it is done; return all its events."""
    return [event async for event in drive(stream, machine, clock)]
