"""One user's memory as the CLI, the API and the chat use it.

:class:`MemoryService` joins a :class:`~aria.memory.store.MemoryStore` (one file), an
:class:`Embedder` (the default embedding model, through the node's worker process) and a
clock. Everything that embeds is async; the store's short SQLite calls run in a worker
thread so the event loop never waits on the disk. Without an embedder (the embedding
model is not installed) memory still works with keywords only, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio
import numpy as np

from aria.errors import ContextLengthExceeded, InvalidRequest
from aria.memory.facts import Duplicate, Supersede, decide, slot_of
from aria.memory.prospective import Thresholds, measured_thresholds
from aria.memory.records import Hit, Memory, MemoryKind, Reminder, TriggerKind
from aria.memory.search import Mode, Query, plan_query, search
from aria.memory.statements import (
    EventReminder,
    ModelReminder,
    TimeReminder,
    UnclearReminder,
    is_procedural,
    read_message,
)
from aria.memory.store import MemoryStore
from aria.memory.text import fts_query

__all__ = ["Embedder", "Learned", "MemoryService", "ModelWatch"]

T = TypeVar("T")

_EMBED_CHARS = 1200  # about 300 tokens: the part of a long turn its vector describes
_EMBED_BATCH = 32
_NEIGHBOURS = 5
_TOPIC_MEMORIES = 3  # memories that give an event reminder's topic its meaning


class Embedder(Protocol):
    """Text to vectors with one fixed model (memories are only comparable within it)."""

    @property
    def model_id(self) -> str: ...

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class ModelWatch(Protocol):
    """What model reminders need to know about the node's models."""

    def resolve(self, name: str) -> str | None:
        """The catalog or store id ``name`` refers to, or None."""
        ...

    def installed(self, model_id: str) -> bool: ...


@dataclass(frozen=True)
class Learned:
    """What one statement did to the memory."""

    memory: Memory | None = None
    duplicate_of: str | None = None
    superseded: tuple[str, ...] = ()
    reminder: Reminder | None = None
    unclear_reminder: str | None = None

    def note(self) -> str | None:
        """One line for the user (and for the model, so it can confirm)."""
        if self.reminder is not None:
            return f"Reminder set {self.reminder.describe()}: {self.reminder.text}"
        if self.unclear_reminder is not None:
            return (
                f"The user wants a reminder ({self.unclear_reminder}) but gave no time or "
                "event ARIA understood; ask when."
            )
        if self.duplicate_of is not None:
            return "Already remembered."
        if self.memory is not None:
            replaced = " (replacing an older fact)" if self.superseded else ""
            return f"Saved to memory{replaced}: {self.memory.text}"
        return None


