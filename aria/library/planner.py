"""Which chunk to ask of which provider, and whether what came back is good (pure).

A :class:`SwarmPlan` is one file being fetched from several providers that agree on its
chunk list. It is pull-based: each provider is asked for chunks only while it has fewer
than its window outstanding, so a fast provider, which empties its window sooner, is asked
more often, and a slow one gets fewer chunks:

* the window is ``window`` requests (a transfer in flight plus the next one queued), and 1
  for a provider measured at under a third of the fastest one's rate;
* chunks go rarest first (held by the fewest providers: providers still fetching serve
  what they have), ties in order from ``start`` (each fetcher starts somewhere else, so a
  swarm of fetchers holds different chunks early);
* when nothing new is left, an idle provider may ask again for a chunk a slower one is
  still sending (end game); the first good copy wins, the other request is cancelled.

Every chunk is checked against its sha256 before it counts (:meth:`SwarmPlan.arrived`):
a provider that sends a bad one is banned from this file at once and its outstanding
chunks go back to the others. Time is a parameter; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal

from aria.library.bitmap import Bitmap

__all__ = [
    "Accepted",
    "Corrupt",
    "Duplicate",
    "SourceView",
    "SwarmPlan",
    "Verdict",
]

_SLOW_FRACTION = 1 / 3
_RAREST_SCAN = 64  # rarest first among this many next chunks in order
_RATE_WEIGHT = 0.3  # weight of the newest sample in a provider's rate estimate


@dataclass(frozen=True)
class Accepted:
    index: int
    cancel: tuple[str, ...]  # providers still sending a copy: cancel theirs


@dataclass(frozen=True)
class Corrupt:
    index: int
    requeued: tuple[int, ...]  # the banned provider's other outstanding chunks


@dataclass(frozen=True)
class Duplicate:
    index: int


Verdict = Accepted | Corrupt | Duplicate


@dataclass
class _Source:
    peer: str
    have: Bitmap | None  # None: every chunk
    inflight: dict[int, float] = field(default_factory=dict)  # chunk -> asked at
    bytes: int = 0
    chunks: int = 0
    rate_bps: float | None = None
    last_arrival: float | None = None
    banned: bool = False
    gone: bool = False

    def holds(self, index: int) -> bool:
        return self.have is None or index in self.have

    @property
    def active(self) -> bool:
        return not (self.banned or self.gone)


@dataclass(frozen=True)
class SourceView:
    """One provider's share of a fetch so far (for progress reports)."""

    peer: str
    bytes: int
    chunks: int
    rate_bps: float | None
    inflight: int
    state: Literal["active", "banned", "gone"]


