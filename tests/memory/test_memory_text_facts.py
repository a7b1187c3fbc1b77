"""Keywords, full-text queries, slots and what a new fact does to older ones (pure)."""

from __future__ import annotations

import pytest

from aria.memory import Memory, MemoryKind
from aria.memory.facts import Add, Duplicate, Slot, Supersede, decide, slot_of
from aria.memory.text import fold, fts_query, keywords, same_word


def test_keywords_drop_function_words_in_four_languages_and_fold_accents() -> None:
    assert keywords("What did we discuss about the garden?") == ["garden"]
    assert keywords("Où est le Café de la Gare ?") == ["cafe", "gare"]
    assert keywords("Wann kommt der Klempner?") == ["kommt", "klempner"]
    assert fold("Élodie ÇA") == "elodie ca"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [("trip", "trips", True), ("trip", "tripped", False), ("jardin", "jardinage", True),
     ("garden", "gardening", True), ("bus", "business", False), ("cat", "category", False)],
)  # fmt: skip
def test_words_match_on_plurals_and_long_shared_starts(a: str, b: str, same: bool) -> None:
    assert same_word(a, b) is same


def test_the_fts_query_quotes_terms_and_is_none_without_topic_words() -> None:
    assert fts_query('the "garden" trip') == '"gard"* OR ("trip" OR "trips")'
    assert fts_query("what is it?") is None


def test_slots_take_the_value_in_each_language() -> None:
    assert slot_of("I moved to Paris") == Slot("residence", "paris")
    assert slot_of("Ich bin nach Berlin gezogen") == Slot("residence", "berlin")
    assert slot_of("My favourite colour is green") == Slot("favourite:colour", "green")
    assert slot_of("Réponds-moi en anglais") == Slot("reply_language", "anglais")
    assert slot_of("I'm allergic to penicillin") is None
    assert slot_of("My parents live in Quimper") is None


def _memory(memory_id: str, text: str) -> Memory:
    slot = slot_of(text)
    return Memory(
        memory_id, MemoryKind.SEMANTIC, text, 0.0, "test", slot=slot.name if slot else None
    )


def test_a_new_value_in_a_slot_supersedes_and_the_same_value_is_a_duplicate() -> None:
    lyon = _memory("m_1", "I live in Lyon")
    assert decide(
        "I moved to Paris", slot_of("I moved to Paris"), [(lyon, 0.5)], duplicate_at=0.9
    ) == Supersede(("m_1",))
    again = "I now live in Lyon"
    assert decide(again, slot_of(again), [(lyon, 0.5)], duplicate_at=0.9) == Duplicate("m_1")


def test_facts_without_a_slot_coexist_unless_nearly_identical() -> None:
    allergy = _memory("m_2", "I'm allergic to penicillin")
    assert decide("I'm allergic to peanuts", None, [(allergy, 0.7)], duplicate_at=0.9) == Add()
    assert decide(
        "I am allergic to penicillin", None, [(allergy, 0.97)], duplicate_at=0.9
    ) == Duplicate("m_2")
