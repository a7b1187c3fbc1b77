"""The library's licence gate, applied on both sides of a transfer (pure).

A node serves (and publishes) a file only when peers may have it, and a fetcher takes
a manifest only under the same rules, checked against its *own* catalog and denylist:

* never a file on ARIA's denylist, whoever offers it;
* only a licence the gate allows for :attr:`~aria.catalog.Use.SHARE` (green: MIT,
  Apache-2.0, BSD, TII Falcon) — yellow imports stay on their machine;
* for a catalog id, the file must be the one the catalog pins (its sha256), and a catalog
  id without a pin is never exchanged: no peer could prove which file it is.

Non-catalog files (the operator's own green imports) are vouched for by their publisher's
signature; the fetcher checks the licence the file itself declares once it holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aria.catalog import Allowed, Catalog, CatalogEntry, Denylist, Use, evaluate
from aria.errors import DeniedFile, IntegrityError, LicenceRejected, ModelNotFound
from aria.library.manifest import LibraryManifest

__all__ = ["GateRefusal", "catalog_entry", "fetch_refusal", "raise_refusal", "serve_refusal"]

RefusalKind = Literal["denylist", "licence", "pin", "mismatch"]


@dataclass(frozen=True)
class GateRefusal:
    kind: RefusalKind
    message: str


def catalog_entry(catalog: Catalog, model_id: str) -> CatalogEntry | None:
    try:
        return catalog.get(model_id)
    except ModelNotFound:
        return None


def serve_refusal(
    *, model_id: str, sha256: str, licence: str, catalog: Catalog, denylist: Denylist
) -> GateRefusal | None:
    """Why this file must not leave the machine, or None when it may."""
    denied = denylist.lookup(sha256)
    if denied is not None:
        return GateRefusal("denylist", f"{model_id} is on ARIA's denylist ({denied.reason})")
    entry = catalog_entry(catalog, model_id)
    verdict = evaluate(entry.licence if entry is not None else licence, Use.SHARE)
    if not isinstance(verdict, Allowed):
        return GateRefusal("licence", f"{model_id}: {verdict.reason}")
    if entry is None:
        return None
    if entry.sha256 is None:
        return GateRefusal(
            "pin",
            f"the catalog pins no sha256 for {entry.id}, so no peer could verify the file; "
            "it is fetched from its hub only",
        )
    if entry.sha256 != sha256.lower():
        return GateRefusal("pin", f"the file offered as {entry.id} is not the one the catalog pins")
    return None


def fetch_refusal(
    manifest: LibraryManifest,
    *,
    model_id: str,
    sha256: str,
    catalog: Catalog,
    denylist: Denylist,
) -> GateRefusal | None:
    """Why a fetcher must refuse ``manifest`` when it asked for ``model_id``'s file
    ``sha256``, or None."""
    if manifest.model_id.casefold() != model_id.casefold():
        described = manifest.model_id
        return GateRefusal("mismatch", f"the manifest describes {described}, not {model_id}")
    if manifest.sha256 != sha256:
        return GateRefusal("mismatch", f"the manifest describes another file than {sha256[:12]}…")
    return serve_refusal(
        model_id=manifest.model_id,
        sha256=manifest.sha256,
        licence=manifest.licence,
        catalog=catalog,
        denylist=denylist,
    )


def raise_refusal(refusal: GateRefusal | None) -> None:
    """Raise the error a user sees for ``refusal`` (nothing when it is None).

    Raises:
        DeniedFile, LicenceRejected, IntegrityError: by the refusal's kind.
    """
    if refusal is None:
        return
    if refusal.kind == "denylist":
        raise DeniedFile(refusal.message)
    if refusal.kind == "licence":
        raise LicenceRejected(refusal.message)
    raise IntegrityError(refusal.message)
