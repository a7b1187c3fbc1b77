"""The chunk bitmap: set semantics, the wire form, and refusing bitmaps that lie."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aria.library.bitmap import Bitmap, BitmapError


def test_adding_and_reading_back() -> None:
    bitmap = Bitmap(10, [0, 3, 9])
    assert [i for i in bitmap] == [0, 3, 9] and len(bitmap) == 3
    assert bitmap.add(3) is False and bitmap.add(4) is True
    assert list(bitmap.missing()) == [1, 2, 5, 6, 7, 8]
    bitmap.discard(0)
    assert bitmap.prefix() == 0 and 0 not in bitmap
    assert Bitmap.full(5).complete and Bitmap.full(5).prefix() == 5
    with pytest.raises(IndexError):
        bitmap.add(10)
    assert "x" not in bitmap and -1 not in bitmap


@given(st.integers(min_value=1, max_value=300), st.data())
def test_hex_round_trip(count: int, data: st.DataObject) -> None:
    held = data.draw(st.sets(st.integers(min_value=0, max_value=count - 1)))
    bitmap = Bitmap(count, held)
    again = Bitmap.from_hex(bitmap.to_hex(), count)
    assert again == bitmap and set(again) == held and len(again) == len(held)


@pytest.mark.parametrize(
    ("text", "count"),
    [("zz", 8), ("ff", 9), ("ffff", 8), ("01", 7), ("f", 4), ("ff", 7)],
)
def test_a_bitmap_that_does_not_fit_the_file_is_refused(text: str, count: int) -> None:
    with pytest.raises(BitmapError):
        Bitmap.from_hex(text, count)
