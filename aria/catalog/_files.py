"""Reading the catalog's TOML data files and turning their faults into one sentence."""

from __future__ import annotations

import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aria.errors import CatalogError

__all__ = ["packaged", "read_toml", "validation_summary"]


def packaged(name: str) -> Traversable:
    """A data file shipped inside the ``aria.catalog`` package (works from a wheel or a zip)."""
    return files("aria.catalog").joinpath("data", name)


def read_toml(source: Path | Traversable, *, what: str) -> dict[str, Any]:
    """Parse ``source`` as TOML.

    Raises:
        CatalogError: the file cannot be read or is not valid TOML.
    """
    try:
        raw = source.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CatalogError(f"cannot read the {what} {source}: {reason}") from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"the {what} {source} is not valid TOML: {exc}") from exc


def validation_summary(exc: ValidationError) -> str:
    """The first problem pydantic found, as ``field.path: message`` (plus how many more)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"]) or "(top level)"
    summary = f"{location}: {first['msg']}"
    if len(errors) > 1:
        summary += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return summary
