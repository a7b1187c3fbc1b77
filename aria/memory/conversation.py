"""Memory-augmented chat: what the memory does around each turn of a conversation.

Before the model answers (:func:`begin_turn`), for the user's newest message:

1. recall the facts and past exchanges that match it (hybrid search, kept only above the
   measured similarity threshold) and every standing instruction;
2. fire the event reminders it matches, then any reminder that fired meanwhile (time,
   model download), each delivered once;
3. store it as an episodic memory, and learn what it asks ("remember that…",
   "answer in French", "remind me…").

:meth:`TurnMemory.apply` then builds the prompt: the memory block as a system message and
the conversation fitted to the model's window (:mod:`aria.memory.working`). It is called
with ``private_ok=False`` when the request leaves this machine (a model split over peers):
the conversation goes without any memory, and the turn records that it was withheld.
After the answer, :func:`end_turn` stores it as the reply to the user's turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from aria.backends.protocol import GenerationJob
from aria.memory.prompt import memory_block, with_memory
from aria.memory.prospective import Thresholds, match_event
from aria.memory.records import Hit, Memory, MemoryKind, Reminder, TriggerKind, new_id
from aria.memory.search import Mode, Query, plan_query, search
from aria.memory.service import Learned, MemoryService
from aria.memory.statements import Preference, Remember, read_message
from aria.memory.text import keywords
from aria.memory.working import estimate_tokens, fit_window

__all__ = ["TurnMemory", "begin_turn", "end_turn", "last_user_text", "preparer"]

_PROCEDURES = 10
_ANSWER_RESERVE = 512  # tokens kept free for the answer when a request sets no max_tokens


@dataclass
class TurnMemory:
    """The memory side of one user message (what was recalled, fired, learned, used)."""

    conversation: str
    message: str
    turn_id: str
    recalled: list[Memory]
    procedures: list[Memory]
    fired: list[Reminder]
    learned: Learned | None
    used: tuple[str, ...] = ()
    withheld: bool = False
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def apply(
        self, messages: Sequence[dict[str, Any]], n_ctx: int, max_tokens: int, *, private_ok: bool
    ) -> tuple[dict[str, Any], ...]:
        """The messages to send: with the memory block when ``private_ok``, fitted to
        ``n_ctx`` tokens minus the answer's ``max_tokens``."""
        block = None
        if private_ok:
            note = self.learned.note() if self.learned else None
            block = memory_block(self.recalled, self.procedures, self.fired, [note] if note else [])
            self.used = tuple(m.id for m in [*self.procedures, *self.recalled])
        else:
            self.withheld, self.used = True, ()
        budget = n_ctx - max_tokens - (estimate_tokens({"content": block}) if block else 0)
        fitted = fit_window(messages, budget)
        self.dropped = len(fitted.dropped)
        return with_memory(fitted.messages, block)

    def withhold(self) -> None:
        """Record that the request went elsewhere without any memory (served by a peer)."""
        self.withheld, self.used = True, ()

    def header(self) -> str:
        """``x-aria-memory``: what the memory did for this request (ASCII)."""
        if self.withheld:
            return "withheld (the request left this machine)"
        parts = [f"used={','.join(self.used) or 'none'}"]
        if self.learned and self.learned.memory:
            parts.append(f"saved={self.learned.memory.id}")
        if self.learned and self.learned.reminder:
            parts.append(f"reminder={self.learned.reminder.id}")
        if self.dropped:
            parts.append(f"dropped_messages={self.dropped}")
        return "; ".join(parts)

    def report(self) -> dict[str, Any]:
        """The ``aria.memory`` field of an API response."""
        learned = self.learned
        return {
            "used": [] if self.withheld else [m.to_dict() for m in self.procedures + self.recalled],
            "withheld": self.withheld,
            "saved": learned.memory.to_dict() if learned and learned.memory else None,
            "superseded": list(learned.superseded) if learned else [],
            "reminder_set": learned.reminder.to_dict() if learned and learned.reminder else None,
            "note": learned.note() if learned else None,
            "dropped_messages": self.dropped,
        }


