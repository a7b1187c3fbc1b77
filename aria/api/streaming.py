"""Driving a served generation for an HTTP response, streamed (SSE) or not.

Streaming uses a plain ``StreamingResponse`` writing ``data: {...}`` lines: it works
on trio (sse-starlette's shutdown drain is asyncio-only) and delivers the first event
sooner. The response owns the backend lease: whatever way the stream ends (done,
error, client gone), :class:`EventStream` closes the generation in a shielded
``finally``, which cancels it in the worker if it is still running.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from aria.api.errors import error_body
from aria.api.metrics import Metrics, RequestTracker
from aria.api.payloads import sse
from aria.backends import DoneEvent, TokenEvent, ToolCallDelta
from aria.errors import AriaError
from aria.served import Served

__all__ = ["EventStream", "Final", "error_event", "generated", "route_headers"]

log = logging.getLogger("aria.api")


class EventStream(StreamingResponse):
    """An SSE response that always runs ``on_close`` when it ends."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        *,
        headers: Mapping[str, str],
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(
            content, headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"}
        )
        self._on_close = on_close
        self._content = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._content.aclose()  # a client that left stops it mid-way
                await self._on_close()


@dataclass(frozen=True)
class Final:
    """End of a generation: the worker's summary (``None`` if it was cut short)."""

    done: DoneEvent | None


async def generated(
    served: Served, tracker: RequestTracker, stop: Callable[[], bool]
) -> AsyncGenerator[str | ToolCallDelta | Final, None]:
    """Each generated text piece (or a peer's parsed tool-call fragment), then one
    :class:`Final`; ``stop()`` ends early."""
    async with aclosing(served.events()) as events:
        async for event in events:
            if isinstance(event, DoneEvent):
                tracker.done(event, served.accounting.energy)
                yield Final(event)
                return
            if isinstance(event, TokenEvent):
                tracker.token()
                yield event.text
            else:
                yield event
            if stop():
                done = await served.cancel()
                tracker.done(done, served.accounting.energy)
                yield Final(done)
                return


def error_event(exc: Exception, metrics: Metrics) -> bytes:
    """The SSE event that tells an OpenAI client the stream failed mid-way."""
    if not isinstance(exc, AriaError):
        log.error("stream failed", exc_info=exc)
        exc = AriaError("internal error; see the server log")
    metrics.errors.labels(exc.code).inc()
    return sse(error_body(exc))


def route_headers(served: Served, metrics: Metrics) -> dict[str, str]:
    """``x-aria-route``, and ``x-aria-served-by`` (a peer served it), ``x-aria-split`` (split
    over peers), ``x-aria-notice``, ``x-aria-receipt`` (the id of the generation's ledger
    receipt); decisions and fallbacks taken are counted."""
    for attempt in served.skipped:
        metrics.fallbacks.labels(attempt.model_id, attempt.code).inc()
    if served.resolution.category is not None:
        metrics.route_decisions.labels(served.resolution.category, served.model_id).inc()
    headers = {"x-aria-route": _header_safe(served.route_header())}
    if served.served_by is not None:
        headers["x-aria-served-by"] = _header_safe(served.served_by)
        metrics.peer_requests.labels("used", "remote").inc()
    if served.resolution.notice:
        headers["x-aria-notice"] = _header_safe(served.resolution.notice)
    receipt = served.accounting.receipt_id
    if receipt is not None:
        headers["x-aria-receipt"] = receipt
    split = served.split_header()
    if split is not None:
        headers["x-aria-split"] = _header_safe(split)
        metrics.peer_requests.labels("used", "split").inc()
    return headers


def _header_safe(text: str) -> str:
    return text.encode("ascii", errors="replace").decode("ascii").replace("\n", " ")
