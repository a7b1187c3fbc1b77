"""Work that outlives a request (downloads, benchmark runs), run in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup

from aria.errors import Conflict

__all__ = ["Background"]


class Background:
    """Owns a task group while the app serves; on shutdown, :meth:`stop` ends the work."""

    def __init__(self) -> None:
        self._group: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run jobs while the block runs; on exit, stop what is left and wait for it."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                self._group = None
                self.stop()

    def spawn(self, job: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Start ``job(*args)`` in the background.

        Raises:
            Conflict: the API is shutting down.
        """
        if self._group is None:
            raise Conflict("the API is shutting down; this cannot start now")
        self._group.start_soon(job, *args)

    def stop(self) -> None:
        """Ask every job to end (subclasses: cancel flags, terminate processes)."""
