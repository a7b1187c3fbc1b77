"""Both ends of one library stream as sans-I/O machines (bytes and ``now`` in, events out).

One stream carries one file between one fetcher and one provider::

    fetcher                                   provider
    want {sha256}                  -->
                                   <--   offer {manifest, have}  |  reject {reason}, end
    get {i}, get {j}, ...          -->   (at most max_requests outstanding)
                                   <--   D frames of chunk i, then of chunk j ...
                                   <--   missing {k}   (a chunk it does not hold)
                                   <--   have {indices} (a provider still fetching gained some)
    cancel {k}                     -->   (no longer needed; skipped unless already sent)
    end                            -->
                                   <--   end   (or error {reason}, end at any time)

Transitions:
  fetcher:  OPENING -offer-> OFFERED -accept()-> TRANSFER -close()-> CLOSING -end-> DONE
  provider: AWAITING -want-> DECIDING -offer()-> SERVING -end-> DONE   (refuse(): DONE)
  either:   a violation, EOF before ``end`` or a timeout -> FAILED

The fetcher's machine reassembles each chunk from its pieces (in order, one chunk at a
time, only chunks it asked for, never more bytes than the manifest says) and hashes it as
it arrives; *whether* the chunk is good is the planner's decision (:mod:`.planner`). The
provider's machine queues requests (never more than ``max_requests``) and answers them
one by one when its owner hands it a chunk's bytes; its deadline is "now" while a request
waits, so the driver wakes its owner even when the fetcher sends nothing.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from enum import Enum, auto

from aria.library.wire import (
    Cancel,
    Failed,
    FrameReader,
    Get,
    Have,
    Missing,
    Offer,
    Piece,
    Reason,
    Reject,
    Want,
    encode_message,
    encode_piece,
    fetcher_messages,
    provider_messages,
)
from aria.p2p.codec import CodecError, End, Violation, WireModel
from aria.p2p.records import SignedEnvelope
from aria.p2p.spec import LibrarySpec

__all__ = [
    "Broken",
    "ChunkArrived",
    "ChunkMissing",
    "Closed",
    "Cut",
    "FetchEvent",
    "FetchMachine",
    "FetcherDone",
    "Gained",
    "Offered",
    "ProviderFailed",
    "Ready",
    "Refused",
    "Requested",
    "ServeEvent",
    "ServeMachine",
    "Stalled",
    "Tick",
    "Wanted",
]


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offered:
    manifest: SignedEnvelope
    have: str  # hex bitmap, "" = every chunk


@dataclass(frozen=True)
class Refused:
    reason: Reason
    message: str


@dataclass(frozen=True)
class ChunkArrived:
    index: int
    data: bytes
    sha256: str


@dataclass(frozen=True)
class ChunkMissing:
    index: int


@dataclass(frozen=True)
class Gained:
    indices: tuple[int, ...]


@dataclass(frozen=True)
class ProviderFailed:
    reason: Reason
    message: str


@dataclass(frozen=True)
class Broken:
    """The other side broke the protocol (a guard violation)."""

    violation: Violation
    detail: str


@dataclass(frozen=True)
class Cut:
    """The stream ended before the other side's ``end``."""

    detail: str


@dataclass(frozen=True)
class Stalled:
    """Nothing arrived in time: ``waiting`` names what was outstanding."""

    waiting: tuple[int, ...]
    detail: str


@dataclass(frozen=True)
class Tick:
    """The owner's wake-up time came (see ``wake_at``)."""


@dataclass(frozen=True)
class Closed:
    """The exchange ended cleanly."""


FetchEvent = (
    Offered
    | Refused
    | ChunkArrived
    | ChunkMissing
    | Gained
    | ProviderFailed
    | Broken
    | Cut
    | Stalled
    | Tick
    | Closed
)


@dataclass(frozen=True)
class Wanted:
    sha256: str


@dataclass(frozen=True)
class Requested:
    index: int


@dataclass(frozen=True)
class Ready:
    """A request waits for its chunk (``next_request`` says which)."""


@dataclass(frozen=True)
class FetcherDone:
    """The fetcher sent ``end``."""


ServeEvent = Wanted | Requested | Ready | FetcherDone | Broken | Cut | Stalled | Tick


