"""What a user's message asks of the memory, read without a language model (pure).

"Remember that …", a standing instruction ("answer in French"), or a reminder with a time
("remind me tomorrow at 9 to call the bank"), an event ("next time I talk about the trip,
remind me to renew my passport") or a model download ("when Qwen3-4B finishes
downloading, tell me"), in English, French, German or Spanish. The patterns are data
(``data/phrases.toml``); times come from :mod:`aria.memory.timeparse`. This works with
the tiny default model because no model is involved; anything else in a message is left
to the model (and to fact extraction when a capable one is installed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from aria.memory._data import data_file
from aria.memory.records import MemoryKind
from aria.memory.timeparse import find_due

__all__ = [
    "EventReminder",
    "Intent",
    "ModelReminder",
    "Preference",
    "Remember",
    "TimeReminder",
    "UnclearReminder",
    "is_procedural",
    "read_message",
]


@dataclass(frozen=True)
class Remember:
    """Keep ``text`` (semantic, or procedural when it is an instruction)."""

    text: str
    kind: MemoryKind


@dataclass(frozen=True)
class Preference:
    """A standing instruction, kept as procedural memory."""

    text: str


@dataclass(frozen=True)
class TimeReminder:
    task: str
    due: datetime


@dataclass(frozen=True)
class EventReminder:
    task: str
    event: str


@dataclass(frozen=True)
class ModelReminder:
    task: str
    model: str


@dataclass(frozen=True)
class UnclearReminder:
    """A reminder request without a time or event ARIA could read."""

    task: str


Intent = Remember | Preference | TimeReminder | EventReminder | ModelReminder | UnclearReminder


@dataclass(frozen=True)
class _Patterns:
    remember: tuple[re.Pattern[str], ...]
    remind_time: tuple[re.Pattern[str], ...]
    remind_event: tuple[re.Pattern[str], ...]
    remind_model: tuple[re.Pattern[str], ...]
    procedural: tuple[re.Pattern[str], ...]
    openers: re.Pattern[str]
    closers: re.Pattern[str]
    question: re.Pattern[str]


@cache
def _patterns() -> _Patterns:
    table = data_file("phrases.toml")

    def compiled(section: str) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(p, re.IGNORECASE) for p in table[section]["patterns"])

    def edge(words: list[str], *, start: bool) -> re.Pattern[str]:
        choice = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        if start:
            return re.compile(rf"^(?:(?:{choice})(?:\s+|(?<=')))+", re.IGNORECASE)
        return re.compile(rf"(?:(?:^|\s+)(?:{choice}))+$", re.IGNORECASE)

    remind = table["remind_time"]
    return _Patterns(
        remember=compiled("remember"),
        remind_time=compiled("remind_time"),
        remind_event=compiled("remind_event"),
        remind_model=compiled("remind_model"),
        procedural=compiled("procedural"),
        openers=edge(remind["task_openers"], start=True),
        closers=edge(remind["task_closers"], start=False),
        question=re.compile(
            rf"^(?:{'|'.join(re.escape(w) for w in remind['question_words'])})(?:\s|')",
            re.IGNORECASE,
        ),
    )


def _clean(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split())


def _first(patterns: tuple[re.Pattern[str], ...], text: str) -> re.Match[str] | None:
    return next((m for p in patterns if (m := p.match(text)) is not None), None)


def is_procedural(text: str) -> bool:
    """Is ``text`` an instruction about how to answer (rather than a fact)?"""
    return _first(_patterns().procedural, _clean(text)) is not None


def read_message(text: str, now: datetime) -> Intent | None:
    """The memory request in ``text``, or None when it asks nothing of the memory.

    ``now`` (aware) anchors relative times ("in 10 minutes").
    """
    message = _clean(text)
    if not message:
        return None
    patterns = _patterns()
    if (match := _first(patterns.remind_model, message)) is not None:
        model = match["model"]
        task = (match.groupdict().get("task") or "").strip()
        return ModelReminder(task=task or f"{model} has finished downloading", model=model)
    if (match := _first(patterns.remind_event, message)) is not None:
        return EventReminder(task=_tidy(match["task"]), event=_tidy(match["event"]))
    if (match := _first(patterns.remind_time, message)) is not None:
        return _time_reminder(match["rest"], now)
    if (match := _first(patterns.remember, message)) is not None:
        fact = _tidy(match["fact"])
        kind = MemoryKind.PROCEDURAL if is_procedural(fact) else MemoryKind.SEMANTIC
        return Remember(text=fact, kind=kind) if fact else None
    if _first(patterns.procedural, message) is not None:
        return Preference(text=message.rstrip(".!"))
    return None


def _time_reminder(rest: str, now: datetime) -> TimeReminder | UnclearReminder | None:
    due = find_due(rest, now)
    if due is None:
        if rest.rstrip().endswith("?") or _patterns().question.match(rest):
            return None  # "remind me what a mortgage is?": a question, not a reminder
        return UnclearReminder(task=_task(rest))
    start, end = due.span
    before = _patterns().closers.sub("", _tidy(rest[:start]))  # "... on" [December 24]
    return TimeReminder(task=_task(f"{before} {rest[end:]}"), due=due.when)


def _task(text: str) -> str:
    patterns = _patterns()
    task = _tidy(text)
    task = patterns.openers.sub("", task)
    task = patterns.closers.sub("", task)
    return _tidy(task)


def _tidy(text: str) -> str:
    return " ".join(text.split()).strip(" ,;:.!")
