"""Stop a request's work when its client disconnects before the response starts.

Hypercorn does not cancel an app whose client went away; it delivers
``http.disconnect`` on ``receive()`` instead (as Starlette's ``listen_for_disconnect``
relies on). :func:`unless_disconnected` runs the work next to a watcher on
``receive()`` and cancels it at that message, so a non-streamed generation stops
between two tokens (the lease's shielded cleanup cancels it in the worker), an
embedding batch between two chunks, and a request still waiting in a backend's queue
leaves it. Streams need no watcher once they run: writing to a closed connection
ends them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.responses import Response
from starlette.types import Receive

__all__ = ["CLIENT_GONE", "client_gone", "unless_disconnected"]

T = TypeVar("T")

# nginx's "client closed request": nobody reads it, but the request metrics show it.
CLIENT_GONE = 499


def client_gone() -> Response:
    return Response(status_code=CLIENT_GONE)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Callable[[], Awaitable[T]]) -> T | None:
    """``await work()``, or None if the client disconnected first (``work`` is cancelled).

    ``work``'s own exception is re-raised as is (not wrapped in an exception group).
    """
    outcome: list[T] = []
    failure: Exception | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await _disconnected(receive)
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            outcome.append(await work())
        except Exception as exc:
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return outcome[0] if outcome else None