@dataclass
class MemoryService:
    """The memory of one user: its store, the embedding model, a clock."""

    store: MemoryStore
    embedder: Embedder | None
    models: ModelWatch | None = None
    clock: Callable[[], float] = time.time
    thresholds: Thresholds = field(default_factory=measured_thresholds)

    async def io(self, call: Callable[..., T], *args: Any) -> T:
        """Run a store call in a worker thread."""
        return await anyio.to_thread.run_sync(call, *args)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock()).astimezone()

    # -- vectors --------------------------------------------------------------------------

    async def vectors(self, texts: list[str]) -> list[list[float]] | None:
        """Embeddings of ``texts`` (long ones by their beginning), or None without a model."""
        if self.embedder is None or not texts:
            return None
        clipped = [t[:_EMBED_CHARS] for t in texts]
        try:
            return await self.embedder.embed(clipped)
        except ContextLengthExceeded:  # dense scripts can exceed the window: halve and retry
            return await self.embedder.embed([t[: _EMBED_CHARS // 3] for t in texts])

    async def vector(self, text: str) -> list[float] | None:
        found = await self.vectors([text])
        return None if found is None else found[0]

    async def sync_vectors(self) -> int:
        """Embed what has no vector yet (after an import or a change of embedding model)."""
        if self.embedder is None:
            return 0
        if await self.io(self.store.meta, "embedding_model") != self.embedder.model_id:
            await self.io(self.store.drop_vectors)
            await self.io(self.store.set_meta, "embedding_model", self.embedder.model_id)
        done = 0
        while batch := await self.io(self.store.without_vectors, _EMBED_BATCH):
            vectors = await self.vectors([text for _, text in batch]) or []
            for (memory_id, _), vector in zip(batch, vectors, strict=True):
                await self.io(self.store.set_vector, memory_id, vector)
            done += len(batch)
        await self._sync_event_vectors()
        return done

    async def _sync_event_vectors(self) -> None:
        for reminder, vector in await self.io(self.store.reminders.waiting, TriggerKind.EVENT):
            if vector is None and reminder.event and (found := await self.vector(reminder.event)):
                await self.io(self.store.reminders.set_event_vector, reminder.id, found)

    # -- remembering -----------------------------------------------------------------------

    async def add(
        self,
        text: str,
        *,
        kind: MemoryKind | None = None,
        source: str = "cli",
        origin: str | None = None,
        vector: list[float] | None = None,
        **episode: Any,
    ) -> Learned:
        """Remember ``text`` (kind guessed when None: an instruction is procedural, else a
        semantic fact). Facts are deduplicated and supersede older ones in their slot.

        Raises:
            InvalidRequest: empty text.
        """
        text = " ".join(text.split())
        if not text:
            raise InvalidRequest("a memory needs some text", param="text")
        if kind is None:
            kind = MemoryKind.PROCEDURAL if is_procedural(text) else MemoryKind.SEMANTIC
        vector = vector or await self.vector(text)
        now = self.clock()
        if kind is MemoryKind.EPISODIC:
            memory = await self.io(
                lambda: self.store.add(
                    kind, text, source=source, now=now, vector=vector, origin=origin, **episode
                )
            )
            return Learned(memory=memory)
        slot = slot_of(text)
        outcome = decide(
            text,
            slot,
            await self._neighbours(text, kind, vector, slot.name if slot else None),
            duplicate_at=self.thresholds.duplicate_similarity,
        )
        if isinstance(outcome, Duplicate):
            return Learned(duplicate_of=outcome.existing)
        memory = await self.io(
            lambda: self.store.add(
                kind,
                text,
                source=source,
                now=now,
                vector=vector,
                slot=slot.name if slot else None,
                origin=origin,
            )
        )
        older: tuple[str, ...] = ()
        if isinstance(outcome, Supersede):
            older = outcome.older
            await self.io(lambda: self.store.supersede(older, memory.id, now=now))
        return Learned(memory=memory, superseded=older)

    async def _neighbours(
        self, text: str, kind: MemoryKind, vector: list[float] | None, slot: str | None
    ) -> list[tuple[Memory, float]]:
        """Active memories of ``kind`` most similar to ``vector`` (without one: sharing
        words with ``text``, similarity 0), plus all in ``slot``."""
        close: list[tuple[int, float]] = []
        if vector is not None:
            close = await self.io(lambda: self.store.similar(vector, _NEIGHBOURS, kinds=(kind,)))
        elif (match := fts_query(text)) is not None:
            words = await self.io(lambda: self.store.keyword(match, _NEIGHBOURS, kinds=(kind,)))
            close = [(pk, 0.0) for pk, _ in words]
        found = await self.io(self.store.by_pk, [pk for pk, _ in close])
        pairs = [(found[pk], score) for pk, score in close if pk in found]
        if slot is not None:
            known = {m.id for m, _ in pairs}
            pairs += [
                (m, 0.0) for m in await self.io(self.store.in_slot, slot) if m.id not in known
            ]
        return pairs

    async def remind(self, text: str, *, source: str = "cli") -> Reminder:
        """A reminder from a sentence ("tomorrow at 9 call the bank", "remind me when I
        talk about the trip to renew my passport").

        Raises:
            InvalidRequest: no time, event or model download could be read, or the model
                is unknown.
        """
        learned = await self.learn_reminder(text, source=source, assume=True)
        if learned is None or learned.reminder is None:
            raise InvalidRequest(
                "no time, event or model download found in the reminder; try e.g. "
                '"tomorrow at 9 call the bank" or "next time I talk about the trip, remind '
                'me to renew my passport"',
                param="text",
            )
        return learned.reminder

    async def learn_reminder(
        self, text: str, *, source: str, assume: bool = False
    ) -> Learned | None:
        """Set the reminder ``text`` asks for (None: it asks for none). With ``assume``,
        ``text`` is known to be a reminder and may leave out "remind me"."""
        intent = read_message(text, self.now())
        if assume and not isinstance(intent, TimeReminder | EventReminder | ModelReminder):
            intent = read_message(f"remind me {text}", self.now()) or intent
        if isinstance(intent, TimeReminder | EventReminder | ModelReminder):
            return Learned(reminder=await self._reminder(intent, text))
        if isinstance(intent, UnclearReminder):
            return Learned(unclear_reminder=intent.task)
        return None

    async def _reminder(
        self, intent: TimeReminder | EventReminder | ModelReminder, request: str
    ) -> Reminder:
        book, now = self.store.reminders, self.clock()
        if isinstance(intent, TimeReminder):
            due = intent.due.timestamp()
            return await self.io(
                lambda: book.add(
                    text=intent.task, request=request, trigger=TriggerKind.TIME, now=now, due_at=due
                )
            )
        if isinstance(intent, EventReminder):
            vector = await self._topic(intent.event)
            return await self.io(
                lambda: book.add(
                    text=intent.task,
                    request=request,
                    trigger=TriggerKind.EVENT,
                    now=now,
                    event=intent.event,
                    event_vector=vector,
                )
            )
        model = self.models.resolve(intent.model) if self.models is not None else intent.model
        if model is None:
            raise InvalidRequest(
                f"no model is called {intent.model!r} (`aria model list --all`)", param="text"
            )
        return await self.io(
            lambda: book.add(
                text=intent.task, request=request, trigger=TriggerKind.MODEL, now=now, model=model
            )
        )

    async def _topic(self, event: str) -> list[float] | None:
        """What an event reminder's topic means to this user: its words, and the memories
        they refer to ("the trip" is the Osaka trip), as one vector (the centroid)."""
        vector = await self.vector(event)
        if vector is None:
            return None
        hits = await self.search(
            event, limit=_TOPIC_MEMORIES, kinds=(MemoryKind.SEMANTIC, MemoryKind.EPISODIC),
            vector=vector,
        )  # fmt: skip
        related = [
            hit.memory.text
            for hit in hits
            if (hit.similarity or 0.0) >= self.thresholds.event_context_similarity
            or hit.keyword_rank is not None
        ][:_TOPIC_MEMORIES]
        found = await self.vectors(related) if related else []
        centroid = np.sum([vector, *(found or [])], axis=0)
        return [float(x) for x in centroid / (np.linalg.norm(centroid) or 1.0)]

    # -- reading ---------------------------------------------------------------------------

    async def search(
        self,
        text: str,
        *,
        limit: int = 5,
        kinds: Sequence[MemoryKind] | None = None,
        mode: Mode = Mode.HYBRID,
        include_superseded: bool = False,
        vector: list[float] | None = None,
    ) -> list[Hit]:
        """The memories best matching ``text``; a time in it ("last Tuesday") narrows it."""
        rest, since, until = plan_query(text, self.now())
        if vector is None and mode is not Mode.KEYWORD:
            vector = await self.vector(rest)
        query = Query(
            text=rest,
            vector=vector,
            kinds=tuple(kinds or MemoryKind),
            since=since,
            until=until,
            limit=limit,
            include_superseded=include_superseded,
        )
        return await self.io(search, self.store, query, mode)

    # -- reminders firing --------------------------------------------------------------------

    async def tick(self) -> list[Reminder]:
        """Fire what is due (time reminders, models now installed) and return every fired
        reminder not delivered yet, marked delivered: the caller shows them."""
        await self.io(self.fire_due)
        return await self.io(self.store.reminders.deliver, self.clock())

    def fire_due(self) -> list[Reminder]:
        """Claim the due time reminders and the model reminders whose model is installed
        (blocking; the scheduler calls it from a thread). Returns those this call fired."""
        book, now = self.store.reminders, self.clock()
        fired = [r for r in book.due(now) if book.claim(r.id, now)]
        if self.models is not None:
            for reminder, _ in book.waiting(TriggerKind.MODEL):
                ready = reminder.model is not None and self.models.installed(reminder.model)
                if ready and book.claim(reminder.id, now):
                    fired.append(reminder)
        return fired

    # -- forgetting and moving --------------------------------------------------------------

    async def forget(self, ids: Sequence[str]) -> list[str]:
        """Raises: MemoryNotFound."""
        return await self.io(self.store.forget, list(ids))