def preparer(turn: TurnMemory) -> Callable[[GenerationJob, int, bool], GenerationJob]:
    """The :data:`aria.node.Prepare` hook adding ``turn``'s memory to a chat job."""

    def prepare(job: GenerationJob, n_ctx: int, local: bool) -> GenerationJob:
        if job.messages is None:
            return job
        reserve = min(job.max_tokens or _ANSWER_RESERVE, n_ctx // 2)
        messages = turn.apply(job.messages, n_ctx, reserve, private_ok=local)
        return replace(job, messages=messages)

    return prepare


def last_user_text(messages: Sequence[dict[str, Any]]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return None


async def begin_turn(
    service: MemoryService,
    messages: Sequence[dict[str, Any]],
    conversation: str,
    *,
    source: str,
    limit: int = 5,
) -> TurnMemory | None:
    """Do the memory's work for the newest user message (None: there is none)."""
    message = last_user_text(messages)
    if not message or not message.strip():
        return None
    rest, since, until = plan_query(message, service.now())
    vector = await service.vector(message)
    query_vector = vector if rest == message else await service.vector(rest)
    recalled = await _recall(service, rest, query_vector, since, until, messages, limit)
    procedures = await service.io(
        lambda: service.store.select(kinds=[MemoryKind.PROCEDURAL], limit=_PROCEDURES)
    )
    await _fire_events(service, message, vector)
    fired = await service.tick()
    turn_id = new_id("m")
    learned = await service.learn_reminder(message, source=source)
    await service.add(
        message,
        kind=MemoryKind.EPISODIC,
        source=source,
        vector=vector,
        role="user",
        conversation=conversation,
        memory_id=turn_id,
    )
    if learned is None:
        learned = await _learn(service, message, turn_id, source)
    return TurnMemory(conversation, message, turn_id, recalled, procedures, fired, learned)


async def end_turn(service: MemoryService, turn: TurnMemory, answer: str, *, source: str) -> None:
    """Store the model's answer as the reply to the user's turn."""
    if answer.strip():
        await service.add(
            answer,
            kind=MemoryKind.EPISODIC,
            source=source,
            origin=turn.turn_id,
            role="assistant",
            conversation=turn.conversation,
        )


async def _recall(
    service: MemoryService,
    text: str,
    vector: list[float] | None,
    since: float | None,
    until: float | None,
    messages: Sequence[dict[str, Any]],
    limit: int,
) -> list[Memory]:
    query = Query(
        text=text,
        vector=vector,
        kinds=(MemoryKind.SEMANTIC, MemoryKind.EPISODIC),
        since=since,
        until=until,
        limit=limit,
    )
    mode = Mode.HYBRID if vector is not None else Mode.KEYWORD
    hits = await service.io(search, service.store, query, mode)
    present = {str(m.get("content") or "").strip() for m in messages}
    now = service.now()
    return [
        hit.memory
        for hit in hits
        if hit.memory.text.strip() not in present
        and not _says_nothing(hit.memory, now, asked_about_a_period=since is not None)
        and _relevant(hit, vector, since, service.thresholds)
    ]


def _says_nothing(memory: Memory, now: datetime, *, asked_about_a_period: bool) -> bool:
    """A user's turn that tells nothing worth recalling on its own: a request to the
    memory ("remember that …": the fact or instruction is recalled by itself) or, unless
    the user asks what was said in a period, a question they asked."""
    if memory.role != "user":
        return False
    if read_message(memory.text, now) is not None:
        return True
    return not asked_about_a_period and memory.text.rstrip().endswith("?")


def _relevant(
    hit: Hit, vector: list[float] | None, since: float | None, limits: Thresholds
) -> bool:
    if vector is None or since is not None:  # keyword-only, or asked about a period
        return hit.keyword_rank is not None or since is not None
    similarity = hit.similarity or 0.0
    if similarity >= limits.recall_similarity:
        return True
    return hit.keyword_rank is not None and similarity >= limits.recall_keyword_similarity


async def _fire_events(service: MemoryService, message: str, vector: list[float] | None) -> None:
    book, words = service.store.reminders, keywords(message)
    waiting = await service.io(book.waiting, TriggerKind.EVENT)
    for reminder, event_vector in waiting:
        match = match_event(
            vector, words, event_vector, keywords(reminder.event or ""), service.thresholds
        )
        if match.fires:
            await service.io(book.claim, reminder.id, service.clock(), message)


async def _learn(service: MemoryService, message: str, turn_id: str, source: str) -> Learned | None:
    intent = read_message(message, service.now())
    if isinstance(intent, Remember):
        return await service.add(intent.text, kind=intent.kind, source=source, origin=turn_id)
    if isinstance(intent, Preference):
        return await service.add(
            intent.text, kind=MemoryKind.PROCEDURAL, source=source, origin=turn_id
        )
    return None
