"""Turn generated token bytes into text to stream, honouring stop sequences (pure).

Tokens can end in the middle of a UTF-8 character and a stop sequence can span
tokens, so text is released only once it can neither be an incomplete character
nor the beginning of a stop sequence. The stop sequence itself is never emitted.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence

__all__ = ["TextAssembler"]


class TextAssembler:
    """Feed token bytes, get the text that is safe to show now."""

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = tuple(s for s in stops if s)
        self._pending = ""
        self.stopped = False

    def feed(self, data: bytes) -> str:
        """Add one token's bytes; returns releasable text (sets ``stopped`` on a stop sequence)."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(data)
        if not self._stops:
            text, self._pending = self._pending, ""
            return text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            text, self._pending = self._pending[: min(hits)], ""
            return text
        keep = self._partial_stop_suffix()
        cut = len(self._pending) - keep
        text, self._pending = self._pending[:cut], self._pending[cut:]
        return text

    def flush(self) -> str:
        """End of generation: release what was held back (no stop sequence completed)."""
        if self.stopped:
            return ""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return text

    def _partial_stop_suffix(self) -> int:
        """Length of the longest tail of the pending text that starts some stop sequence."""
        best = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(stop[:size]):
                    best = size
                    break
        return best
