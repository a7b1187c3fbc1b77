"""The RPC tunnel's own frames and the requester's side of them (sans-I/O).

The serving node answers a new ``/aria/rpc-tunnel/1.0.0`` stream with exactly one
frame — ``accept``, or ``reject`` then ``end`` — and after ``accept`` the stream carries
raw ggml-rpc bytes. :class:`TunnelDial` reads that one answer and hands back any byte
that came after it untouched (ggml-rpc's, not ours), driven by
:func:`aria.p2p.transport.pump.pump`::

    start: send nothing, wait timeout_s
    WAITING -accept-> Accepted(rest)    -reject-> Refused    -end-> Closed
            -bad or oversized frame, EOF inside the answer-> Broken   -deadline-> TimedOut
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from pydantic import TypeAdapter

from aria.p2p.codec import CodecError, End, MessageDecoder, Violation, WireModel, encode_message
from aria.p2p.inference import Reject

__all__ = [
    "MAX_ANSWER_FRAME",
    "Accept",
    "Accepted",
    "Broken",
    "Closed",
    "DialEvent",
    "Refused",
    "TimedOut",
    "TunnelDial",
    "answer_decoder",
    "encode_answer",
]

MAX_ANSWER_FRAME = 1024
_HEADER = struct.Struct(">I")


class Accept(WireModel):
    type: Literal["accept"] = "accept"


TunnelAnswer = Accept | Reject | End
_ADAPTER: TypeAdapter[TunnelAnswer] = TypeAdapter(TunnelAnswer)


def answer_decoder() -> MessageDecoder[TunnelAnswer]:
    """Decodes the serving side's one answer frame (``CodecError`` on anything else)."""
    return MessageDecoder(_ADAPTER, frozenset({"accept", "reject", "end"}), MAX_ANSWER_FRAME)


def encode_answer(message: WireModel) -> bytes:
    return encode_message(message, MAX_ANSWER_FRAME)


@dataclass(frozen=True)
class Accepted:
    """The peer accepted; ``rest`` is whatever it sent after the answer (tunnelled bytes)."""

    rest: bytes


@dataclass(frozen=True)
class Refused:
    reject: Reject


@dataclass(frozen=True)
class Closed:
    """The peer ended the stream without accepting or refusing."""


@dataclass(frozen=True)
class Broken:
    violation: Violation
    detail: str


@dataclass(frozen=True)
class TimedOut:
    waited_s: float


DialEvent = Accepted | Refused | Closed | Broken | TimedOut


class TunnelDial:
    """The requester's side of a tunnel stream until the answer is read."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._buffer = bytearray()
        self.deadline: float | None = None
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def start(self, now: float) -> None:
        self.deadline = now + self._timeout_s

    def data_to_send(self) -> bytes:
        return b""  # the requester speaks only after the answer, and then ggml-rpc

    def receive_data(self, data: bytes, now: float) -> list[DialEvent]:
        if self._done:
            return []
        self._buffer.extend(data)
        if len(self._buffer) < _HEADER.size:
            return []
        (length,) = _HEADER.unpack_from(self._buffer)
        if length > MAX_ANSWER_FRAME:
            return self._end(Broken(Violation.OVERSIZED, f"tunnel answer of {length} bytes"))
        end = _HEADER.size + length
        if len(self._buffer) < end:
            return []
        try:
            answer = answer_decoder().parse(bytes(self._buffer[_HEADER.size : end]))
        except CodecError as exc:
            return self._end(Broken(exc.violation, exc.detail))
        if isinstance(answer, Accept):
            return self._end(Accepted(bytes(self._buffer[end:])))
        if isinstance(answer, Reject):
            return self._end(Refused(answer))
        return self._end(Closed())

    def receive_eof(self, now: float) -> list[DialEvent]:
        if self._done:
            return []
        if not self._buffer:
            return self._end(Closed())
        return self._end(Broken(Violation.TRUNCATED, "the tunnel stream ended inside its answer"))

    def handle_timer(self, now: float) -> list[DialEvent]:
        if self._done or self.deadline is None or now < self.deadline:
            return []
        return self._end(TimedOut(self._timeout_s))

    def _end(self, event: DialEvent) -> list[DialEvent]:
        self._done, self.deadline = True, None
        return [event]
