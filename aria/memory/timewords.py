"""Reading time expressions: the pieces of a text that name times, in four languages.

The phrases are data (``data/time.toml``), merged into one set of patterns. A piece is an
offset ("in 10 minutes"), a past offset ("3 days ago"), a period ("last week"), a date, a
weekday, a relative day ("tomorrow"), a time of day or a day part; adjacent pieces form a
cluster, which :mod:`aria.memory.timeparse` resolves against ``now``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from aria.memory._data import alternation, data_file

__all__ = ["Piece", "clusters", "day_part_hours", "defaults"]


@dataclass(frozen=True)
class Piece:
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


# -- reading the pieces ------------------------------------------------------------------


def _pieces(text: str) -> list[Piece]:
    grammar = _grammar()
    found = []
    for kind, pattern in grammar.compiled:
        for match in pattern.finditer(text):
            value = _value(kind, match, grammar)
            if value is not None:
                found.append(Piece(kind, match.start(), match.end(), value))
    found.sort(key=lambda p: (p.start, -(p.end - p.start)))
    kept: list[Piece] = []
    for piece in found:  # the longest piece wins where two overlap
        if not kept or piece.start >= kept[-1].end:
            kept.append(piece)
    return kept


def clusters(text: str) -> list[list[Piece]]:
    connector = _grammar().connector
    clusters: list[list[Piece]] = []
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


def defaults() -> dict[str, int]:
    """The default hour of each day part, and of a day named without a time."""
    return _grammar().defaults


def day_part_hours(part: str) -> tuple[int, int]:
    """The hours ``[start, end)`` a day part covers, for questions about the past."""
    return _PART_HOURS[part]
