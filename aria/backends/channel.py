"""One worker's messages, handed to the request each belongs to (several share a worker).

A worker interleaves the events of every request it is decoding. There is no reader
task: whichever request is waiting reads the pipe, keeps its own messages and files the
others' under their request ids, then wakes the requests that are waiting (one of them
takes over the reading). A slow consumer therefore never holds back another one's
tokens, and when nobody reads, the pipe fills and the worker waits: back-pressure.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from aria.errors import BackendCrashed

if TYPE_CHECKING:
    from aria.backends.process import WorkerProcess

__all__ = ["WorkerChannel"]


class WorkerChannel:
    """Demultiplexes one worker's output by request id."""

    def __init__(self, process: WorkerProcess) -> None:
        self.process = process
        self._queues: dict[int, deque[dict[str, Any]]] = {}
        self._reading = False
        self._arrived = anyio.Event()
        self._failure: BackendCrashed | None = None

    def open(self, request_id: int) -> None:
        """Start keeping ``request_id``'s messages (before sending its command)."""
        self._queues[request_id] = deque()

    def close(self, request_id: int) -> None:
        """Stop keeping them; later messages for it are dropped."""
        self._queues.pop(request_id, None)

    async def receive(self, request_id: int) -> dict[str, Any]:
        """The next message for ``request_id``.

        Raises:
            BackendCrashed: the worker died (every waiting request gets it).
        """
        queue = self._queues[request_id]
        while not queue:
            if self._failure is not None:
                raise BackendCrashed(self._failure.message)
            if self._reading:
                await self._arrived.wait()
                continue
            self._reading = True
            try:
                self._file(await self.process.receive())
            except BackendCrashed as exc:
                self._failure = exc
                raise
            finally:
                self._reading = False
                self._arrived.set()
                self._arrived = anyio.Event()
        return queue.popleft()

    def ready(self, request_id: int) -> dict[str, Any] | None:
        """A message for ``request_id`` that has already arrived, without waiting."""
        queue = self._queues.get(request_id)
        if queue is None:
            return None
        if not queue and not self._reading:
            while (message := self.process.buffered()) is not None:
                self._file(message)
                if queue:
                    break
        return queue.popleft() if queue else None

    def _file(self, message: dict[str, Any]) -> None:
        queue = self._queues.get(message.get("id", -1))
        if queue is not None:
            queue.append(message)