class _State(Enum):
    OPENING = auto()
    OFFERED = auto()
    TRANSFER = auto()
    CLOSING = auto()
    AWAITING = auto()
    DECIDING = auto()
    SERVING = auto()
    DONE = auto()
    FAILED = auto()


_FINAL = (_State.DONE, _State.FAILED)


class _Machine:
    """What both ends share: outbox, framing, state, the owner's wake-up."""

    def __init__(self, spec: LibrarySpec, state: _State) -> None:
        self._spec = spec
        self._state = state
        self._outbox = bytearray()
        self._reader = FrameReader(spec.message_frame, spec.piece_size)
        self._wake: float | None = None

    @property
    def done(self) -> bool:
        return self._state in _FINAL

    @property
    def failed(self) -> bool:
        """Ended by a violation, a cut stream or a timeout (not by ``end``)."""
        return self._state is _State.FAILED

    def data_to_send(self) -> bytes:
        data, self._outbox = bytes(self._outbox), bytearray()
        return data

    def wake_at(self, when: float | None) -> None:
        """Ask for a ``Tick`` at ``when`` (None: no wake-up)."""
        self._wake = when

    def _send(self, message: WireModel) -> None:
        self._outbox += encode_message(message, self._spec.message_frame)

    def _fail(self, violation: Violation, detail: str) -> Broken:
        self._state = _State.FAILED
        return Broken(violation, detail)

    def _tick(self, now: float) -> list[Tick]:
        if self._wake is not None and now >= self._wake:
            self._wake = None
            return [Tick()]
        return []


# -- the fetcher's end ------------------------------------------------------------------------


