"""The manifest record: pure values and JSON (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aria.catalog.licences import LicenceClass
from aria.errors import StoreError
from aria.store.manifest import HashSource, Manifest, manifest_from_json, manifest_to_json
from tests.store.support import hub_entry

WHEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _manifest() -> Manifest:
    entry = hub_entry("m", sha="a" * 64, size=10)
    return Manifest(
        model_id=entry.id,
        file_name="m.gguf",
        size_bytes=10,
        sha256="a" * 64,
        hash_source=HashSource.CATALOG,
        licence=entry.licence,
        licence_class=LicenceClass.GREEN,
        source=entry.source,
        installed_at=WHEN,
        verified_at=WHEN,
        imported=False,
        accepted_licence=False,
        entry=entry,
    )


def test_round_trip_is_lossless() -> None:
    manifest = _manifest()
    text = manifest_to_json(manifest)
    assert manifest_from_json(text, where="x") == manifest
    assert '"hash_source": "catalog"' in text and '"licence_class": "green"' in text


def test_verified_only_moves_the_verification_time() -> None:
    later = _manifest().verified(WHEN + timedelta(hours=1))
    assert later.verified_at == WHEN + timedelta(hours=1) and later.installed_at == WHEN


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "document"),
        ('{"format": 1}', "model_id"),
        (manifest_to_json(_manifest()).replace("a" * 64, "not-a-hash", 1), "sha256"),
    ],
)
def test_invalid_manifests_name_the_file_and_the_field(text: str, message: str) -> None:
    with pytest.raises(StoreError, match=f"models/m/manifest.json is not a valid.*{message}"):
        manifest_from_json(text, where="models/m/manifest.json")
