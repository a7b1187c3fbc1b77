"""Drives a long-lived sans-I/O machine over a libp2p stream, both ways at once.

:func:`aria.p2p.transport.pump.pump` suits short exchanges (a handshake): it writes, then
reads until the machine's deadline. A transfer needs more: the machine's owner answers
events with disk reads and rate limits, pending work must wake the loop although the peer
sends nothing, and the peer must be read all the while. So here:

* one reader task reads the stream and hands the bytes over a bounded channel (its
  backpressure is the stream's: an unread buffer stops yamux's window). A read is never
  cancelled while the stream lives — py-libp2p's yamux ``read(n)`` takes the bytes off its
  buffer before its last ``await``, so a cancelled read can lose data;
* the loop waits for bytes or the machine's deadline, feeds the machine the bytes, EOF or
  the timer, and awaits ``on_events`` with what it returned (the owner may queue messages
  through the machine's own methods there);
* after every step it writes what the machine queued, in writes of at most ``max_write``
  bytes;
* a :class:`Wakeup` lets code outside the loop (another stream's owner) make it look at
  the machine again: its deadline may have changed, or it has something to send.

A peer reset, a transport error and a clean EOF all reach the machine as ``receive_eof``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from aria.p2p.transport.pump import ByteStream, Machine

__all__ = ["Wakeup", "drive"]

E = TypeVar("E")

_QUEUED_READS = 8


class Wakeup:
    """Wakes the loop of one :func:`drive` call (a no-op before it starts or after it ends)."""

    def __init__(self) -> None:
        self._send: trio.MemorySendChannel[bytes | None] | None = None

    def __call__(self) -> None:
        if self._send is not None:
            with contextlib.suppress(
                trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                self._send.send_nowait(None)


async def drive(
    stream: ByteStream,
    machine: Machine[E],
    clock: Callable[[], float],
    on_events: Callable[[list[E]], Awaitable[None]],
    *,
    max_write: int = 262_144,
    read_size: int = 262_144,
    wakeup: Wakeup | None = None,
) -> None:
    """Run ``machine`` over ``stream`` until it is done (the caller resets or closes the
    stream afterwards). ``clock`` gives wall-clock seconds, as the machine expects."""
    send, receive = trio.open_memory_channel[bytes | None](_QUEUED_READS)
    if wakeup is not None:
        wakeup._send = send.clone()

    async def read_all() -> None:
        async with send:
            while True:
                try:
                    data = await stream.read(read_size)
                except Exception:  # reset, EOF or a broken connection: the same to the machine
                    data = b""
                try:
                    await send.send(bytes(data))
                except trio.BrokenResourceError:
                    return
                if not data:
                    return

    failure: Exception | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        try:
            await _run(stream, machine, clock, on_events, receive, max_write)
        except Exception as exc:  # the owner's own error: raised as is, not in a group
            failure = exc
        nursery.cancel_scope.cancel()
        receive.close()
        if wakeup is not None and wakeup._send is not None:
            wakeup._send.close()
            wakeup._send = None
    if failure is not None:
        raise failure


async def _run(
    stream: ByteStream,
    machine: Machine[E],
    clock: Callable[[], float],
    on_events: Callable[[list[E]], Awaitable[None]],
    receive: trio.MemoryReceiveChannel[bytes | None],
    max_write: int,
) -> None:
    machine.start(clock())
    eof = False
    while True:
        await _flush(stream, machine, clock, on_events, max_write)
        if machine.done:
            break
        deadline = machine.deadline
        timeout = float("inf") if deadline is None else max(0.0, deadline - clock())
        data: bytes | None = None  # None: the timer (or a wake-up) came first
        if not eof and timeout <= 0:
            await trio.lowlevel.checkpoint()
            with contextlib.suppress(trio.WouldBlock):
                data = receive.receive_nowait()  # what already came first, then the timer
        elif not eof:
            with trio.move_on_after(timeout):
                data = await receive.receive()
        elif timeout != float("inf"):
            await trio.sleep(timeout)
        else:
            break  # nothing will ever wake a machine with no deadline after EOF
        now = clock()
        if data is None:
            events = machine.handle_timer(now)
        elif data:
            events = machine.receive_data(data, now)
        else:
            eof = True
            events = machine.receive_eof(now)
        await on_events(events)


async def _flush(
    stream: ByteStream,
    machine: Machine[Any],
    clock: Callable[[], float],
    on_events: Callable[[list[Any]], Awaitable[None]],
    max_write: int,
) -> None:
    outgoing = machine.data_to_send()
    view = memoryview(outgoing)
    try:
        for start in range(0, len(view), max_write):
            await stream.write(bytes(view[start : start + max_write]))
    except Exception:  # any transport failure is an EOF to the machine
        events = machine.receive_eof(clock())
        if events:
            await on_events(events)
