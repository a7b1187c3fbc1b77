"""The store's record of one installed model file: ``models/<id>/manifest.json``.

A manifest exists only once the file beside it has been verified, so its presence is
what "installed" means. Pure: values and JSON text in, values out; the store does the I/O.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aria.catalog.entries import CatalogEntry, LicenceId, ModelId, Sha256, Source
from aria.catalog.licences import LicenceClass
from aria.errors import StoreError

__all__ = [
    "MANIFEST_NAME",
    "HashSource",
    "Manifest",
    "SourceFile",
    "manifest_from_json",
    "manifest_to_json",
]

MANIFEST_NAME = "manifest.json"


class HashSource(StrEnum):
    """Where the sha256 the file was checked against came from."""

    CATALOG = "catalog"  # pinned in ARIA's catalog
    HUB_ETAG = "hub-etag"  # advertised by the hub as the LFS object's ETag (catalog pins none)
    WHEEL = "wheel"  # member of a wheel whose sha256 the catalog pins
    IMPORT = "import"  # computed from the operator's own file, twice (before and while copying)
    CONVERTED = "converted"  # written here from source files that were each verified
    PEERS = "peers"  # fetched from peers; the sha256 their publisher signed (not a catalog id)


class SourceFile(BaseModel):
    """One verified file a converted model was made from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    sha256: Sha256
    size_bytes: int = Field(ge=0)
    verified_by: HashSource | str


class Manifest(BaseModel):
    """What the store knows about one verified file; ``entry`` is a snapshot at install time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    model_id: ModelId
    file_name: str = Field(min_length=1)
    size_bytes: int = Field(gt=0)
    sha256: Sha256
    hash_source: HashSource
    licence: LicenceId
    licence_class: LicenceClass
    source: Source
    installed_at: datetime
    verified_at: datetime
    imported: bool
    accepted_licence: bool
    entry: CatalogEntry
    sources: tuple[SourceFile, ...] = ()  # for converted models: what they were made from

    def verified(self, when: datetime) -> Manifest:
        """The same record with a fresh verification time."""
        return self.model_copy(update={"verified_at": when})


def manifest_to_json(manifest: Manifest) -> str:
    """Serialize for ``manifest.json`` (stable, human-readable)."""
    return manifest.model_dump_json(indent=2) + "\n"


def manifest_from_json(text: str, *, where: str) -> Manifest:
    """Parse a manifest.

    Raises:
        StoreError: the text is not a valid manifest (``where`` names the file).
    """
    try:
        return Manifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise StoreError(
            f"{where} is not a valid model manifest ({field}: {first['msg']})"
        ) from exc
