"""The licence gate on both sides, table-driven against the shipped catalog and denylist."""

from __future__ import annotations

import pytest

from aria.catalog import DeniedHash, Denylist, load_catalog, load_denylist
from aria.errors import DeniedFile, IntegrityError, LicenceRejected
from aria.library.gate import fetch_refusal, raise_refusal, serve_refusal
from aria.p2p.keys import NodeKey
from tests.library.support import blob, manifest_of

CATALOG = load_catalog()
DENYLIST = load_denylist()
PINNED = CATALOG.get("SmolLM2-135M-Instruct")
UNPINNED = next(e for e in CATALOG if e.sha256 is None)
OTHER = "ab" * 32


@pytest.mark.parametrize(
    ("model_id", "sha256", "licence", "kind"),
    [
        ("my-import", OTHER, "Apache-2.0", None),
        ("my-import", OTHER, "MIT", None),
        ("my-import", OTHER, "TII-Falcon-2.0", None),
        ("my-import", OTHER, "llama3", "licence"),  # yellow: stays on its machine
        ("my-import", OTHER, "cc-by-nc-4.0", "licence"),  # red
        ("my-import", OTHER, "made-up", "licence"),  # unknown = red
        (PINNED.id, str(PINNED.sha256), "ignored: the catalog's counts", None),
        (PINNED.id, OTHER, "Apache-2.0", "pin"),  # a squatter's file under a catalog id
        (UNPINNED.id, OTHER, "MIT", "pin"),  # nobody could verify it
        ("my-import", DENYLIST.entries[0].sha256, "MIT", "denylist"),
    ],
)
def test_what_may_leave_the_machine(
    model_id: str, sha256: str, licence: str, kind: str | None
) -> None:
    refusal = serve_refusal(
        model_id=model_id, sha256=sha256, licence=licence, catalog=CATALOG, denylist=DENYLIST
    )
    assert (refusal.kind if refusal else None) == kind


def test_a_fetcher_refuses_a_manifest_for_another_model_or_file() -> None:
    manifest, _ = manifest_of(blob(2048), NodeKey.generate(), model_id="tiny-lib")
    ok = fetch_refusal(
        manifest, model_id="TINY-lib", sha256=manifest.sha256, catalog=CATALOG, denylist=DENYLIST
    )
    assert ok is None
    for model_id, sha256 in (("other", manifest.sha256), ("tiny-lib", OTHER)):
        refusal = fetch_refusal(
            manifest, model_id=model_id, sha256=sha256, catalog=CATALOG, denylist=DENYLIST
        )
        assert refusal is not None and refusal.kind == "mismatch"
    later = Denylist(entries=(DeniedHash(sha256=manifest.sha256, reason="test: revoked"),))
    refusal = fetch_refusal(
        manifest, model_id="tiny-lib", sha256=manifest.sha256, catalog=CATALOG, denylist=later
    )
    assert refusal is not None and refusal.kind == "denylist"


def test_refusals_become_the_errors_users_see() -> None:
    raise_refusal(None)
    cases = [
        ("my-import", DENYLIST.entries[0].sha256, "MIT", DeniedFile),
        ("my-import", OTHER, "llama3", LicenceRejected),
        (PINNED.id, OTHER, "MIT", IntegrityError),
    ]
    for model_id, sha256, licence, error in cases:
        refusal = serve_refusal(
            model_id=model_id, sha256=sha256, licence=licence, catalog=CATALOG, denylist=DENYLIST
        )
        with pytest.raises(error):
            raise_refusal(refusal)
