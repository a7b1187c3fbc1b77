"""The memory side of ``aria chat``: the local user's memory, and reminders shown live.

While the chat runs, a watch fires time reminders (and model-download ones) within a
quarter of a second of their moment and prints them, even while the prompt waits for
input. Each turn recalls, learns and fires event reminders (aria.memory.conversation);
the line under each answer says how many memories it used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio
from rich.markup import escape

from aria.cli.context import CliContext
from aria.cli.memory import print_reminder
from aria.errors import AriaError
from aria.memory import (
    LOCAL_USER,
    MemoryHub,
    MemoryService,
    NodeModels,
    Reminder,
    TurnMemory,
    begin_turn,
    can_extract,
    embedder_for,
    end_turn,
    learn_from_answer,
    preparer,
    watch_reminders,
)
from aria.memory.records import new_id

if TYPE_CHECKING:
    from aria.catalog import CatalogEntry
    from aria.node import Node, Prepare

__all__ = ["ChatMemory"]


class ChatMemory:
    """One chat session's memory."""

    def __init__(self, cli: CliContext, node: Node, service: MemoryService) -> None:
        self._cli = cli
        self._node = node
        self._service = service
        self._conversation = new_id("c")

    @classmethod
    @asynccontextmanager
    async def open(
        cls, cli: CliContext, node: Node, enabled: bool
    ) -> AsyncIterator[ChatMemory | None]:
        """The session's memory (None when off), with the reminder watch running."""
        if not enabled:
            yield None
            return
        with MemoryHub(cli.paths, embedder_for(node), NodeModels(node)) as hub:
            if hub.embedder is None:
                cli.err.print(
                    "[yellow]note:[/] the embedding model is not installed, so memory matches "
                    "keywords only (`aria model ensure-default` installs it)"
                )
            service = await hub.service(LOCAL_USER)

            async def show(_: str, fired: list[Reminder]) -> None:
                for reminder in fired:
                    print_reminder(cli, reminder)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_reminders, hub, lambda: [LOCAL_USER], show)
                try:
                    yield cls(cli, node, service)
                finally:
                    nursery.cancel_scope.cancel()

    async def begin(self, history: list[dict[str, Any]]) -> TurnMemory | None:
        """Recall, learn and fire reminders for the newest message; say what happened."""
        limit = self._cli.settings.memory.recall
        turn = await begin_turn(
            self._service, history, self._conversation, source="chat", limit=limit
        )
        if turn is None:
            return None
        for reminder in turn.fired:
            print_reminder(self._cli, reminder)
        if turn.learned is not None and (note := turn.learned.note()):
            self._cli.console.print(f"[dim]memory: {escape(note)}[/]", highlight=False)
        return turn

    def prepare(self, turn: TurnMemory) -> Prepare:
        return preparer(turn)

    def stats(self, turn: TurnMemory) -> str:
        if turn.withheld:
            return " · memory withheld (the model ran on peers)"
        text = f" · {len(turn.used)} memories used"
        if turn.dropped:
            text += f" · {turn.dropped} older messages left out"
        return text

    async def end(
        self, turn: TurnMemory, answer: str, entry: CatalogEntry | None, *, local: bool
    ) -> None:
        """Remember the answer; let the model that gave it extract facts when it is capable
        and ran on this machine (``local``)."""
        await end_turn(self._service, turn, answer, source="chat")
        settings = self._cli.settings.memory
        if not settings.extract or entry is None or not local:
            return
        if not can_extract(entry, settings.extract_min_params_b):
            return
        try:
            learned = await learn_from_answer(self._node, self._service, turn, entry.id)
        except AriaError as exc:
            self._cli.err.print(f"[dim]memory: fact extraction failed: {escape(exc.message)}[/]")
            return
        for item in learned:
            if item.memory is not None:
                self._cli.console.print(f"[dim]memory: learned {escape(item.memory.text)}[/]")
