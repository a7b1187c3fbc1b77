"""Licence classes: which model licences ARIA may ship, run locally, or never touch.

A small policy table, not a legal engine. Each known licence id has a class:

* green  -- permissive (MIT, Apache-2.0, BSD-2/3-Clause, TII Falcon 2.0): catalog, local use, P2P;
* yellow -- usable locally after the operator accepts the terms (Llama, Gemma), never shared;
* red    -- non-commercial, research-only or non-production terms: refused.

Anything not in the table is red: an unknown licence is never assumed to be permissive.
Ids are matched case-insensitively and through the aliases Hugging Face metadata uses
(``apache-2.0``, ``mit``, ``falcon-llm-license``...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from aria.catalog.entries import LicenceId

__all__ = [
    "CLASS_ALLOWS",
    "KNOWN_LICENCES",
    "LicenceClass",
    "LicenceInfo",
    "canonical_licence",
    "classify",
    "describe",
]


class LicenceClass(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


@dataclass(frozen=True)
class LicenceInfo:
    """One row of the policy table: the canonical id, its class and why."""

    id: LicenceId
    licence_class: LicenceClass
    summary: str
    aliases: tuple[str, ...] = ()


def _row(licence_id: str, licence_class: LicenceClass, summary: str, *aliases: str) -> LicenceInfo:
    return LicenceInfo(LicenceId(licence_id), licence_class, summary, aliases)


_G, _Y, _R = LicenceClass.GREEN, LicenceClass.YELLOW, LicenceClass.RED

# What each class lets an operator do, in plain words (the dashboard's licence badges).
CLASS_ALLOWS: Final = MappingProxyType(
    {
        _G: "run here, and share with peers (the catalog holds only these)",
        _Y: "run here only after you accept the licence's terms; never shared with peers",
        _R: "refused: non-commercial, research-only or unknown terms",
    }
)

KNOWN_LICENCES: Final[tuple[LicenceInfo, ...]] = (
    _row("MIT", _G, "permissive (MIT)", "mit-license", "the-mit-license"),
    _row("Apache-2.0", _G, "permissive (Apache 2.0)", "apache-2", "apache2", "apache-license-2.0"),
    _row("BSD-2-Clause", _G, "permissive (BSD 2-clause)", "bsd-2", "simplified-bsd"),
    _row("BSD-3-Clause", _G, "permissive (BSD 3-clause)", "bsd-3", "new-bsd"),
    _row(
        "TII-Falcon-2.0",
        _G,
        "permissive with an acceptable-use policy (TII Falcon licence 2.0)",
        "tii-falcon-license",
        "tii-falcon-license-2.0",
        "falcon-llm-license",
        "falcon-llm-license-2.0",
        "tii-falcon-llm-license-2.0",
    ),
    _row("llama2", _Y, "Llama 2 community licence", "llama-2", "llama-2-community"),
    _row("llama3", _Y, "Meta Llama 3 community licence", "llama-3", "llama-3-community"),
    _row("llama3.1", _Y, "Llama 3.1 community licence", "llama-3.1", "llama-3.1-community"),
    _row("llama3.2", _Y, "Llama 3.2 community licence", "llama-3.2", "llama-3.2-community"),
    _row("llama3.3", _Y, "Llama 3.3 community licence", "llama-3.3", "llama-3.3-community"),
    _row("llama4", _Y, "Llama 4 community licence", "llama-4", "llama-4-community"),
    _row("gemma", _Y, "Gemma terms of use", "gemma-terms-of-use", "gemma-license"),
    _row("CC-BY-NC-4.0", _R, "non-commercial"),
    _row("CC-BY-NC-SA-4.0", _R, "non-commercial"),
    _row("CC-BY-NC-ND-4.0", _R, "non-commercial"),
    _row("mistral-research", _R, "research-only (Mistral Research Licence)", "mrl", "mrl-0.1"),
    _row("mistral-non-production", _R, "non-production (Mistral MNPL)", "mnpl", "mnpl-0.1"),
    _row("qwen-research", _R, "research-only (Qwen Research Licence)"),
)


def _normalise(licence: str) -> str:
    """Lower-case, trim, and turn runs of spaces/underscores into single hyphens."""
    return re.sub(r"[\s_]+", "-", licence.strip().casefold())


def _build_index(rows: tuple[LicenceInfo, ...]) -> MappingProxyType[str, LicenceInfo]:
    index: dict[str, LicenceInfo] = {}
    for row in rows:
        for name in (row.id, *row.aliases):
            key = _normalise(name)
            if key in index:
                raise ValueError(f"licence table lists {name!r} twice")
            index[key] = row
    return MappingProxyType(index)


_INDEX: Final = _build_index(KNOWN_LICENCES)


def describe(licence: str) -> LicenceInfo | None:
    """The policy row for ``licence`` (any known spelling), or ``None`` if ARIA does not know it."""
    return _INDEX.get(_normalise(licence))


def canonical_licence(licence: str) -> LicenceId:
    """The canonical id for a known licence, else the trimmed input unchanged.

    Used to record what a model file declares (e.g. GGUF ``general.license``) in one spelling.
    """
    info = describe(licence)
    return info.id if info is not None else LicenceId(licence.strip())


def classify(licence: str) -> LicenceClass:
    """The class of ``licence``; unknown or empty licences are red."""
    info = describe(licence)
    return info.licence_class if info is not None else LicenceClass.RED
