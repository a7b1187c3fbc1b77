"""What a message asks of the memory, read without a model (the eval set measures more)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from aria.memory import MemoryKind
from aria.memory.statements import (
    EventReminder,
    ModelReminder,
    Preference,
    Remember,
    TimeReminder,
    UnclearReminder,
    is_procedural,
    read_message,
)

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize(
    ("text", "fact", "kind"),
    [
        ("Remember that I live in Lyon.", "I live in Lyon", MemoryKind.SEMANTIC),
        ("souviens-toi que j'habite à Nantes", "j'habite à Nantes", MemoryKind.SEMANTIC),
        ("Merk dir, dass ich in Berlin wohne", "ich in Berlin wohne", MemoryKind.SEMANTIC),
        ("recuerda que vivo en Madrid", "vivo en Madrid", MemoryKind.SEMANTIC),
        ("remember that I prefer metric units", "I prefer metric units", MemoryKind.PROCEDURAL),
        (
            "Don\u2019t forget that Leo is allergic to peanuts!",
            "Leo is allergic to peanuts",
            MemoryKind.SEMANTIC,
        ),
    ],
)
def test_explicit_statements_are_kept_as_said(text: str, fact: str, kind: MemoryKind) -> None:
    assert read_message(text, NOW) == Remember(fact, kind)


def test_reminders_of_each_trigger() -> None:
    time = read_message("rappelle-moi demain à 9h d'appeler la banque", NOW)
    assert isinstance(time, TimeReminder) and time.task == "appeler la banque"
    assert time.due == datetime(2026, 12, 5, 9, 0, tzinfo=NOW.tzinfo)
    event = read_message("Next time I talk about the trip, remind me to renew my passport", NOW)
    assert event == EventReminder(task="renew my passport", event="the trip")
    model = read_message("Sag mir Bescheid, wenn Qwen3-4B heruntergeladen ist", NOW)
    assert isinstance(model, ModelReminder) and model.model == "Qwen3-4B"
    assert read_message("remind me to buy milk", NOW) == UnclearReminder("buy milk")


@pytest.mark.parametrize(
    "text",
    [
        "from now on answer in French",
        "réponds-moi toujours en français",
        "Antworte mir immer auf Deutsch",
        "respóndeme siempre en español",
        "my code is Python 3.11",
    ],
)
def test_standing_instructions_are_procedural(text: str) -> None:
    assert read_message(text, NOW) == Preference(text)
    assert is_procedural(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "Never mind, what's the weather?",
        "Can you remind me what a mortgage is?",
        "Toujours pas de nouvelles de Paul",
        "I remember when we went to Rome",
        "",
        "   ",
    ],
)
def test_ordinary_messages_ask_nothing(text: str) -> None:
    assert read_message(text, NOW) is None
