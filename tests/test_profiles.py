"""Profile presets: the pure table, its validation, and the README that documents it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aria.catalog.entries import Tier
from aria.errors import ConfigError
from aria.profiles import DEFAULT_PROFILE, PROFILE_TIERS, PROFILES, enabled_tiers

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize(
    ("profile", "gpu", "expected"),
    [
        ("minimal", False, (Tier.EFFICIENCY,)),
        ("minimal", True, (Tier.EFFICIENCY,)),
        ("efficient", False, (Tier.EFFICIENCY,)),
        ("efficient", True, (Tier.EFFICIENCY,)),
        ("balanced", False, (Tier.EFFICIENCY, Tier.QUALITY)),
        ("full", False, (Tier.EFFICIENCY, Tier.QUALITY, Tier.SPECIALIST)),
        ("full", True, (Tier.EFFICIENCY, Tier.QUALITY, Tier.SPECIALIST, Tier.ACCELERATED)),
        ("specialist_only", False, (Tier.SPECIALIST,)),
        ("specialist_only", True, (Tier.SPECIALIST, Tier.ACCELERATED)),
    ],
)
def test_enabled_tiers(profile: str, gpu: bool, expected: tuple[Tier, ...]) -> None:
    assert enabled_tiers(profile, gpu_available=gpu) == expected


def test_default_profile_is_efficient() -> None:
    assert DEFAULT_PROFILE == "efficient"
    assert DEFAULT_PROFILE in PROFILES


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'turbo'.*balanced"):
        enabled_tiers("turbo", gpu_available=False)


def test_readme_profile_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- profile-table:start -->")[1].split("<!-- profile-table:end -->")[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        name, tiers, accelerated = (cell.strip() for cell in line.strip("|").split("|"))
        rows[re.sub(r"\s*\(default\)", "", name)] = (tiers, accelerated)
    assert set(rows) == set(PROFILE_TIERS)
    for name, (tiers, accelerated) in rows.items():
        assert tiers == ", ".join(t.value for t in PROFILE_TIERS[name])
        with_gpu = enabled_tiers(name, gpu_available=True)
        assert (Tier.ACCELERATED in with_gpu) == (accelerated == "yes")
