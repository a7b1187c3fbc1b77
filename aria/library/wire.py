"""The library protocol's frames and messages (``/aria/library/1.0.0``; pure).

Chunks are binary, so this protocol adds a one-byte kind to ARIA's length-prefixed
framing (:mod:`aria.p2p.codec`)::

    'M' | u32 length | UTF-8 JSON message (a ``type``-tagged object, at most message_frame)
    'D' | u32 length | u32 chunk index | u32 offset in the chunk | bytes (at most piece_size)

A chunk travels as consecutive ``D`` frames of one chunk, so every write stays within
256 KiB (py-libp2p's yamux broke under larger concurrent messages). Messages:

    fetcher  -> provider   want {sha256}, get {index}, cancel {index}, end
    provider -> fetcher    offer {manifest, have}, reject {reason, message},
                           missing {index}, have {indices}, error {reason, message}, end

Decoders raise :class:`~aria.p2p.codec.CodecError` (a peer-guard violation) and nothing
else, whatever the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, TypeAdapter

from aria.consent import Reason as ConsentReason
from aria.p2p.codec import CodecError, End, MessageDecoder, Violation, WireModel
from aria.p2p.records import SignedEnvelope

__all__ = [
    "Cancel",
    "Failed",
    "FetcherMessage",
    "FrameReader",
    "Get",
    "Have",
    "Missing",
    "Offer",
    "Piece",
    "ProviderMessage",
    "Reason",
    "Reject",
    "Want",
    "encode_message",
    "encode_piece",
    "fetcher_messages",
    "provider_messages",
]

_HEADER = struct.Struct(">cI")
_PIECE = struct.Struct(">II")
_MESSAGE = b"M"
_DATA = b"D"

# the consent contract's reasons (aria.consent.evaluate; "busy" also for
# library_max_uploads), then the file's, the peer's daily quota's and the stream's
Reason = Literal[ConsentReason, "not_shared", "quota", "bad_request", "failed"]
_MAX_INDEX = 2**31


class Want(WireModel):
    type: Literal["want"] = "want"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Get(WireModel):
    type: Literal["get"] = "get"
    index: int = Field(ge=0, lt=_MAX_INDEX)


class Cancel(WireModel):
    type: Literal["cancel"] = "cancel"
    index: int = Field(ge=0, lt=_MAX_INDEX)


class Offer(WireModel):
    type: Literal["offer"] = "offer"
    manifest: SignedEnvelope
    have: str = Field(default="", max_length=8192)  # hex bitmap; "" = every chunk


class Reject(WireModel):
    type: Literal["reject"] = "reject"
    reason: Reason
    message: str = Field(max_length=512)


class Missing(WireModel):
    type: Literal["missing"] = "missing"
    index: int = Field(ge=0, lt=_MAX_INDEX)


class Have(WireModel):
    type: Literal["have"] = "have"
    indices: tuple[int, ...] = Field(max_length=4096)


class Failed(WireModel):
    type: Literal["error"] = "error"
    reason: Reason
    message: str = Field(max_length=512)


FetcherMessage = Want | Get | Cancel | End
ProviderMessage = Offer | Reject | Missing | Have | Failed | End

_FETCHER: TypeAdapter[FetcherMessage] = TypeAdapter(FetcherMessage)
_PROVIDER: TypeAdapter[ProviderMessage] = TypeAdapter(ProviderMessage)


def fetcher_messages(max_size: int) -> MessageDecoder[FetcherMessage]:
    """Parses what a fetcher may send (the provider's side)."""
    return MessageDecoder(_FETCHER, frozenset({"want", "get", "cancel", "end"}), max_size)


def provider_messages(max_size: int) -> MessageDecoder[ProviderMessage]:
    """Parses what a provider may send (the fetcher's side)."""
    kinds = frozenset({"offer", "reject", "missing", "have", "error", "end"})
    return MessageDecoder(_PROVIDER, kinds, max_size)


@dataclass(frozen=True)
class Piece:
    """Part of one chunk: ``data`` starts ``offset`` bytes into chunk ``index``."""

    index: int
    offset: int
    data: bytes


def encode_message(message: WireModel, max_size: int) -> bytes:
    """Raises: ValueError when the message exceeds ``max_size`` (a local bug)."""
    payload = message.model_dump_json().encode("utf-8")
    if len(payload) > max_size:
        name = type(message).__name__
        raise ValueError(f"a {name} message of {len(payload)} bytes exceeds {max_size}")
    return _HEADER.pack(_MESSAGE, len(payload)) + payload


def encode_piece(index: int, offset: int, data: bytes | memoryview) -> bytes:
    return _HEADER.pack(_DATA, _PIECE.size + len(data)) + _PIECE.pack(index, offset) + data


class FrameReader:
    """Splits received bytes into messages (still raw JSON) and pieces, within limits."""

    def __init__(self, max_message: int, max_piece: int) -> None:
        self._max_message = max_message
        self._max_piece = max_piece
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | Piece]:
        """Every frame now complete: JSON payloads (bytes) and :class:`Piece` values.

        Raises:
            CodecError: an unknown frame kind, or a frame over its limit.
        """
        self._buffer.extend(data)
        frames: list[bytes | Piece] = []
        while len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            if kind == _MESSAGE:
                limit = self._max_message
            elif kind == _DATA:
                limit = self._max_piece + _PIECE.size
                if length < _PIECE.size:
                    raise CodecError(Violation.MALFORMED, "a data frame without its header")
            else:
                raise CodecError(Violation.MALFORMED, f"unknown frame kind {kind!r}")
            if length > limit:
                raise CodecError(Violation.OVERSIZED, f"frame of {length} bytes exceeds {limit}")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            if kind == _MESSAGE:
                frames.append(body)
            else:
                index, offset = _PIECE.unpack_from(body)
                frames.append(Piece(index, offset, body[_PIECE.size :]))
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)
