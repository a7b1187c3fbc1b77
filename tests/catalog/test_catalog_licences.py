"""The licence policy table: classes, spellings and the unknown-is-red rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aria.catalog import LicenceClass, canonical_licence, classify
from aria.catalog.licences import KNOWN_LICENCES, describe

GREEN, YELLOW, RED = LicenceClass.GREEN, LicenceClass.YELLOW, LicenceClass.RED


@pytest.mark.parametrize(
    ("licence", "expected"),
    [
        # SPDX ids and the lower-case spellings Hugging Face metadata uses
        ("MIT", GREEN),
        ("mit", GREEN),
        ("Apache-2.0", GREEN),
        ("apache-2.0", GREEN),
        ("Apache 2.0", GREEN),
        ("  apache_2.0 ", GREEN),
        ("BSD-2-Clause", GREEN),
        ("bsd-3-clause", GREEN),
        # the TII Falcon licence under its names
        ("TII-Falcon-2.0", GREEN),
        ("tii-falcon-license", GREEN),
        ("falcon-llm-license", GREEN),
        # community licences: local use only
        ("llama3", YELLOW),
        ("llama3.1", YELLOW),
        ("Llama3.2", YELLOW),
        ("llama3.3", YELLOW),
        ("llama4", YELLOW),
        ("gemma", YELLOW),
        # non-commercial, research-only, non-production
        ("CC-BY-NC-4.0", RED),
        ("cc-by-nc-sa-4.0", RED),
        ("mistral-research", RED),
        ("mrl", RED),
        ("mnpl", RED),
        ("qwen-research", RED),
        # unknown or missing: never assumed permissive
        ("other", RED),
        ("", RED),
        ("GPL-3.0", RED),
        ("apache", RED),
        ("mit-ish", RED),
    ],
)
def test_classify(licence: str, expected: LicenceClass) -> None:
    assert classify(licence) is expected


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("mit", "MIT"),
        ("apache-2.0", "Apache-2.0"),
        ("falcon-llm-license", "TII-Falcon-2.0"),
        ("Llama3.1", "llama3.1"),
        (" cc-by-nc-4.0 ", "CC-BY-NC-4.0"),
        ("  some-custom-licence ", "some-custom-licence"),
    ],
)
def test_canonical_licence(spelling: str, canonical: str) -> None:
    assert canonical_licence(spelling) == canonical


def test_every_table_row_classifies_as_its_own_class_under_every_alias() -> None:
    for row in KNOWN_LICENCES:
        for name in (row.id, *row.aliases):
            assert classify(name) is row.licence_class, name
            assert canonical_licence(name.upper()) == row.id


def test_describe_says_why_a_red_licence_is_red() -> None:
    info = describe("cc-by-nc-4.0")
    assert info is not None
    assert "non-commercial" in info.summary
    assert describe("no-such-licence") is None


@given(st.text(max_size=40))
def test_classify_is_total_and_ignores_case_and_padding(text: str) -> None:
    result = classify(text)
    assert isinstance(result, LicenceClass)
    assert classify(f"  {text.upper()}  ") is classify(text.upper())
