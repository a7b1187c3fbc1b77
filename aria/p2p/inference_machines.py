"""Both sides of one ``/aria/inference`` exchange as sans-I/O machines (messages in
:mod:`aria.p2p.inference`), driven by :mod:`aria.p2p.transport.pump`.

Requester, :class:`InferenceCall`::

    start: queue request, end; wait first_chunk_s
    AWAITING -chunk-> Delivered (wait chunk_gap_s from now)   -done-> (keep reading)
             -end-> Finished        -reject/error-> Declined  -bad frame-> Broken
             -EOF-> Cut             -deadline-> Cut

Server, :class:`InferenceService`::

    start: wait request_timeout_s for the request
    READING -request, end-> Requested -> RELAYING          -bad frame/EOF-> Broken
            -deadline-> TimedOut
    RELAYING: refuse(reject) | send(chunk)... finish(error?) -> queued, DONE
              any byte or EOF from the requester -> Left (it never half-closes)

Time is a parameter; nothing here reads a clock or touches a stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from aria.p2p.codec import CodecError, End, Violation, WireModel
from aria.p2p.inference import Chunk, Done, Failed, Reject, Request, decoder, encode

__all__ = [
    "Broken",
    "CallEvent",
    "Cut",
    "Declined",
    "Delivered",
    "Finished",
    "InferenceCall",
    "InferenceService",
    "Left",
    "Requested",
    "ServiceEvent",
    "TimedOut",
]

FIRST_CHUNK_S = 300.0  # model load + prompt processing on a busy peer
CHUNK_GAP_S = 120.0
REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Delivered:
    """One chunk of the answer (an SSE ``data`` payload of the peer's API)."""

    data: str


@dataclass(frozen=True)
class Finished:
    """The answer is complete (``end`` received after the chunks)."""


@dataclass(frozen=True)
class Declined:
    """The peer refused (``reject``) or failed (``error``); see ``inference.peer_failure``."""

    frame: Reject | Failed


@dataclass(frozen=True)
class Broken:
    """The other side broke the protocol (the guard scores ``violation``)."""

    violation: Violation
    detail: str


@dataclass(frozen=True)
class Cut:
    """The exchange ended without ``end``: the peer hung up or fell silent."""

    detail: str


CallEvent = Delivered | Finished | Declined | Broken | Cut


class _Side:
    """The outbox and the done flag both sides share."""

    def __init__(self) -> None:
        self._outbox = bytearray()
        self._messages = decoder()
        self.deadline: float | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def data_to_send(self) -> bytes:
        data, self._outbox = bytes(self._outbox), bytearray()
        return data

    def _send(self, *messages: WireModel) -> None:
        for message in messages:
            self._outbox.extend(encode(message))

    def _end(self) -> None:
        self._done, self.deadline = True, None


class InferenceCall(_Side):
    """The requester's side: send one request, read its answer."""

    def __init__(
        self,
        request: Request,
        *,
        first_chunk_s: float = FIRST_CHUNK_S,
        chunk_gap_s: float = CHUNK_GAP_S,
    ) -> None:
        super().__init__()
        self._request = request
        self._first_chunk_s = first_chunk_s
        self._chunk_gap_s = chunk_gap_s
        self._waiting_s = first_chunk_s

    def start(self, now: float) -> None:
        self._send(self._request, End())
        self.deadline = now + self._first_chunk_s

    def receive_data(self, data: bytes, now: float) -> list[CallEvent]:
        if self.done:
            return []
        try:
            messages = self._messages.feed(data)
        except CodecError as exc:
            self._end()
            return [Broken(exc.violation, exc.detail)]
        events: list[CallEvent] = []
        for message in messages:
            if isinstance(message, Chunk):
                self._waiting_s = self._chunk_gap_s
                self.deadline = now + self._chunk_gap_s
                events.append(Delivered(message.data))
            elif isinstance(message, Reject | Failed):
                self._end()
                return [*events, Declined(message)]
            elif isinstance(message, End):
                self._end()
                return [*events, Finished()]
            elif not isinstance(message, Done):
                self._end()
                return [*events, Broken(Violation.UNKNOWN_MESSAGE, f"unexpected {message.type!r}")]
        return events

    def receive_eof(self, now: float) -> list[CallEvent]:
        if self.done:
            return []
        self._end()
        return [Cut("hung up before finishing its answer")]

    def handle_timer(self, now: float) -> list[CallEvent]:
        if self.done or self.deadline is None or now < self.deadline:
            return []
        self._end()
        return [Cut(f"sent nothing for {self._waiting_s:.0f} s")]


@dataclass(frozen=True)
class Requested:
    """The request arrived whole (its ``end`` too): decide, then answer."""

    request: Request


@dataclass(frozen=True)
class TimedOut:
    """No complete request within the time allowed."""


@dataclass(frozen=True)
class Left:
    """The requester sent something or went away while answered: stop the job."""


ServiceEvent = Requested | Broken | TimedOut | Left


class _Phase(Enum):
    READING = auto()
    RELAYING = auto()


class InferenceService(_Side):
    """The server's side: read one request, then answer it (or refuse it)."""

    def __init__(self, *, request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__()
        self._timeout_s = request_timeout_s
        self._phase = _Phase.READING
        self._request: Request | None = None

    def start(self, now: float) -> None:
        self.deadline = now + self._timeout_s

    def receive_data(self, data: bytes, now: float) -> list[ServiceEvent]:
        if self.done:
            return []
        if self._phase is _Phase.RELAYING:
            return [Left()]
        try:
            messages = self._messages.feed(data)
        except CodecError as exc:
            self._end()
            return [Broken(exc.violation, exc.detail)]
        for message in messages:
            if self._request is None and isinstance(message, Request):
                self._request = message
            elif self._request is not None and isinstance(message, End):
                self._phase, self.deadline = _Phase.RELAYING, None
                return [Requested(self._request)]
            else:
                self._end()
                return [Broken(Violation.UNKNOWN_MESSAGE, f"unexpected {message.type!r}")]
        return []

    def receive_eof(self, now: float) -> list[ServiceEvent]:
        if self.done:
            return []
        if self._phase is _Phase.RELAYING:
            return [Left()]
        self._end()
        return [Broken(Violation.TRUNCATED, "stream ended before the request's end")]

    def handle_timer(self, now: float) -> list[ServiceEvent]:
        if self.done or self.deadline is None or now < self.deadline:
            return []
        self._end()
        return [TimedOut()]

    def refuse(self, reject: Reject) -> None:
        """Answer with ``reject`` and end the exchange."""
        self._send(reject, End())
        self._end()

    def send(self, data: str) -> None:
        """Queue one chunk of the answer."""
        self._send(Chunk(data=data))

    def finish(self, failure: Failed | None = None) -> None:
        """End the answer: ``done`` (or ``failure``), then ``end``."""
        self._send(failure if failure is not None else Done(), End())
        self._end()