class FetchMachine(_Machine):
    """The fetcher's side of one stream to one provider."""

    def __init__(self, sha256: str, spec: LibrarySpec) -> None:
        super().__init__(spec, _State.OPENING)
        self._sha256 = sha256
        self._messages = provider_messages(spec.message_frame)
        self._spans: list[int] = []  # chunk lengths, once accepted
        self._outstanding: deque[int] = deque()
        self._assembling: tuple[int, bytearray, hashlib._Hash] | None = None
        self._timer_base = 0.0  # start, last progress or close time

    @property
    def outstanding(self) -> tuple[int, ...]:
        return tuple(self._outstanding)

    @property
    def deadline(self) -> float | None:
        spec = self._spec
        candidates = [self._wake] if self._wake is not None else []
        if self._state in (_State.OPENING, _State.CLOSING):
            candidates.append(self._timer_base + spec.offer_timeout_s)
        elif self._state is _State.TRANSFER and self._outstanding:
            candidates.append(self._timer_base + spec.stall_timeout_s)
        return min(candidates) if candidates else None

    def start(self, now: float) -> None:
        self._timer_base = now
        self._send(Want(sha256=self._sha256))

    def accept(self, chunk_lengths: list[int], now: float) -> None:
        """The offered manifest is the one to fetch with; ``chunk_lengths`` are its chunks'."""
        if self._state is _State.OFFERED:
            self._spans = list(chunk_lengths)
            self._state = _State.TRANSFER
            self._timer_base = now

    def request(self, index: int, now: float) -> None:
        """Ask for chunk ``index`` (the planner respects ``max_requests``)."""
        if self._state is not _State.TRANSFER:
            return
        if not self._outstanding:
            self._timer_base = now
        self._outstanding.append(index)
        self._send(Get(index=index))

    def cancel(self, index: int) -> None:
        if self._state is _State.TRANSFER and index in self._outstanding:
            self._send(Cancel(index=index))

    def abandon(self) -> None:
        """Stop at once (a banned provider): the driver ends and the stream is reset."""
        self._state = _State.FAILED

    def close(self, now: float) -> None:
        """Say ``end`` and wait (briefly) for the provider's."""
        if self._state in _FINAL or self._state is _State.CLOSING:
            return
        self._send(End())
        self._state = _State.CLOSING
        self._timer_base = now

    def receive_data(self, data: bytes, now: float) -> list[FetchEvent]:
        if self.done:
            return []
        try:
            frames = self._reader.feed(data)
        except CodecError as exc:
            return [self._fail(exc.violation, exc.detail)]
        events: list[FetchEvent] = []
        for frame in frames:
            if isinstance(frame, Piece):
                events.extend(self._on_piece(frame, now))
            else:
                try:
                    message = self._messages.parse(frame)
                except CodecError as exc:
                    events.append(self._fail(exc.violation, exc.detail))
                else:
                    events.extend(self._on_message(message, now))
            if self.done:
                break
        return events

    def receive_eof(self, now: float) -> list[FetchEvent]:
        if self.done:
            return []
        self._state = _State.FAILED
        return [Cut("the provider's stream ended before its end")]

    def handle_timer(self, now: float) -> list[FetchEvent]:
        if self.done:
            return []
        spec = self._spec
        if self._state is _State.OPENING and now >= self._timer_base + spec.offer_timeout_s:
            self._state = _State.FAILED
            return [Stalled((), "no offer in time")]
        if self._state is _State.CLOSING and now >= self._timer_base + spec.offer_timeout_s:
            self._state = _State.DONE
            return [Closed()]
        if (
            self._state is _State.TRANSFER
            and self._outstanding
            and now >= self._timer_base + spec.stall_timeout_s
        ):
            self._state = _State.FAILED
            return [Stalled(self.outstanding, "a requested chunk made no progress in time")]
        return list(self._tick(now))

    # -- transitions ---------------------------------------------------------------------

    def _on_message(self, message: object, now: float) -> list[FetchEvent]:
        state = self._state
        if isinstance(message, Offer) and state is _State.OPENING:
            self._state = _State.OFFERED
            return [Offered(message.manifest, message.have)]
        if isinstance(message, Reject) and state is _State.OPENING:
            self._state = _State.FAILED
            return [Refused(message.reason, message.message)]
        if isinstance(message, Failed):
            self._state = _State.FAILED
            return [ProviderFailed(message.reason, message.message)]
        if isinstance(message, End) and state is _State.CLOSING:
            self._state = _State.DONE
            return [Closed()]
        if isinstance(message, Have) and state in (_State.OFFERED, _State.TRANSFER, _State.CLOSING):
            return [Gained(message.indices)]
        if isinstance(message, Missing) and state in (_State.TRANSFER, _State.CLOSING):
            return self._on_missing(message.index, now)
        kind = getattr(message, "type", "?")
        return [self._fail(Violation.UNKNOWN_MESSAGE, f"{kind!r} in state {state.name}")]

    def _on_missing(self, index: int, now: float) -> list[FetchEvent]:
        if index not in self._outstanding or (
            self._assembling is not None and self._assembling[0] == index
        ):
            return [self._fail(Violation.MALFORMED, f"missing {index} was not asked for")]
        self._outstanding.remove(index)
        self._timer_base = now
        return [ChunkMissing(index)]

    def _on_piece(self, piece: Piece, now: float) -> list[FetchEvent]:
        if self._state not in (_State.TRANSFER, _State.CLOSING):
            return [self._fail(Violation.UNKNOWN_MESSAGE, "chunk data before an accepted offer")]
        if self._assembling is None:
            if piece.index not in self._outstanding or piece.offset != 0:
                return [self._fail(Violation.MALFORMED, f"chunk {piece.index} was not asked for")]
            self._assembling = (piece.index, bytearray(), hashlib.sha256())
        index, buffer, hasher = self._assembling
        if piece.index != index or piece.offset != len(buffer):
            return [self._fail(Violation.MALFORMED, f"chunk {index} arrived out of order")]
        if len(buffer) + len(piece.data) > self._spans[index]:
            return [self._fail(Violation.OVERSIZED, f"chunk {index} is longer than its manifest")]
        buffer += piece.data
        hasher.update(piece.data)
        self._timer_base = now
        if len(buffer) < self._spans[index]:
            return []
        self._assembling = None
        self._outstanding.remove(index)
        return [ChunkArrived(index, bytes(buffer), hasher.hexdigest())]


# -- the provider's end --------------------------------------------------------------------


