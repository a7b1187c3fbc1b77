"""The real ``aria`` command, with what tests and benchmarks must replace, from the environment.

Node processes load ARIA's shipped catalog and denylist; a test that needs a catalog id
pinning a generated file, a denylist naming one, a dishonest library provider, or another
chunk size starts ``python tests/helpers/patched_aria.py ARGS`` instead of ``python -m
aria ARGS`` with:

* ``ARIA_TEST_CATALOG`` / ``ARIA_TEST_DENYLIST``: TOML files read instead of the packaged ones;
* ``ARIA_TEST_CHUNK_SIZE``: the library's chunk size (benchmarks measure several);
* ``ARIA_TEST_FORGE=signer|chunks``: this node's library offers forged manifests — signed
  by a stranger, or listing the chunks of another file than the one it names (with
  ``ARIA_TEST_FORGE_AS=MODEL_ID:SHA256``: the catalog file it claims to hold).

Nothing here is used by ARIA itself.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any


def _patch_catalog() -> None:
    import aria.catalog.denylist as denylist
    import aria.catalog.loader as loader

    replaced = {
        "catalog.toml": os.environ.get("ARIA_TEST_CATALOG"),
        "denylist.toml": os.environ.get("ARIA_TEST_DENYLIST"),
    }
    for module in (loader, denylist):
        shipped = vars(module)["packaged"]  # the name each module imported

        def packaged(name: str, shipped: Any = shipped) -> Any:
            override = replaced.get(name)
            return Path(override) if override else shipped(name)

        vars(module)["packaged"] = packaged


def _patch_chunk_size() -> None:
    size = os.environ.get("ARIA_TEST_CHUNK_SIZE")
    if not size:
        return
    import aria.p2p.spec as spec_module

    shipped = spec_module.load_spec()
    patched = dataclasses.replace(
        shipped, library=dataclasses.replace(shipped.library, chunk_size=int(size))
    )
    spec_module.load_spec = lambda: patched  # type: ignore[assignment]


def _patch_forgery() -> None:
    how = os.environ.get("ARIA_TEST_FORGE")
    if not how:
        return
    from aria.library import service
    from aria.library.manifest import seal_manifest
    from aria.p2p.keys import NodeKey
    from aria.p2p.records import seal

    claimed_id, _, claimed_sha = os.environ.get("ARIA_TEST_FORGE_AS", ":").partition(":")
    honest = service.LibraryService._source

    def forged_source(self: service.LibraryService, sha256: str) -> Any:
        real = next(iter(self._published.values()), None)
        if real is None:
            return honest(self, sha256)
        manifest = real.shared.manifest
        if how == "signer":  # the right file, but a stranger signed the provider's manifest
            if sha256 != manifest.sha256:
                return honest(self, sha256)
            envelope = seal("manifest", manifest, NodeKey.generate())
            return service._Published(dataclasses.replace(real.shared, envelope=envelope))
        if sha256 != claimed_sha:  # "chunks": another file's chunk list under the catalog's pin
            return honest(self, sha256)
        claim = manifest.model_copy(update={"model_id": claimed_id, "sha256": claimed_sha})
        envelope = seal_manifest(claim, self._key)
        forged = dataclasses.replace(real.shared, envelope=envelope, manifest=claim)
        return service._Published(forged)

    service.LibraryService._source = forged_source  # type: ignore[method-assign]


if __name__ == "__main__":
    _patch_catalog()
    _patch_chunk_size()
    _patch_forgery()
    from aria.cli.main import run

    sys.argv[0] = "aria"
    run()