class SwarmPlan:
    """One file's chunks, its providers, and who was asked for what."""

    def __init__(
        self,
        lengths: list[int],
        digests: tuple[str, ...],
        done: Bitmap,
        *,
        window: int = 2,
        start: int = 0,
    ) -> None:
        if len(lengths) != len(digests) or done.count != len(digests):
            raise ValueError("chunk lengths, digests and the bitmap must describe one file")
        self.lengths = lengths
        self.digests = digests
        self.done = done
        self.window = max(1, window)
        count = len(digests)
        self._ordered = [(start + k) % count for k in range(count)]
        self._position = {index: k for k, index in enumerate(self._ordered)}
        self._cursor = 0  # chunks before it are done, asked, or in _behind
        self._behind: set[int] = set()
        self._asked: dict[int, int] = {}  # chunk -> requests outstanding at active providers
        self._sources: dict[str, _Source] = {}

    # -- providers ---------------------------------------------------------------------

    def add_source(self, peer: str, have: Bitmap | None) -> None:
        self._sources[peer] = _Source(peer, have)

    def gained(self, peer: str, indices: tuple[int, ...]) -> None:
        source = self._sources.get(peer)
        if source is not None and source.have is not None:
            for index in indices:
                if 0 <= index < source.have.count:
                    source.have.add(index)

    def drop_source(self, peer: str) -> tuple[int, ...]:
        """``peer`` left (or failed): its outstanding chunks go back to the queue."""
        source = self._sources.get(peer)
        if source is None:
            return ()
        source.gone = True
        return self._release(source)

    def is_banned(self, peer: str) -> bool:
        source = self._sources.get(peer)
        return source is not None and source.banned

    @property
    def active_sources(self) -> list[str]:
        return [s.peer for s in self._sources.values() if s.active]

    # -- asking ------------------------------------------------------------------------

    def assign(self, peer: str, now: float) -> list[int]:
        """The chunks to ask ``peer`` for now (its window's free places)."""
        source = self._sources.get(peer)
        if source is None or not source.active:
            return []
        room = self._window_of(source) - len(source.inflight)
        picked: list[int] = []
        while room > 0:
            index = self._fresh_for(source)
            if index is None:
                index = self._endgame_for(source, now)
            if index is None:
                break
            source.inflight[index] = now
            self._asked[index] = self._asked.get(index, 0) + 1
            picked.append(index)
            room -= 1
        return picked

    def _window_of(self, source: _Source) -> int:
        fastest = max((s.rate_bps or 0.0 for s in self._sources.values() if s.active), default=0)
        if source.rate_bps is not None and source.rate_bps < fastest * _SLOW_FRACTION:
            return 1
        return self.window

    def _pending(self, index: int) -> bool:
        return index not in self.done and not self._asked.get(index)

    def _in_order(self) -> Iterator[int]:
        """Chunks nobody holds a request for and not yet done, in this fetch's order."""
        for index in sorted(self._behind, key=self._position.__getitem__):
            if self._pending(index):
                yield index
        while self._cursor < len(self._ordered) and not self._pending(self._ordered[self._cursor]):
            self._cursor += 1
        for position in range(self._cursor, len(self._ordered)):
            index = self._ordered[position]
            if self._pending(index):
                yield index

    def _requeue(self, index: int) -> None:
        if self._position[index] < self._cursor:
            self._behind.add(index)

    def _release(self, source: _Source) -> tuple[int, ...]:
        """Forget ``source``'s outstanding requests; their chunks are free again."""
        lost = tuple(source.inflight)
        for index in lost:
            self._drop_request(index)
        source.inflight.clear()
        return lost

    def _drop_request(self, index: int) -> None:
        left = self._asked.get(index, 0) - 1
        if left > 0:
            self._asked[index] = left
            return
        self._asked.pop(index, None)
        self._requeue(index)

    def _fresh_for(self, source: _Source) -> int | None:
        wanted = (i for i in self._in_order() if source.holds(i))
        candidates = list(islice(wanted, _RAREST_SCAN))
        if not candidates:
            return None
        holders = [s for s in self._sources.values() if s.active]
        if all(s.have is None for s in holders):
            return candidates[0]
        rarity = {i: sum(1 for s in holders if s.holds(i)) for i in candidates}
        return min(candidates, key=lambda i: (rarity[i], self._position[i]))

    def _endgame_for(self, source: _Source, now: float) -> int | None:
        """A chunk a slower provider is still sending, if ``source`` would likely beat it."""
        if source.inflight:
            return None  # only an idle provider doubles up
        best: tuple[float, int] | None = None
        for other in self._sources.values():
            if other is source or not other.active:
                continue
            measured = source.rate_bps is not None and other.rate_bps is not None
            if measured and (other.rate_bps or 0.0) >= (source.rate_bps or 0.0):
                continue
            for index, asked_at in other.inflight.items():
                copies = sum(1 for s in self._sources.values() if index in s.inflight)
                if copies >= 2 or not source.holds(index) or index in self.done:
                    continue
                waited = now - asked_at
                if best is None or waited > best[0]:
                    best = (waited, index)
        return None if best is None else best[1]

    # -- answers -----------------------------------------------------------------------

    def arrived(self, peer: str, index: int, sha256: str, now: float) -> Verdict:
        """Chunk ``index`` came from ``peer`` with this hash: keep it or ban the sender."""
        source = self._sources[peer]
        asked_at = source.inflight.get(index, now)
        if index in source.inflight:
            del source.inflight[index]
            self._drop_request(index)
        if sha256 != self.digests[index]:
            source.banned = True
            return Corrupt(index, self._release(source))
        self._measure(source, index, asked_at, now)
        if index in self.done:
            return Duplicate(index)
        self.done.add(index)
        others = tuple(s.peer for s in self._sources.values() if index in s.inflight)
        for other in others:
            del self._sources[other].inflight[index]
        self._asked.pop(index, None)
        return Accepted(index, others)

    def missing_at(self, peer: str, index: int) -> None:
        """``peer`` does not hold ``index`` after all (or dropped our cancelled request)."""
        source = self._sources.get(peer)
        if source is not None:
            if index in source.inflight:
                del source.inflight[index]
                self._drop_request(index)
            if source.have is not None:
                source.have.discard(index)

    def _measure(self, source: _Source, index: int, asked_at: float, now: float) -> None:
        size = self.lengths[index]
        began = max(asked_at, source.last_arrival or asked_at)
        elapsed = max(now - began, 1e-6)
        sample = size / elapsed
        source.rate_bps = (
            sample
            if source.rate_bps is None
            else (1 - _RATE_WEIGHT) * source.rate_bps + _RATE_WEIGHT * sample
        )
        source.last_arrival = now
        source.bytes += size
        source.chunks += 1

    # -- reports -----------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.done.complete

    @property
    def stuck(self) -> bool:
        """Chunks are missing and no active provider holds any of them."""
        holders = [s for s in self._sources.values() if s.active]
        return not self.complete and not any(
            s.holds(i) for s in holders for i in self.done.missing()
        )

    def done_bytes(self) -> int:
        return sum(self.lengths[i] for i in self.done)

    def sources(self) -> list[SourceView]:
        return [
            SourceView(
                s.peer,
                s.bytes,
                s.chunks,
                s.rate_bps,
                len(s.inflight),
                "banned" if s.banned else "gone" if s.gone else "active",
            )
            for s in self._sources.values()
        ]
