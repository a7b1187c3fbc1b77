"""Which chunks of a file are held: a fixed-size set of chunk indices (pure).

Used for a fetch's verified chunks (what resume keeps), a provider's chunks (what it
can serve: a node still fetching a file serves the chunks it verified), and on the wire
as lower-case hex, most significant bit of the first byte = chunk 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Bitmap", "BitmapError"]


class BitmapError(ValueError):
    """A hex bitmap that does not describe ``count`` chunks."""


class Bitmap:
    """A mutable set of chunk indices in ``range(count)``."""

    __slots__ = ("_bits", "_held", "count")

    def __init__(self, count: int, held: Iterable[int] = ()) -> None:
        if count < 0:
            raise ValueError("a bitmap counts zero or more chunks")
        self.count = count
        self._bits = bytearray((count + 7) // 8)
        self._held = 0
        for index in held:
            self.add(index)

    @classmethod
    def full(cls, count: int) -> Bitmap:
        return cls(count, range(count))

    @classmethod
    def from_hex(cls, text: str, count: int) -> Bitmap:
        """Parse the wire form.

        Raises:
            BitmapError: wrong length, not hex, or bits set beyond ``count``.
        """
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise BitmapError("a bitmap must be hex digits") from None
        if len(raw) != (count + 7) // 8 or len(text) != 2 * len(raw):
            raise BitmapError(f"a bitmap of {count} chunks is {(count + 7) // 8} bytes")
        bitmap = cls(count)
        bitmap._bits[:] = raw
        spare = len(raw) * 8 - count
        if spare and raw[-1] & ((1 << spare) - 1):
            raise BitmapError("the bitmap marks chunks beyond the end of the file")
        bitmap._held = sum(bin(byte).count("1") for byte in raw)
        return bitmap

    def to_hex(self) -> str:
        return self._bits.hex()

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self.count:
            return False
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def add(self, index: int) -> bool:
        """Mark ``index`` held; True when it was not before.

        Raises:
            IndexError: ``index`` is not a chunk of this file.
        """
        if not 0 <= index < self.count:
            raise IndexError(f"chunk {index} is not in 0..{self.count - 1}")
        mask = 0x80 >> (index & 7)
        if self._bits[index >> 3] & mask:
            return False
        self._bits[index >> 3] |= mask
        self._held += 1
        return True

    def discard(self, index: int) -> None:
        if index in self:
            self._bits[index >> 3] &= ~(0x80 >> (index & 7)) & 0xFF
            self._held -= 1

    def __len__(self) -> int:
        """How many chunks are held."""
        return self._held

    @property
    def complete(self) -> bool:
        return self._held == self.count

    def __iter__(self) -> Iterator[int]:
        return (i for i in range(self.count) if i in self)

    def missing(self) -> Iterator[int]:
        return (i for i in range(self.count) if i not in self)

    def prefix(self) -> int:
        """How many chunks from chunk 0 are held without a gap."""
        for index in range(self.count):
            if index not in self:
                return index
        return self.count

    def copy(self) -> Bitmap:
        other = Bitmap(self.count)
        other._bits[:] = self._bits
        other._held = self._held
        return other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bitmap) and (self.count, self._bits) == (other.count, other._bits)

    def __repr__(self) -> str:
        return f"Bitmap({self._held}/{self.count})"
