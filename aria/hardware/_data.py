"""The TOML tables shipped in ``aria/hardware/data/`` (standard library only)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["data_table"]


@cache
def _load(file: str) -> dict[str, Any]:
    text = resources.files("aria.hardware").joinpath("data", file).read_text("utf-8")
    return tomllib.loads(text)


def data_table(file: str, name: str) -> dict[str, Any]:
    """Table ``name`` of ``data/<file>``; read once, never mutated."""
    table: dict[str, Any] = _load(file)[name]
    return table
