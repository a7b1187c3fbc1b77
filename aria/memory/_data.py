"""The TOML tables shipped in ``aria/memory/data/`` (read once, never mutated)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["alternation", "data_file"]


@cache
def data_file(name: str) -> dict[str, Any]:
    """The parsed ``data/<name>``."""
    text = resources.files("aria.memory").joinpath("data", name).read_text("utf-8")
    return tomllib.loads(text)


def alternation(phrases: Iterable[str]) -> str:
    """A regex alternation of ``phrases`` (longest first, so "demain" never beats
    "après-demain"), with flexible whitespace; ``(?!)`` (never matches) when empty."""
    unique = sorted({p.lower() for p in phrases if p}, key=lambda p: (-len(p), p))
    if not unique:
        return "(?!)"
    return "|".join(r"\s+".join(re.escape(word) for word in p.split()) for p in unique)
