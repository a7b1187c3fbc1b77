"""The model catalog: which models ARIA knows, under which licences, and which files it refuses.

* ``entries``   -- the frozen value types (``CatalogEntry``, ``Tier``, ``Capability``...);
* ``licences``  -- the licence policy table (green / yellow / red) and ``classify``;
* ``gate``      -- ``evaluate(licence, use)``: the pure licence decision, and ``require``;
* ``loader``    -- ``load_catalog()`` -> ``Catalog`` (green entries only, enforced on load);
* ``denylist``  -- ``load_denylist()`` -> ``Denylist`` of sha256 hashes with reasons;
* ``runnable``  -- ``runnability(entry, ...)``: which engine of this node runs an entry.
"""

from __future__ import annotations

from aria.catalog.denylist import DeniedHash, Denylist, load_denylist
from aria.catalog.entries import (
    Capability,
    CatalogEntry,
    CheckpointFile,
    ConvertedSource,
    HuggingFaceSource,
    LicenceId,
    LocalSource,
    MemoryFloor,
    ModelId,
    PeerSource,
    Source,
    Tier,
    WheelSource,
)
from aria.catalog.gate import Allowed, Forbidden, NeedsAcceptance, Use, Verdict, evaluate, require
from aria.catalog.licences import LicenceClass, canonical_licence, classify
from aria.catalog.loader import Catalog, load_catalog
from aria.catalog.runnable import Engine, Runnability, runnability

__all__ = [
    "Allowed",
    "Capability",
    "Catalog",
    "CatalogEntry",
    "CheckpointFile",
    "ConvertedSource",
    "DeniedHash",
    "Engine",
    "Denylist",
    "Forbidden",
    "HuggingFaceSource",
    "LicenceClass",
    "LicenceId",
    "LocalSource",
    "PeerSource",
    "MemoryFloor",
    "ModelId",
    "NeedsAcceptance",
    "Runnability",
    "Source",
    "Tier",
    "Use",
    "Verdict",
    "WheelSource",
    "canonical_licence",
    "classify",
    "evaluate",
    "load_catalog",
    "load_denylist",
    "require",
    "runnability",
]
