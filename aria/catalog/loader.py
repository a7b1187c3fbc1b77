"""The catalog value and its loader.

``load_catalog()`` parses ``aria/catalog/data/catalog.toml`` (or a given file) into a frozen
``Catalog``. Building a ``Catalog`` runs the licence gate on every entry, so no catalog value
can hold a model that is not green: a yellow or red entry makes loading fail, naming the
entry and its licence. Nothing is cached here; the caller keeps the value and passes it on.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from aria.catalog._files import packaged, read_toml, validation_summary
from aria.catalog.entries import Capability, CatalogEntry, ModelId, Tier, WheelSource
from aria.catalog.gate import Use, evaluate, require
from aria.errors import CatalogError, ModelNotFound

__all__ = ["Catalog", "load_catalog"]

_CATALOG_SOURCES = frozenset({"huggingface", "wheel", "checkpoint"})


@dataclass(frozen=True)
class Catalog:
    """Every model ARIA knows, plus the one it falls back to when nothing else is installed.

    Ids are unique ignoring case, and lookups ignore case too (``qwen3-4b`` finds ``Qwen3-4B``).
    """

    entries: tuple[CatalogEntry, ...]
    default_model_id: ModelId
    default_embedding_id: ModelId | None = None
    _by_key: Mapping[str, CatalogEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, CatalogEntry] = {}
        by_hash: dict[str, CatalogEntry] = {}
        for entry in self.entries:
            if entry.source.kind not in _CATALOG_SOURCES:
                raise CatalogError(
                    f"catalog entry {entry.id!r} has a {entry.source.kind!r} source; catalog "
                    "models come from Hugging Face or a pinned wheel"
                )
            require(evaluate(entry.licence, Use.CATALOG), subject=f"catalog entry {entry.id!r}")
            key = entry.id.casefold()
            if key in by_key:
                raise CatalogError(
                    f"catalog lists the model id {entry.id!r} more than once "
                    f"(ids are compared ignoring case; first seen as {by_key[key].id!r})"
                )
            by_key[key] = entry
            converted = isinstance(entry.source, WheelSource) and entry.source.recipe
            if converted and entry.sha256 is None:
                raise CatalogError(
                    f"catalog entry {entry.id!r} is converted at install time, so it must "
                    "pin the sha256 of the converted file"
                )
            if entry.sha256 is not None:
                if entry.sha256 in by_hash:
                    raise CatalogError(
                        f"catalog entries {by_hash[entry.sha256].id!r} and {entry.id!r} pin the "
                        f"same file (sha256 {entry.sha256})"
                    )
                by_hash[entry.sha256] = entry
        if self.default_model_id.casefold() not in by_key:
            raise CatalogError(
                f"the catalog's default model {self.default_model_id!r} is not one of its entries"
            )
        if self.default_embedding_id is not None:
            embedder = by_key.get(self.default_embedding_id.casefold())
            if embedder is None or Capability.EMBEDDING not in embedder.capabilities:
                raise CatalogError(
                    f"the catalog's default embedding model {self.default_embedding_id!r} is "
                    "not one of its embedding entries"
                )
        object.__setattr__(self, "_by_key", by_key)

    @property
    def default(self) -> CatalogEntry:
        """The embedded default model's entry."""
        return self._by_key[self.default_model_id.casefold()]

    @property
    def default_embedding(self) -> CatalogEntry | None:
        """The embedding model ARIA installs with the default one (memory, /v1/embeddings)."""
        if self.default_embedding_id is None:
            return None
        return self._by_key[self.default_embedding_id.casefold()]

    def get(self, model_id: str) -> CatalogEntry:
        """The entry for ``model_id`` (case-insensitive).

        Raises:
            ModelNotFound: no entry has that id; the message suggests close matches.
        """
        entry = self._by_key.get(model_id.strip().casefold())
        if entry is not None:
            return entry
        close = difflib.get_close_matches(model_id.strip().casefold(), self._by_key, n=3)
        hint = ""
        if close:
            names = ", ".join(repr(self._by_key[key].id) for key in close)
            hint = f"; did you mean {names}?"
        raise ModelNotFound(
            f"no catalog model is called {model_id!r}{hint} "
            "(`aria model list --all` shows every model)",
            param="model",
        )

    def by_tier(self, tier: Tier) -> tuple[CatalogEntry, ...]:
        """The entries of one tier, in catalog order."""
        return tuple(entry for entry in self.entries if entry.tier is tier)

    def find_by_sha256(self, sha256: str) -> CatalogEntry | None:
        """The entry whose pinned file hash is ``sha256`` (hex, any case), if any."""
        wanted = sha256.strip().lower()
        return next((entry for entry in self.entries if entry.sha256 == wanted), None)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id.strip().casefold() in self._by_key


class _CatalogFile(BaseModel):
    """The top level of a catalog file; entries are validated one by one for clear errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_model: str
    default_embedding_model: str | None = None
    models: list[dict[str, Any]]


def load_catalog(path: Path | None = None) -> Catalog:
    """Load the packaged catalog, or the catalog file at ``path``.

    Raises:
        CatalogError: unreadable or malformed file, an invalid entry (named by id),
            duplicate ids, a default (or default embedding) model that is not in the
            catalog, or a converted entry without a pinned sha256.
        LicenceRejected: an entry's licence is not green (the entry and licence are named).
    """
    source = packaged("catalog.toml") if path is None else path
    raw = read_toml(source, what="catalog file")
    try:
        document = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(
            f"the catalog file {source} is malformed: {validation_summary(exc)}"
        ) from exc
    entries = tuple(_entry(position, item) for position, item in enumerate(document.models, 1))
    embedding = document.default_embedding_model
    return Catalog(
        entries=entries,
        default_model_id=ModelId(document.default_model),
        default_embedding_id=None if embedding is None else ModelId(embedding),
    )


def _entry(position: int, item: dict[str, Any]) -> CatalogEntry:
    try:
        return CatalogEntry.model_validate(item)
    except ValidationError as exc:
        name = item.get("id")
        label = repr(name) if isinstance(name, str) else f"#{position}"
        raise CatalogError(f"catalog entry {label} is invalid: {validation_summary(exc)}") from exc
