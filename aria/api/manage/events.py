"""Live events for the dashboard: one in-process hub, one SSE stream per open page.

Whatever changes node state (a download's progress, a profile switch, a benchmark step)
publishes a small JSON event; every subscribed page receives it as
``event: <kind>`` + ``data: <json>``. Nothing runs while nothing happens: a subscriber
waits on its queue, and an idle stream carries one comment line every
``KEEPALIVE_S`` seconds (so proxies and the browser see a live connection).

Each subscriber has a bounded queue; one that does not keep up is disconnected rather
than allowed to grow memory (the page reconnects and re-reads the state it shows).
Publishing is synchronous and never blocks; threads publish through
:meth:`EventHub.publish_from_thread`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from starlette.responses import StreamingResponse

__all__ = ["KEEPALIVE_S", "Event", "EventHub", "sse", "sse_response"]

KEEPALIVE_S: Final = 25.0
_QUEUE: Final = 256
_HEADERS: Final = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]


def sse(kind: str, data: dict[str, Any]) -> bytes:
    """One SSE event (``data`` is compact JSON: it never contains a newline)."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {kind}\ndata: {payload}\n\n".encode()


class EventHub:
    """Fan-out of :class:`Event` to every subscriber (one per open dashboard page)."""

    def __init__(self, queue_size: int = _QUEUE) -> None:
        self._queue_size = queue_size
        self._subscribers: set[MemoryObjectSendStream[Event]] = set()
        self.closed = False

    def close(self) -> None:
        """End every stream (the server is stopping) and refuse new subscribers."""
        self.closed = True
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Queue ``kind``/``data`` for every subscriber (call on the event loop)."""
        event = Event(kind, data)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:  # a stalled page: drop it, it reconnects and re-reads
                self._subscribers.discard(send)
                send.close()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)

    def publish_from_thread(self, kind: str, data: dict[str, Any]) -> None:
        """:meth:`publish` from a worker thread started by ``anyio.to_thread``."""
        anyio.from_thread.run_sync(self.publish, kind, data)

    async def stream(self) -> AsyncIterator[bytes]:
        """One subscriber's SSE body: ``hello``, then every event, with keep-alives; the
        subscription ends with the stream (the page left, or it fell behind)."""
        send, receive = anyio.create_memory_object_stream[Event](self._queue_size)
        if self.closed:
            send.close()
        else:
            self._subscribers.add(send)
        try:
            async with receive:
                yield sse("hello", {"keepalive_s": KEEPALIVE_S})
                while True:
                    event = None  # never yield inside the timeout's cancel scope
                    with anyio.move_on_after(KEEPALIVE_S):
                        event = await receive.receive()
                    yield b": keepalive\n\n" if event is None else sse(event.kind, event.data)
        except anyio.EndOfStream:  # dropped by publish() (too slow), or the server stops
            return
        finally:
            self._subscribers.discard(send)
            send.close()


def sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    """A ``text/event-stream`` response that proxies must not buffer."""
    return StreamingResponse(body, media_type="text/event-stream", headers=_HEADERS)
