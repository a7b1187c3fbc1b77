"""A request being served: the chain it walks, and the entry that took it.

:class:`Resolution` is the placement decision for one request (the chain, best first,
and why); :class:`Served` is the generation in progress on the entry that took it —
here, on a peer or split over peers — read the same way whichever it is: text (and a
peer's parsed tool calls), then one summary. The API renders it and sets
``x-aria-route``/``x-aria-served-by``/``x-aria-split`` from it; the CLI prints from it.
Its :class:`~aria.accounting.Accounting` records the generation's receipt when it ends
(a generation run here or split; a peer's work is recorded by the node process, which
cross-signs the peer's receipt: :mod:`aria.p2p.receipt_exchange`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from types import TracebackType

from aria.accounting import Accounting
from aria.backends import (
    Attempt,
    DoneEvent,
    GenerationStream,
    Opened,
    TokenEvent,
    ToolCallDelta,
)
from aria.catalog import CatalogEntry, ModelId
from aria.router import ChainEntry, OnPeer
from aria.split.auto import describe_split
from aria.split.placement import Placement

__all__ = ["Event", "Opening", "Resolution", "Served"]

Event = TokenEvent | ToolCallDelta | DoneEvent


@dataclass(frozen=True)
class Resolution:
    """The chain a request walks, best first, and why."""

    entries: tuple[ChainEntry, ...]
    category: str | None
    reason: str
    notice: str | None = None

    @property
    def candidates(self) -> tuple[ModelId, ...]:
        """The models of the chain, each once, in order."""
        return tuple(dict.fromkeys(entry.model_id for entry in self.entries))


@dataclass(frozen=True)
class Opening:
    """One chain entry opened: what it runs, its first event, its split placement, and
    the accounting of its receipt."""

    entry: ChainEntry
    model: CatalogEntry
    stream: GenerationStream
    first: Event
    split: Placement | None
    accounting: Accounting


class Served:
    """A generation in progress on the chain entry that took it; close it when done."""

    def __init__(
        self,
        opened: Opened[Opening],
        resolution: Resolution,
        alter: Callable[[str], str] | None = None,
    ) -> None:
        self._opened = opened
        opening = opened.value
        self.chain_entry, self.entry, self.split = opening.entry, opening.model, opening.split
        self._stream, self._first = opening.stream, opening.first
        self.resolution = resolution
        self.accounting = opening.accounting  # the receipt, recorded when the generation ends
        self._alter = alter  # aria.cheat (tests only): the first token is altered

    @property
    def model_id(self) -> ModelId:
        return self._opened.model_id

    @property
    def skipped(self) -> tuple[Attempt, ...]:
        return self._opened.skipped

    @property
    def served_by(self) -> str | None:
        """The peer serving the request (None: this node, split or not)."""
        where = self.chain_entry.where
        return where.peer_id if isinstance(where, OnPeer) else None

    def route_header(self) -> str:
        """``x-aria-route``: the model chosen, where it runs, category, each fallback taken."""
        parts = [
            f"model={self.model_id}",
            f"where={self.chain_entry.where}",
            f"category={self.resolution.category or 'none'}",
        ]
        if self.skipped:
            fallbacks = ",".join(f"{a.candidate}:{a.code}" for a in self.skipped)
            parts.append(f"fallbacks={fallbacks}")
        if self.split is not None:
            parts.append(f"split={len(self.split.shares)} peer(s)")
        parts.append(f"reason={self.resolution.reason}")
        return "; ".join(parts)

    def split_header(self) -> str | None:
        """``x-aria-split``: where the layers ran, when the model was split over peers."""
        return None if self.split is None else describe_split(self.split)

    async def events(self) -> AsyncGenerator[Event, None]:
        """Text (and a peer's parsed tool calls) as generated, then one :class:`DoneEvent`
        (yielded once its receipt is recorded)."""
        event = self._first
        while True:
            if self._alter is not None and isinstance(event, TokenEvent):
                event, self._alter = replace(event, text=self._alter(event.text)), None
            self.accounting.saw(event)
            if isinstance(event, DoneEvent):
                await self.accounting.finish(event)
            yield event
            if self._stream.finished:
                return
            event = await self._stream.next_event()

    async def cancel(self) -> DoneEvent | None:
        """Stop generating now (the backend stays leased until :meth:`aclose`)."""
        done = await self._stream.cancel()
        await self.accounting.finish(done)
        return done

    async def aclose(self) -> None:
        """Cancel the generation if unfinished, record it, release the backend (shielded)."""
        try:
            await self.cancel()
        finally:
            await self._opened.aclose()

    async def __aenter__(self) -> Served:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
