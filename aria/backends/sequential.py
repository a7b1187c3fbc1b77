"""Serve a one-request-at-a-time :class:`TextEngine` through the step-wise :class:`Engine`.

Requests run in arrival order; each step takes one text piece from the running one.
The bitnet.cpp server engine is served this way (it decodes one request at a time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence

from aria.backends.engine import (
    Embeddings,
    Ended,
    Failure,
    Finished,
    Piece,
    StepEvent,
    TextEngine,
)
from aria.backends.protocol import GenerationJob

__all__ = ["SequentialEngine"]


class SequentialEngine:
    """A FIFO of requests in front of an engine that generates one at a time."""

    def __init__(self, inner: TextEngine) -> None:
        self.info = inner.info
        self._inner = inner
        self._queue: deque[tuple[int, GenerationJob]] = deque()
        self._running: tuple[int, Generator[str, None, Finished]] | None = None
        self._cancelled: set[int] = set()

    def submit(self, request_id: int, job: GenerationJob) -> None:
        self._queue.append((request_id, job))

    def cancel(self, request_id: int) -> None:
        self._cancelled.add(request_id)

    def has_work(self) -> bool:
        return self._running is not None or bool(self._queue)

    def step(self) -> list[StepEvent]:
        events: list[StepEvent] = []
        for request_id, job in list(self._queue):
            if request_id in self._cancelled:  # never started: nothing to stop
                self._queue.remove((request_id, job))
                self._cancelled.discard(request_id)
                events.append(Ended(request_id, Finished("cancelled", 0, 0)))
        if self._running is None and self._queue:
            request_id, job = self._queue.popleft()
            self._running = (request_id, self._inner.generate(job, self._stopper(request_id)))
        if self._running is None:
            return events
        request_id, pieces = self._running
        try:
            events.append(Piece(request_id, next(pieces)))
        except StopIteration as stop:
            events.append(Ended(request_id, stop.value))
            self._finish(request_id)
        except Exception as exc:  # this request's failure (BackendCrashed included)
            events.append(Failure(request_id, exc))
            self._finish(request_id)
        return events

    def _stopper(self, request_id: int) -> Callable[[], bool]:
        return lambda: request_id in self._cancelled

    def _finish(self, request_id: int) -> None:
        self._running = None
        self._cancelled.discard(request_id)

    def prepare_embeddings(self) -> None:
        """Nothing to prepare: the inner engine loads (or refuses) in ``embed``."""

    def embed(self, texts: Sequence[str], cancelled: Callable[[], bool]) -> Embeddings:
        return self._inner.embed(texts, cancelled)

    def close(self) -> None:
        self._inner.close()
