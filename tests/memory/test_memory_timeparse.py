"""Times in what people type, four languages, resolved against a fixed ``now``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aria.memory.timeparse import find_due, find_window

TZ = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 4, 15, 30, tzinfo=TZ)  # a Friday


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("tomorrow at 9", at(5, 9)),
        ("demain à 9h", at(5, 9)),
        ("morgen um 9 Uhr", at(5, 9)),
        ("mañana a las 9", at(5, 9)),
        ("in 10 minutes", at(4, 15, 40)),
        ("dans une demi-heure", at(4, 16)),
        ("in einer halben Stunde", at(4, 16)),
        ("en 2 horas", at(4, 17, 30)),
        ("at 5", at(4, 17)),  # the next 5 o'clock to come
        ("at 9", at(4, 21)),
        ("tonight at 9", at(4, 21)),
        ("at 7am tomorrow", at(5, 7)),
        ("next monday at 14:00", at(7, 14)),
        ("on Friday", at(11, 9)),  # today's weekday: next week's
        ("lundi prochain", at(7, 9)),
        ("el lunes que viene", at(7, 9)),
        ("nächsten Montag um 8:15", at(7, 8, 15)),
        ("le 12 janvier à 10h", at(12, 10, month=1, year=2027)),
        ("am 12. Januar um 10 Uhr", at(12, 10, month=1, year=2027)),
        ("el 2 de febrero", at(2, 9, month=2, year=2027)),
        ("on December 24 at 6pm", at(24, 18)),
        ("24/12 à 18h30", at(24, 18, 30)),
        ("2026-12-24 18:00", at(24, 18)),
        ("at noon", at(5, 12)),
        ("el viernes a las 6 de la tarde", at(11, 18)),
        ("in 3 days", at(7, 15, 30)),
    ],
)
def test_reminder_times_resolve(text: str, due: datetime) -> None:
    found = find_due(text, NOW)
    assert found is not None and found.when == due, text
    assert text[found.span[0] : found.span[1]].strip()


@pytest.mark.parametrize(
    "text", ["the sun is hot", "I have a 9 year old", "What is the capital of France?", "yesterday"]
)
def test_no_future_moment_is_invented(text: str) -> None:
    assert find_due(text, NOW) is None


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("what did we discuss last Tuesday about the garden?", at(1, 0), at(2, 0)),
        ("mardi dernier", at(1, 0), at(2, 0)),
        ("letzten Dienstag", at(1, 0), at(2, 0)),
        ("el martes pasado", at(1, 0), at(2, 0)),
        ("hier soir", at(3, 18), at(4, 0)),
        ("gestern", at(3, 0), at(4, 0)),
        ("ayer", at(3, 0), at(4, 0)),
        ("this morning", at(4, 5), at(4, 12)),
        ("3 days ago", at(1, 0), at(2, 0)),
        ("il y a 3 jours", at(1, 0), at(2, 0)),
        ("vor 2 Tagen", at(2, 0), at(3, 0)),
        ("hace 2 días", at(2, 0), at(3, 0)),
        ("last week", at(23, 0, month=11), at(30, 0, month=11)),
        ("la semana pasada", at(23, 0, month=11), at(30, 0, month=11)),
        ("on December 1", at(1, 0), at(2, 0)),
    ],
)
def test_question_periods_resolve(text: str, start: datetime, end: datetime) -> None:
    window = find_window(text, NOW)
    assert window is not None and (window.start, window.end) == (start, end), text


def test_a_question_without_a_period_has_no_window() -> None:
    assert find_window("Where does my sister live?", NOW) is None
    assert find_window("next Monday", NOW) is None  # the future is not a past period
