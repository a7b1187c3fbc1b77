"""docs/MODELS.md must describe the catalog that ships, so the two cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aria.catalog import Tier, load_catalog

MODELS_MD = Path(__file__).resolve().parents[2] / "docs" / "MODELS.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return MODELS_MD.read_text(encoding="utf-8")


def _tier_section(doc: str, tier: Tier) -> str:
    """The text from the tier's heading to the next heading."""
    match = re.search(rf"^### {tier.value.capitalize()}\b.*?(?=^#)", doc, re.M | re.S)
    assert match is not None, f"docs/MODELS.md has no section for the {tier} tier"
    return match.group(0)


def test_every_catalog_id_is_listed_in_its_tier_table(doc: str) -> None:
    catalog = load_catalog()
    for tier in Tier:
        section = _tier_section(doc, tier)
        for entry in catalog.by_tier(tier):
            assert f"| `{entry.id}`" in section, f"{entry.id} missing from the {tier} table"


def test_the_doc_lists_no_model_the_catalog_lacks(doc: str) -> None:
    catalog = load_catalog()
    for tier in Tier:
        listed = re.findall(r"^\| `([^`]+)`", _tier_section(doc, tier), re.M)
        assert [model_id for model_id in listed if model_id not in catalog] == []


def test_the_doc_names_the_default_model_and_its_hash(doc: str) -> None:
    default = load_catalog().default
    assert default.id in doc
    assert default.sha256 is not None and default.sha256 in doc


def test_the_doc_has_the_licence_matrix_left_out_models_and_denylist_policy(doc: str) -> None:
    for heading in ("## Licence classes", "## Left out of the catalog", "## Denylist"):
        assert heading in doc
    for left_out in ("Llama", "Gemma", "Mistral Research Licence", "Codestral"):
        assert left_out in doc
