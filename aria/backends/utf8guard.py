"""Keep grammar-constrained output valid UTF-8, one token at a time (pure, numpy).

Models with byte-fallback tokens can emit a UTF-8 lead byte and then a token that is
not a continuation byte. llama.cpp's grammar engine decodes such bytes leniently, so a
grammar for a JSON string can accept bytes that are really a control character,
and the "always parses" promise breaks. The guard tracks how many continuation
bytes the text still owes and masks every token that would not supply exactly those
(and end-of-generation while a character is incomplete).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Utf8Guard"]

_MAX_PENDING = 3


def _is_continuation(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def _classify(piece: bytes) -> tuple[int, bool, int]:
    """(leading continuation bytes, rest is a valid UTF-8 prefix, bytes still owed after it)."""
    lead = 0
    while lead < len(piece) and _is_continuation(piece[lead]):
        lead += 1
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(piece[lead:], final=False)
    except UnicodeDecodeError:
        return lead, False, 0
    buffered = decoder.getstate()[0]
    if not buffered:
        return lead, True, 0
    first = buffered[0]
    size = 2 if first < 0xE0 else 3 if first < 0xF0 else 4
    return lead, True, size - len(buffered)


class Utf8Guard:
    """Per-vocabulary tables; ``blocked(pending)`` masks tokens, ``advance`` tracks state."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        count = len(pieces)
        lead = np.zeros(count, dtype=np.int8)
        valid = np.zeros(count, dtype=bool)
        owed = np.zeros(count, dtype=np.int8)
        only_continuation = np.zeros(count, dtype=bool)
        for token, piece in enumerate(pieces):
            lead[token], valid[token], owed[token] = _classify(piece)
            only_continuation[token] = len(piece) > 0 and lead[token] == len(piece)
        self._lead = lead
        self._owed = owed
        self._only_continuation = only_continuation
        self._blocked: list[npt.NDArray[np.bool_]] = [
            ~((valid & (lead == pending)) | (only_continuation & (lead <= pending) & (pending > 0)))
            for pending in range(_MAX_PENDING + 1)
        ]

    def blocked(self, pending: int) -> npt.NDArray[np.bool_]:
        """Tokens that may not come next when ``pending`` continuation bytes are owed."""
        return self._blocked[min(pending, _MAX_PENDING)]

    def advance(self, pending: int, token: int) -> int:
        """Continuation bytes owed after ``token`` was emitted."""
        if self._only_continuation[token]:
            return max(0, pending - int(self._lead[token]))
        return int(self._owed[token])
