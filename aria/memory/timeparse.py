"""Dates and times in what people type, in English, French, German and Spanish.

Two questions, both pure functions of the text and ``now`` (an aware datetime):

* :func:`find_due`: when should a reminder fire? ("tomorrow at 9", "dans 10 minutes",
  "am Freitag um 18 Uhr", "el 12 de enero a las 10")
* :func:`find_window`: which past period is a question about? ("last Tuesday", "hier soir",
  "letzte Woche", "hace 3 días")

The phrases are data (``data/time.toml``, read by :mod:`aria.memory.timewords`). An
expression is a cluster of adjacent pieces (an offset, a day, a weekday, a date, a time of
day, a day part) resolved together here.
Rules worth knowing: a bare hour ("at 9", "a las 9") is the next one to come of 9:00 and
21:00 unless a day part says which; "9h", "9 Uhr" and "09:00" are exact; a named day
without a time means 9:00; today's weekday means next week's ("on Friday" on a Friday);
numeric dates are day first (24/12). ``dateparser`` was
measured and not used: it drops the hour of "tomorrow at 9" and "morgen um 9 Uhr", does
not read "mardi dernier", and its search finds dates in plain words ("we").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from aria.memory.timewords import Piece, clusters, day_part_hours, defaults

__all__ = ["Due", "Window", "find_due", "find_window"]


@dataclass(frozen=True)
class Due:
    """When a reminder fires, and where the expression is in the text."""

    when: datetime
    span: tuple[int, int]


@dataclass(frozen=True)
class Window:
    """A past period ``[start, end)``, and where the expression is in the text."""

    start: datetime
    end: datetime
    span: tuple[int, int]


def find_due(text: str, now: datetime) -> Due | None:
    """The first expression in ``text`` naming a moment after ``now``, resolved."""
    for cluster in clusters(text):
        when = _future(cluster, now)
        if when is not None:
            return Due(when, (cluster[0].start, cluster[-1].end))
    return None


def find_window(text: str, now: datetime) -> Window | None:
    """The first expression in ``text`` naming a past period, as ``[start, end)``."""
    for cluster in clusters(text):
        window = _past(cluster, now)
        if window is not None:
            return Window(window[0], window[1], (cluster[0].start, cluster[-1].end))
    return None


# -- resolving a cluster ------------------------------------------------------------------


@dataclass(frozen=True)
class _Expression:
    """The pieces of one cluster, by kind (the first of each)."""

    offset: int | None
    ago: int | None
    period: str | None
    date: tuple[int, int, int | None] | None
    weekday: tuple[int, str] | None
    day: tuple[int, str | None] | None
    clock: tuple[int, int, str] | None
    part: str | None

    @classmethod
    def of(cls, cluster: list[Piece]) -> _Expression:
        def first(kind: str) -> Any:
            return next((p.value for p in cluster if p.kind == kind), None)

        day = first("day")
        part = first("part") or (day[1] if day else None)
        return cls(first("offset"), first("ago"), first("period"), first("date"),
                   first("weekday"), day, first("time"), part)  # fmt: skip


def _future(cluster: list[Piece], now: datetime) -> datetime | None:
    e = _Expression.of(cluster)
    if e.ago is not None or e.period is not None:
        return None
    offset, clock, day, weekday, parts, part = e.offset, e.clock, e.day, e.weekday, e.date, e.part
    if offset is not None and offset < 86400:
        return now + timedelta(seconds=offset)
    today = now.date()
    explicit = True
    if parts is not None:
        base = _calendar_date(parts, today, future=True)
    elif weekday is not None:
        index, mode = weekday
        if mode == "last":
            return None
        # Naming today's weekday means next week's ("on Friday", said on a Friday).
        base = today + timedelta(days=(index - today.weekday()) % 7 or 7)
    elif day is not None:
        if day[0] < 0:
            return None
        base = today + timedelta(days=day[0])
    elif offset is not None:
        if clock is None and part is None:
            return now + timedelta(seconds=offset)
        base = today + timedelta(seconds=offset)
    else:
        base, explicit = today, False
    if base is None:
        return None
    if clock is None and part is None and not explicit:
        return None
    when = _at(base, clock, part, now, defaults())
    if when <= now and not explicit:
        when = _at(base + timedelta(days=1), clock, part, now, defaults())
    return when if when > now else None


def _at(
    base: date, clock: Any, part: str | None, now: datetime, defaults: dict[str, int]
) -> datetime:
    def moment(hour: int, minute: int = 0) -> datetime:
        return datetime.combine(base, time(hour % 24, minute), tzinfo=now.tzinfo)

    if clock is None:
        return moment(defaults[part or "day"])
    hour, minute, mode = clock
    if mode == "am":
        return moment(hour % 12, minute)
    if mode == "pm":
        return moment(hour % 12 + 12, minute)
    if mode == "exact":
        return moment(hour, minute)
    if part in ("afternoon", "evening"):
        return moment(hour % 12 + 12, minute)
    if part == "morning":
        return moment(hour % 12, minute)
    options = [moment(hour % 12, minute), moment(hour % 12 + 12, minute)]
    return next((o for o in options if o > now), options[0])


def _calendar_date(parts: tuple[int, int, int | None], today: date, *, future: bool) -> date | None:
    day, month, year = parts
    try:
        if year is not None:
            return date(year, month, day)
        guess = date(today.year, month, day)
    except ValueError:
        return None
    if future and guess < today:
        return _same_day(guess, today.year + 1)
    if not future and guess > today:
        return _same_day(guess, today.year - 1)
    return guess


def _same_day(day: date, year: int) -> date | None:
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February
        return None


def _past(cluster: list[Piece], now: datetime) -> tuple[datetime, datetime] | None:
    today = now.date()
    e = _Expression.of(cluster)
    period, ago, day, weekday, parts, part = e.period, e.ago, e.day, e.weekday, e.date, e.part
    if period is not None:
        return _period(period, now)
    if ago is not None:
        moment = now - timedelta(seconds=ago)
        if ago < 86400:
            return moment - timedelta(hours=1), moment + timedelta(hours=1)
        span = 7 if ago >= 7 * 86400 else 1
        start = _midnight(moment.date() - timedelta(days=span // 2), now)
        return start, start + timedelta(days=span)
    if parts is not None:
        target = _calendar_date(parts, today, future=False)
    elif weekday is not None:
        index, mode = weekday
        if mode == "next":
            return None
        target = today - timedelta(days=(today.weekday() - index) % 7 or 7)
    elif day is not None and day[0] <= 0:
        target = today + timedelta(days=day[0])
    else:
        return None
    if target is None or target > today:
        return None
    start = _midnight(target, now)
    if part is not None:
        low, high = day_part_hours(part)
        return start + timedelta(hours=low), start + timedelta(hours=high)
    return start, start + timedelta(days=1)


def _period(period: str, now: datetime) -> tuple[datetime, datetime]:
    today = now.date()
    monday = _midnight(today - timedelta(days=today.weekday()), now)
    first = _midnight(today.replace(day=1), now)
    if period == "last_week":
        return monday - timedelta(days=7), monday
    if period == "this_week":
        return monday, monday + timedelta(days=7)
    if period == "last_month":
        previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        return _midnight(previous, now), first
    if period == "this_month":
        return first, now + timedelta(seconds=1)
    if period == "today":
        return _midnight(today, now), now + timedelta(seconds=1)
    return now - timedelta(days=7), now + timedelta(seconds=1)  # "recently"


def _midnight(day: date, now: datetime) -> datetime:
    return datetime.combine(day, time(0), tzinfo=now.tzinfo)
