"""The memories of every user of one node, opened on demand, and the reminder watch.

A :class:`MemoryHub` opens each user's :class:`~aria.memory.service.MemoryService` once
(embedding what an import or a model change left without a vector), shares one embedder
between them and closes them all at the end. :func:`watch_reminders` is the loop that
makes time reminders fire on time: every quarter of a second it claims what is due, so a
reminder fires within about 0.25 s of its moment while a chat, ``aria memory watch`` or
the API runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio

from aria.config import AriaPaths
from aria.errors import AriaError
from aria.memory.records import Reminder
from aria.memory.service import Embedder, MemoryService, ModelWatch
from aria.memory.store import MemoryStore
from aria.memory.users import store_file

__all__ = ["TICK_S", "MemoryHub", "watch_reminders"]

log = logging.getLogger(__name__)

TICK_S = 0.25


class MemoryHub:
    """Open memory services by user; close them all on exit."""

    def __init__(
        self,
        paths: AriaPaths,
        embedder: Embedder | None,
        models: ModelWatch | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.paths = paths
        self.embedder = embedder
        self.models = models
        self._clock = clock
        self._services: dict[str, MemoryService] = {}
        self._opening = anyio.Lock()

    async def service(self, user: str) -> MemoryService:
        """The memory of ``user`` (opened, and its vectors brought up to date, once).

        Raises:
            InvalidRequest: not a valid user name. MemoryStoreError: unusable file.
        """
        if (ready := self._services.get(user)) is not None:
            return ready
        async with self._opening:
            if (ready := self._services.get(user)) is not None:
                return ready
            path = store_file(self.paths, user)
            store = await anyio.to_thread.run_sync(MemoryStore, path)
            service = MemoryService(store, self.embedder, self.models, clock=self._clock)
            await service.sync_vectors()
            self._services[user] = service
            return service

    def close(self) -> None:
        for service in self._services.values():
            service.store.close()
        self._services.clear()

    def __enter__(self) -> MemoryHub:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def watch_reminders(
    hub: MemoryHub,
    users: Callable[[], list[str]],
    on_fire: Callable[[str, list[Reminder]], Awaitable[None]] | None,
    *,
    tick_s: float = TICK_S,
) -> None:
    """Fire due reminders of ``users()`` forever (cancel the scope to stop).

    With ``on_fire``, fired reminders are also delivered: marked seen and passed to it
    (a chat or ``aria memory watch`` prints them). Without, they are only fired, on time,
    and wait for the user's next API response.
    """
    while True:
        for user in users():
            try:
                service = await hub.service(user)
                if on_fire is None:
                    await service.io(service.fire_due)
                elif shown := await service.tick():
                    await on_fire(user, shown)
            except AriaError as exc:  # one broken store must not stop the others' reminders
                log.warning("reminders of %s: %s", user, exc.message)
        await anyio.sleep(tick_s)
