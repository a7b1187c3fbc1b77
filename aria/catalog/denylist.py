"""A transparent denylist: file hashes ARIA refuses to store or serve, each with its reason.

The list ships as ``aria/catalog/data/denylist.toml`` so anyone can read what is blocked and
why (docs/MODELS.md explains how entries are added). The store checks a file's sha256 here
before the file becomes visible; the API and the P2P layer check before serving it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from aria.catalog._files import packaged, read_toml, validation_summary
from aria.catalog.entries import Sha256
from aria.errors import CatalogError, DeniedFile

__all__ = ["DeniedHash", "Denylist", "load_denylist"]


class DeniedHash(BaseModel):
    """One blocked file: its sha256, why it is blocked, and where that was decided."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: Sha256
    reason: str
    reference: str = ""


@dataclass(frozen=True)
class Denylist:
    """The blocked hashes, looked up case-insensitively."""

    entries: tuple[DeniedHash, ...]
    _by_hash: Mapping[str, DeniedHash] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_hash: dict[str, DeniedHash] = {}
        for entry in self.entries:
            if entry.sha256 in by_hash:
                raise CatalogError(f"the denylist lists sha256 {entry.sha256} more than once")
            by_hash[entry.sha256] = entry
        object.__setattr__(self, "_by_hash", by_hash)

    def lookup(self, sha256: str) -> DeniedHash | None:
        """The denylist entry for ``sha256``, if it is blocked."""
        return self._by_hash.get(sha256.strip().lower())

    def check(self, sha256: str, *, subject: str) -> None:
        """Refuse a blocked file.

        Raises:
            DeniedFile: ``sha256`` is on the denylist; the message names ``subject`` and the reason.
        """
        entry = self.lookup(sha256)
        if entry is not None:
            raise DeniedFile(
                f"{subject} is on ARIA's denylist ({entry.reason}) and is never stored or served"
            )

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and self.lookup(sha256) is not None

    def __iter__(self) -> Iterator[DeniedHash]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


class _DenylistFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    denied: tuple[DeniedHash, ...] = ()


def load_denylist(path: Path | None = None) -> Denylist:
    """Load the packaged denylist, or the denylist file at ``path``.

    Raises:
        CatalogError: the file is unreadable, malformed, or lists a hash twice.
    """
    source = packaged("denylist.toml") if path is None else path
    raw = read_toml(source, what="denylist file")
    try:
        document = _DenylistFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(
            f"the denylist file {source} is malformed: {validation_summary(exc)}"
        ) from exc
    return Denylist(entries=document.denied)
