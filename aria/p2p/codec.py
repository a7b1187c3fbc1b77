"""Framing and message decoding shared by ARIA's stream protocols (sans-I/O).

Wire format: each message is one frame, a 4-byte big-endian length followed by that
many bytes of UTF-8 JSON holding an object with a ``type`` tag. Every writer ends its
side of an exchange with the frame ``{"type": "end"}``: py-libp2p reports a peer reset
as a clean EOF on ``read(n)``, so only the explicit marker proves a response is complete.

Decoders raise ``CodecError`` (with a ``Violation`` kind the peer guard scores) and
nothing else, whatever the bytes; ``tests/p2p`` fuzzes that promise with hypothesis.
"""

from __future__ import annotations

import json
import struct
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

__all__ = [
    "CodecError",
    "End",
    "FrameDecoder",
    "MessageDecoder",
    "Violation",
    "WireModel",
    "encode_frame",
    "encode_message",
]

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size


class Violation(StrEnum):
    """What a peer did wrong; the peer guard turns each kind into a penalty."""

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    TRUNCATED = "truncated"
    UNKNOWN_MESSAGE = "unknown_message"


class CodecError(Exception):
    """Bytes from a peer that ARIA refuses; the stream must be reset."""

    def __init__(self, violation: Violation, detail: str) -> None:
        super().__init__(f"{violation.value}: {detail}")
        self.violation = violation
        self.detail = detail


class WireModel(BaseModel):
    """Base of every ARIA message: immutable, no unknown fields, tagged by ``type``."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class End(WireModel):
    """End-of-response marker: the writer has nothing more to say on this stream."""

    type: Literal["end"] = "end"


def encode_frame(payload: bytes, max_size: int) -> bytes:
    """Length-prefix ``payload``.

    Raises:
        ValueError: ``payload`` exceeds ``max_size`` (a local bug, not a peer's fault).
    """
    if len(payload) > max_size:
        raise ValueError(f"frame of {len(payload)} bytes exceeds the {max_size}-byte limit")
    return _HEADER.pack(len(payload)) + payload


def encode_message(message: WireModel, max_size: int) -> bytes:
    payload = json.dumps(
        message.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    return encode_frame(payload, max_size)


class FrameDecoder:
    """Splits a byte stream into frames no larger than ``max_size``."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every frame now complete.

        Raises:
            CodecError: a frame header announces more than ``max_size`` bytes.
        """
        self._buffer.extend(data)
        frames: list[bytes] = []
        while len(self._buffer) >= HEADER_SIZE:
            (length,) = _HEADER.unpack_from(self._buffer)
            if length > self.max_size:
                raise CodecError(
                    Violation.OVERSIZED, f"frame of {length} bytes exceeds {self.max_size}"
                )
            if len(self._buffer) < HEADER_SIZE + length:
                break
            frames.append(bytes(self._buffer[HEADER_SIZE : HEADER_SIZE + length]))
            del self._buffer[: HEADER_SIZE + length]
        return frames

    def close(self) -> None:
        """The peer closed its side.

        Raises:
            CodecError: a partial frame was left over (the stream was cut).
        """
        if self._buffer:
            raise CodecError(
                Violation.TRUNCATED, f"stream ended inside a frame ({len(self._buffer)} bytes)"
            )


M = TypeVar("M")


class MessageDecoder(Generic[M]):
    """Frames → typed messages of one protocol (a pydantic union tagged by ``type``)."""

    def __init__(self, adapter: TypeAdapter[M], known_types: frozenset[str], max_size: int):
        self._adapter = adapter
        self._known = known_types
        self._frames = FrameDecoder(max_size)

    def feed(self, data: bytes) -> list[M]:
        """Raises: CodecError for any frame that is not a valid message of this protocol."""
        return [self.parse(frame) for frame in self._frames.feed(data)]

    def close(self) -> None:
        self._frames.close()

    def parse(self, frame: bytes) -> M:
        """Decode one frame's payload.

        Raises:
            CodecError: invalid UTF-8/JSON, not an object, unknown ``type``, bad fields.
        """
        try:
            obj: Any = json.loads(frame.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CodecError(Violation.MALFORMED, f"not UTF-8 JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise CodecError(Violation.MALFORMED, "a message must be a JSON object")
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in self._known:
            raise CodecError(Violation.UNKNOWN_MESSAGE, f"unknown message type {kind!r}")
        try:
            return self._adapter.validate_python(obj)
        except (ValidationError, RecursionError) as exc:
            raise CodecError(Violation.MALFORMED, f"invalid {kind!r} message: {exc}") from None