class ServeMachine(_Machine):
    """The provider's side of one stream to one fetcher."""

    def __init__(self, spec: LibrarySpec) -> None:
        super().__init__(spec, _State.AWAITING)
        self._messages = fetcher_messages(spec.message_frame)
        self._requests: deque[int] = deque()
        self._chunks = 0
        self._started = 0.0  # also "now" for the deadline while a request waits

    @property
    def deadline(self) -> float | None:
        if self._state is _State.AWAITING:
            return self._started + self._spec.offer_timeout_s
        if self._state is _State.SERVING and self._requests:
            return self._started  # now: a request waits for its chunk
        return self._wake

    def start(self, now: float) -> None:
        self._started = now

    def offer(self, manifest: SignedEnvelope, chunks: int, have: str) -> None:
        """Answer the ``want`` with this file's manifest (``have``: "" = every chunk)."""
        if self._state is _State.DECIDING:
            self._chunks = chunks
            self._send(Offer(manifest=manifest, have=have))
            self._state = _State.SERVING

    def refuse(self, reason: Reason, message: str) -> None:
        if not self.done:
            self._send(Reject(reason=reason, message=message[:512]))
            self._send(End())
            self._state = _State.DONE

    def fail(self, reason: Reason, message: str) -> None:
        """Stop serving (consent withdrawn, quota spent, file gone)."""
        if not self.done:
            self._send(Failed(reason=reason, message=message[:512]))
            self._send(End())
            self._state = _State.DONE

    def next_request(self) -> int | None:
        """The oldest chunk asked for and not yet answered (taken off the queue)."""
        if self._state is not _State.SERVING or not self._requests:
            return None
        return self._requests.popleft()

    def send_chunk(self, index: int, data: bytes | memoryview) -> None:
        view = memoryview(data)
        piece = self._spec.piece_size
        for offset in range(0, max(len(view), 1), piece):
            self._outbox += encode_piece(index, offset, view[offset : offset + piece])

    def send_missing(self, index: int) -> None:
        self._send(Missing(index=index))

    def announce(self, indices: tuple[int, ...]) -> None:
        for start in range(0, len(indices), 4096):
            self._send(Have(indices=indices[start : start + 4096]))

    def receive_data(self, data: bytes, now: float) -> list[ServeEvent]:
        if self.done:
            return []
        try:
            frames = self._reader.feed(data)
        except CodecError as exc:
            return [self._fail(exc.violation, exc.detail)]
        events: list[ServeEvent] = []
        for frame in frames:
            if isinstance(frame, Piece):
                events.append(self._fail(Violation.UNKNOWN_MESSAGE, "a fetcher sent chunk data"))
                break
            try:
                message = self._messages.parse(frame)
            except CodecError as exc:
                events.append(self._fail(exc.violation, exc.detail))
                break
            events.extend(self._on_message(message))
            if self.done:
                break
        return events

    def receive_eof(self, now: float) -> list[ServeEvent]:
        if self.done:
            return []
        self._state = _State.FAILED
        return [Cut("the fetcher's stream ended before its end")]

    def handle_timer(self, now: float) -> list[ServeEvent]:
        if self.done:
            return []
        if self._state is _State.AWAITING and now >= self._started + self._spec.offer_timeout_s:
            self._state = _State.FAILED
            return [Stalled((), "no request in time")]
        if self._state is _State.SERVING and self._requests:
            return [Ready()]
        return list(self._tick(now))

    def _on_message(self, message: object) -> list[ServeEvent]:
        state = self._state
        if isinstance(message, Want) and state is _State.AWAITING:
            self._state = _State.DECIDING
            return [Wanted(message.sha256)]
        if isinstance(message, End) and state in (_State.SERVING, _State.DECIDING):
            self._send(End())
            self._state = _State.DONE
            return [FetcherDone()]
        if state is _State.SERVING and isinstance(message, Get):
            if message.index >= self._chunks:
                return [self._fail(Violation.MALFORMED, f"chunk {message.index} does not exist")]
            if len(self._requests) >= self._spec.max_requests:
                return [self._fail(Violation.OVERSIZED, "too many chunk requests outstanding")]
            self._requests.append(message.index)
            return [Requested(message.index)]
        if state is _State.SERVING and isinstance(message, Cancel):
            if message.index in self._requests:
                self._requests.remove(message.index)
                self.send_missing(message.index)
            return []
        kind = getattr(message, "type", "?")
        return [self._fail(Violation.UNKNOWN_MESSAGE, f"{kind!r} in state {state.name}")]
