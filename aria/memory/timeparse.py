"""Dates and times in what people type, in English, French, German and Spanish.

Two questions, both pure functions of the text and ``now`` (an aware datetime):

* :func:`find_due`: when should a reminder fire? ("tomorrow at 9", "dans 10 minutes",
  "am Freitag um 18 Uhr", "el 12 de enero a las 10")
* :func:`find_window`: which past period is a question about? ("last Tuesday", "hier soir",
  "letzte Woche", "hace 3 días")

The phrases are data (``data/time.toml``). An expression is a cluster of adjacent pieces
(an offset, a day, a weekday, a date, a time of day, a day part) resolved together.
Rules worth knowing: a bare hour ("at 9", "a las 9") is the next one to come of 9:00 and
21:00 unless a day part says which; "9h", "9 Uhr" and "09:00" are exact; a named day
without a time means 9:00; today's weekday means next week's ("on Friday" on a Friday);
numeric dates are day first (24/12). ``dateparser`` was
measured and not used: it drops the hour of "tomorrow at 9" and "morgen um 9 Uhr", does
not read "mardi dernier", and its search finds dates in plain words ("we").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from aria.memory._data import alternation, data_file

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


@dataclass(frozen=True)
class _Piece:
    kind: str  # offset, ago, period, date, weekday, day, time, part
    start: int
    end: int
    value: Any


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_PART_HOURS = {"morning": (5, 12), "afternoon": (12, 18), "evening": (18, 24)}
_B, _E = r"(?<!\w)", r"(?!\w)"


class _Grammar:
    """Every language's phrases merged into one set of compiled patterns and lookups."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.defaults: dict[str, int] = table["defaults"]
        langs = [v for k, v in table.items() if k != "defaults"]

        def merged(key: str) -> dict[str, Any]:
            return {k.lower(): v for lang in langs for k, v in lang[key].items()}

        def words(key: str) -> list[str]:
            return [w.lower() for lang in langs for w in lang[key]]

        self.days, self.parts = merged("days"), merged("parts")
        self.numbers, self.units, self.periods = (
            merged("numbers"),
            merged("units"),
            merged("periods"),
        )
        self.before, self.after = merged("weekday_before"), merged("weekday_after")
        self.weekdays = {
            n: i for lang in langs for i, ns in enumerate(lang["weekdays"]) for n in ns
        }
        self.months = {
            n: i + 1 for lang in langs for i, ns in enumerate(lang["months"]) for n in ns
        }
        self.half, self.noon = words("half_hour"), words("noon")
        num = rf"(?:\d{{1,3}}|{alternation(self.numbers)})"
        units = alternation(self.units)
        at = rf"(?:(?:{alternation(words('at'))})\s+)"
        ampm = rf"(?P<ap>{alternation(words('am') + words('pm'))})"
        self.pm = set(words("pm"))
        month = rf"(?P<mon>{alternation(self.months)})\.?"
        ordinal = rf"(?:{alternation(words('date_ordinals'))})?"
        self.patterns = [
            ("offset", rf"{_B}(?:{alternation(words('in'))})\s+(?:(?P<half>"
             rf"{alternation(self.half)})|(?P<n>{num})\s+(?P<u>{units})){_E}"),
            ("ago", rf"{_B}(?:(?:{alternation(words('ago_before'))})\s+(?P<n>{num})\s+(?P<u>"
             rf"{units})|(?P<n2>{num})\s+(?P<u2>{units})\s+(?:{alternation(words('ago_after'))}))"
             rf"{_E}"),
            ("period", rf"{_B}(?P<p>{alternation(self.periods)}){_E}"),
            ("date", rf"{_B}(?:(?P<y>\d{{4}})-(?P<m>\d{{1,2}})-(?P<d>\d{{1,2}})"
             rf"|(?P<d2>\d{{1,2}})[/.](?P<m2>\d{{1,2}})(?:[/.](?P<y2>\d{{2,4}}))?(?![\d:])"
             rf"|(?P<d3>\d{{1,2}}){ordinal}\s+(?:(?:de|of)\s+)?{month}(?:\s+(?:de\s+)?(?P<y3>\d{{4}}))?"
             rf"|(?P<mon2>{alternation(self.months)})\.?\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?"
             rf"(?:,?\s+(?P<y4>\d{{4}}))?){_E}"),
            ("weekday", rf"{_B}(?:(?P<pre>{alternation(self.before)})\s+)?(?P<wd>"
             rf"{alternation(self.weekdays)}){_E}(?:\s+(?P<post>{alternation(self.after)}){_E})?"),
            ("day", rf"{_B}(?P<day>{alternation(self.days)}){_E}"),
            ("time", rf"{_B}(?:{at}?(?P<h1>\d{{1,2}})(?P<sep>:|h)(?P<m1>\d{{2}})(?:\s*{ampm})?"
             rf"|{at}?(?P<h2>\d{{1,2}})\s*(?P<ap2>{alternation(words('am') + words('pm'))})"
             rf"|{at}?(?P<h3>\d{{1,2}})\s*(?:{alternation(words('hour_words'))})"
             rf"|{at}(?P<h4>\d{{1,2}})(?![\w:/.])"
             rf"|{at}?(?P<noon>{alternation(self.noon)})"
             rf"|{at}?(?P<midnight>{alternation(words('midnight'))})){_E}"),
            ("part", rf"{_B}(?P<part>{alternation(self.parts)}){_E}"),
        ]  # fmt: skip
        self.compiled = [(kind, re.compile(p, re.IGNORECASE)) for kind, p in self.patterns]
        self.connector = re.compile(
            rf"^[\s,]*(?:(?:{alternation(words('at'))}|on|the|le|la|el|de|am|um)[\s,]*)?$",
            re.IGNORECASE,
        )

    def number(self, text: str) -> int:
        return int(text) if text.isdigit() else int(self.numbers[_norm(text)])


@cache
def _grammar() -> _Grammar:
    return _Grammar(data_file("time.toml"))


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def find_due(text: str, now: datetime) -> Due | None:
    """The first expression in ``text`` naming a moment after ``now``, resolved."""
    for cluster in _clusters(text):
        when = _future(cluster, now)
        if when is not None:
            return Due(when, (cluster[0].start, cluster[-1].end))
    return None


def find_window(text: str, now: datetime) -> Window | None:
    """The first expression in ``text`` naming a past period, as ``[start, end)``."""
    for cluster in _clusters(text):
        window = _past(cluster, now)
        if window is not None:
            return Window(window[0], window[1], (cluster[0].start, cluster[-1].end))
    return None


# -- reading the pieces ------------------------------------------------------------------


def _pieces(text: str) -> list[_Piece]:
    grammar = _grammar()
    found = []
    for kind, pattern in grammar.compiled:
        for match in pattern.finditer(text):
            value = _value(kind, match, grammar)
            if value is not None:
                found.append(_Piece(kind, match.start(), match.end(), value))
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    kept: list[_Piece] = []
    for piece in found:  # the longest piece wins where two overlap
        if not kept or piece.start >= kept[-1].end:
            kept.append(piece)
    return kept


def _clusters(text: str) -> list[list[_Piece]]:
    connector = _grammar().connector
    clusters: list[list[_Piece]] = []
    for piece in _pieces(text):
        if clusters and connector.match(text[clusters[-1][-1].end : piece.start]):
            clusters[-1].append(piece)
        else:
            clusters.append([piece])
    return clusters


def _value(kind: str, m: re.Match[str], g: _Grammar) -> Any:
    group = m.groupdict()
    if kind == "offset":
        if group["half"]:
            return 1800
        return g.number(group["n"]) * _unit_seconds(g.units[_norm(group["u"])])
    if kind == "ago":
        n, u = (group["n"], group["u"]) if group["n"] else (group["n2"], group["u2"])
        return g.number(n) * _unit_seconds(g.units[_norm(u)])
    if kind == "period":
        return g.periods[_norm(group["p"])]
    if kind == "date":
        return _date_parts(group, g)
    if kind == "weekday":
        mode = g.before.get(_norm(group["pre"] or ""), "plain")
        if group["post"]:
            mode = g.after[_norm(group["post"])]
        return g.weekdays[_norm(group["wd"])], mode
    if kind == "day":
        phrase = _norm(group["day"])
        return g.days[phrase], g.parts.get(phrase)
    if kind == "part":
        return g.parts[_norm(group["part"])]
    return _time_of_day(group, g)


def _unit_seconds(unit: str) -> int:
    return _UNIT_SECONDS.get(unit, 30 * 86400)  # a month: 30 days


def _date_parts(group: dict[str, Any], g: _Grammar) -> tuple[int, int, int | None] | None:
    year: int | None
    if group["y"]:
        day, month, year = int(group["d"]), int(group["m"]), int(group["y"])
    elif group["d2"]:
        day, month = int(group["d2"]), int(group["m2"])
        year = int(group["y2"]) if group["y2"] else None
        if year is not None and year < 100:
            year += 2000
    elif group["d3"]:
        day, month = int(group["d3"]), g.months[_norm(group["mon"])]
        year = int(group["y3"]) if group["y3"] else None
    else:
        day, month = int(group["d4"]), g.months[_norm(group["mon2"])]
        year = int(group["y4"]) if group["y4"] else None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return day, month, year


def _time_of_day(group: dict[str, Any], g: _Grammar) -> tuple[int, int, str] | None:
    if group["noon"]:
        return 12, 0, "exact"
    if group["midnight"]:
        return 0, 0, "exact"
    hour_text = group["h1"] or group["h2"] or group["h3"] or group["h4"]
    hour, minute = int(hour_text), int(group["m1"] or 0)
    marker = group["ap"] or group["ap2"]
    if marker:
        if not 1 <= hour <= 12:
            return None
        mode = "pm" if _norm(marker) in g.pm else "am"
    elif group["h3"] or (group["h1"] and (group["sep"].lower() == "h" or hour_text[0] == "0")):
        mode = "exact"  # "9h30", "9 Uhr", "09:30": the 24-hour clock
    else:
        mode = "ambiguous" if 1 <= hour <= 12 else "exact"
    if hour > 23 or minute > 59:
        return None
    return hour, minute, mode


# -- resolving a cluster ------------------------------------------------------------------


def _first(cluster: list[_Piece], kind: str) -> Any:
    return next((p.value for p in cluster if p.kind == kind), None)


def _future(cluster: list[_Piece], now: datetime) -> datetime | None:
    if _first(cluster, "ago") is not None or _first(cluster, "period") is not None:
        return None
    offset, clock = _first(cluster, "offset"), _first(cluster, "time")
    day, weekday, parts = (
        _first(cluster, "day"),
        _first(cluster, "weekday"),
        _first(cluster, "date"),
    )
    part = _first(cluster, "part") or (day[1] if day else None)
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
    when = _at(base, clock, part, now, _grammar().defaults)
    if when <= now and not explicit:
        when = _at(base + timedelta(days=1), clock, part, now, _grammar().defaults)
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


def _past(cluster: list[_Piece], now: datetime) -> tuple[datetime, datetime] | None:
    today = now.date()
    period, ago = _first(cluster, "period"), _first(cluster, "ago")
    day, weekday, parts = (
        _first(cluster, "day"),
        _first(cluster, "weekday"),
        _first(cluster, "date"),
    )
    part = _first(cluster, "part") or (day[1] if day else None)
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
        low, high = _PART_HOURS[part]
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
