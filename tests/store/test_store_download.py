"""Hub downloads against a real local HTTP server speaking the hub protocol."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest

from aria.config import AriaPaths
from aria.errors import (
    DeniedFile,
    DownloadError,
    InsufficientDiskSpace,
    IntegrityError,
    StoreBusy,
)
from aria.store import HashSource, HubConfig, RetryPolicy
from tests.helpers.hubserver import HubServer
from tests.store.conftest import StoreFactory
from tests.store.support import FAST_RETRY, denylist_of, hub_entry, payload, sha256

REPO, FILE = "aria-test/tiny", "tiny.gguf"


def _fast_retry(*, read_timeout_s: float, attempts: int) -> RetryPolicy:
    return dataclasses.replace(FAST_RETRY, read_timeout_s=read_timeout_s, attempts=attempts)


def _nothing_visible(paths: AriaPaths, model_id: str) -> None:
    folder = paths.models / model_id
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == [], leftovers


def test_download_verifies_and_records_the_manifest(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(300_000)
    hub.add(REPO, FILE, data)
    seen: list[tuple[int, int]] = []
    store = make_store(hub_entry("tiny", sha=sha256(data), size=len(data)))

    model = store.download("tiny", progress=lambda done, total: seen.append((done, total)))

    assert model.path == aria_paths.models / "tiny" / FILE
    assert model.path.read_bytes() == data
    assert model.sha256 == sha256(data) and model.size_bytes == len(data)
    assert seen[0] == (0, len(data)) and seen[-1] == (len(data), len(data))
    manifest = json.loads((aria_paths.models / "tiny" / "manifest.json").read_text())
    assert manifest["hash_source"] == "catalog"
    assert manifest["licence"] == "Apache-2.0" and manifest["licence_class"] == "green"
    assert manifest["source"]["repo"] == REPO and manifest["imported"] is False
    assert sorted(p.name for p in model.path.parent.iterdir()) == ["manifest.json", FILE]
    assert store.is_installed("tiny") and store.path_of("tiny") == model.path
    assert [m.model_id for m in store.installed()] == ["tiny"]


def test_second_download_is_a_no_op(hub: HubServer, make_store: StoreFactory) -> None:
    hub.add(REPO, FILE, payload(50_000))
    store = make_store(hub_entry("tiny"))
    first = store.download("tiny")
    requests = len(hub.hits)
    assert store.download("tiny") == first
    assert len(hub.hits) == requests


def test_without_catalog_hash_the_lfs_etag_is_the_expected_sha256(
    hub: HubServer, make_store: StoreFactory
) -> None:
    data = payload(40_000, seed=3)
    hub.add(REPO, FILE, data)
    model = make_store(hub_entry("tiny")).download("tiny")
    assert model.manifest.hash_source is HashSource.HUB_ETAG
    assert model.sha256 == sha256(data)


def test_dropped_connection_resumes_within_the_call(
    hub: HubServer, make_store: StoreFactory
) -> None:
    data = payload(1_500_000, seed=1)
    hub.add(REPO, FILE, data)
    hub.faults.cuts = [400_000, 400_000]

    model = make_store(hub_entry("tiny", sha=sha256(data))).download("tiny")

    assert model.path.read_bytes() == data
    assert hub.range_gets() == ["bytes=400000-", "bytes=800000-"]


def test_a_server_that_always_drops_still_completes_while_progressing(
    hub: HubServer, make_store: StoreFactory
) -> None:
    data = payload(600_000, seed=2)
    hub.add(REPO, FILE, data)
    hub.faults.always_cut_after = 100_000
    model = make_store(hub_entry("tiny")).download("tiny")
    assert model.path.read_bytes() == data
    assert len(hub.range_gets()) == 5


def test_no_progress_gives_up_keeps_the_part_and_the_next_call_resumes(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(500_000, seed=4)
    hub.add(REPO, FILE, data)
    store = make_store(hub_entry("tiny", sha=sha256(data)))
    hub.faults.cuts, hub.faults.always_cut_after = [200_000], 0  # then the network is gone

    with pytest.raises(DownloadError, match="200,000 of 500,000 bytes are kept"):
        store.download("tiny")
    assert (aria_paths.models / "tiny" / f"{FILE}.part").stat().st_size == 200_000
    assert not store.is_installed("tiny")

    hub.faults.always_cut_after = None
    model = store.download("tiny")
    assert model.path.read_bytes() == data
    assert hub.range_gets()[-1] == "bytes=200000-"


_CHILD = """
import sys
from pathlib import Path
from aria.catalog.denylist import Denylist
from aria.catalog.entries import CatalogEntry
from aria.catalog.loader import Catalog
from aria.config import AriaPaths
from aria.store import HubConfig, ModelStore

entry = CatalogEntry.model_validate_json(sys.argv[1])
catalog = Catalog(entries=(entry,), default_model_id=entry.id)
store = ModelStore(AriaPaths(Path(sys.argv[2])), catalog, Denylist(entries=()),
                   hub_config=HubConfig(endpoint=sys.argv[3]))
store.download(entry.id)
"""


def test_a_killed_download_resumes_from_its_part_file(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(2_000_000, seed=5)
    hub.add(REPO, FILE, data)
    entry = hub_entry("tiny", sha=sha256(data), size=len(data))
    hub.faults.throttle_bps = 400_000
    part = aria_paths.models / "tiny" / f"{FILE}.part"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, entry.model_dump_json(), str(aria_paths.home), hub.url],
        cwd=Path(__file__).parents[2],
    )
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size >= 300_000):
            assert child.poll() is None, "the download process ended early"
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert 300_000 <= kept < len(data)

    hub.faults.throttle_bps = None
    seen: list[int] = []
    model = make_store(entry).download("tiny", progress=lambda done, _total: seen.append(done))

    assert seen[0] == kept  # resumed, not restarted
    assert hub.range_gets() == [f"bytes={kept}-"]
    assert model.path.read_bytes() == data


def test_a_body_that_does_not_match_the_advertised_hash_is_never_used(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(200_000, seed=6)
    corrupt = bytearray(data)
    corrupt[123_456] ^= 0xFF
    hub.add(REPO, FILE, data, served=bytes(corrupt))
    store = make_store(hub_entry("tiny"))

    with pytest.raises(IntegrityError, match="deleted and will not be used"):
        store.download("tiny")

    _nothing_visible(aria_paths, "tiny")
    assert not store.is_installed("tiny")


def test_a_corrupt_body_against_a_catalog_pin_is_rejected_too(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(100_000, seed=7)
    hub.add(REPO, FILE, data, served=data[::-1])
    with pytest.raises(IntegrityError, match=sha256(data)):
        make_store(hub_entry("tiny", sha=sha256(data))).download("tiny")
    _nothing_visible(aria_paths, "tiny")


def test_hub_advertising_another_file_than_the_catalog_pins_downloads_nothing(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    hub.add(REPO, FILE, payload(10_000, seed=8))
    store = make_store(hub_entry("tiny", sha=sha256(b"the file the catalog means")))
    with pytest.raises(IntegrityError, match="than the catalog pins"):
        store.download("tiny")
    assert [hit.method for hit in hub.hits] == ["HEAD"]
    _nothing_visible(aria_paths, "tiny")


def test_a_file_without_any_known_sha256_is_refused(
    hub: HubServer, make_store: StoreFactory
) -> None:
    hub.add(REPO, FILE, payload(1_000), lfs=False)  # git file: its ETag is a sha1
    with pytest.raises(IntegrityError, match="installs only files it can verify"):
        make_store(hub_entry("tiny")).download("tiny")


@pytest.mark.parametrize(
    ("entry_kw", "message"),
    [
        ({"repo": "aria-test/absent"}, "repository aria-test/absent does not exist"),
        ({"revision": "v9"}, "revision 'v9' of aria-test/tiny does not exist"),
        ({"file": "other.gguf"}, "other.gguf is not in aria-test/tiny@main"),
    ],
)
def test_not_found_errors_say_what_is_missing(
    hub: HubServer, make_store: StoreFactory, entry_kw: dict[str, str], message: str
) -> None:
    hub.add(REPO, FILE, payload(1_000))
    where = {"repo": REPO, "file": FILE, "revision": "main", **entry_kw}
    entry = hub_entry("tiny", repo=where["repo"], file=where["file"], revision=where["revision"])
    with pytest.raises(DownloadError, match=message):
        make_store(entry).download("tiny")


def test_gated_repo_needs_hf_token(
    hub: HubServer, make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(20_000, seed=9)
    hub.add("aria-test/gated", FILE, data)
    hub.gate("aria-test/gated")
    entry = hub_entry("gated", repo="aria-test/gated")
    with pytest.raises(DownloadError, match="gated.*HF_TOKEN"):
        make_store(entry).download("gated")

    monkeypatch.setenv("HF_TOKEN", hub.token)
    store = make_store(entry, hub_config=None)  # HF_ENDPOINT and HF_TOKEN from the environment
    assert store.download("gated").path.read_bytes() == data
    assert hub.hits[-1].authorization == f"Bearer {hub.token}"


def test_private_repo_error_mentions_hf_token(hub: HubServer, make_store: StoreFactory) -> None:
    hub.add("aria-test/private", FILE, payload(1_000))
    hub.make_private("aria-test/private")
    with pytest.raises(DownloadError, match="private.*HF_TOKEN"):
        make_store(hub_entry("p", repo="aria-test/private")).download("p")


def test_unreachable_hub_is_a_clear_error(make_store: StoreFactory, aria_paths: AriaPaths) -> None:
    with HubServer() as gone:
        url = gone.url
    store = make_store(hub_entry("tiny"), hub_config=HubConfig(endpoint=url, timeout_s=2))
    with pytest.raises(DownloadError, match=f"cannot reach {url}"):
        store.download("tiny")


def test_a_stalled_server_times_out_and_gives_up(hub: HubServer, make_store: StoreFactory) -> None:
    hub.add(REPO, FILE, payload(100_000))
    hub.faults.stall_s = 5.0  # headers, then silence
    store = make_store(hub_entry("tiny"), retry=_fast_retry(read_timeout_s=0.3, attempts=2))
    with pytest.raises(DownloadError, match="timeout"):
        store.download("tiny")


def test_full_disk_is_refused_before_any_byte_moves(
    hub: HubServer, make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add(REPO, FILE, payload(300_000))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(InsufficientDiskSpace, match="free some space"):
        make_store(hub_entry("tiny")).download("tiny")
    assert [hit.method for hit in hub.hits] == ["HEAD"]


def test_two_concurrent_downloads_cannot_corrupt_the_file(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(600_000, seed=10)
    hub.add(REPO, FILE, data)
    hub.faults.throttle_bps = 1_000_000
    entry = hub_entry("tiny", sha=sha256(data))
    first, second = make_store(entry), make_store(entry, lock_timeout_s=0.2)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(first.download("tiny")))
    worker.start()
    part = aria_paths.models / "tiny" / f"{FILE}.part"
    while not (part.exists() and part.stat().st_size > 0):
        time.sleep(0.01)

    with pytest.raises(StoreBusy, match=r"\(pid \d+\) is downloading tiny"):
        second.download("tiny")
    worker.join(timeout=30)

    assert outcome and second.get("tiny").path.read_bytes() == data
    assert len([hit for hit in hub.hits if hit.method == "GET"]) == 1


def test_cdn_redirects_are_followed(hub: HubServer, make_store: StoreFactory) -> None:
    data = payload(70_000, seed=11)
    hub.add(REPO, FILE, data)
    hub.redirect_lfs()
    hub.faults.cuts = [30_000]
    model = make_store(hub_entry("tiny")).download("tiny")
    assert model.path.read_bytes() == data
    assert any(hit.path.startswith("/cdn/") and hit.range for hit in hub.hits)


def test_a_server_ignoring_range_restarts_cleanly(hub: HubServer, make_store: StoreFactory) -> None:
    data = payload(300_000, seed=12)
    hub.add(REPO, FILE, data)
    hub.faults.cuts, hub.faults.ignore_range = [120_000], True
    model = make_store(hub_entry("tiny")).download("tiny")
    assert model.path.read_bytes() == data


def test_a_denylisted_hash_is_never_stored(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    data = payload(5_000, seed=13)
    hub.add(REPO, FILE, data)
    store = make_store(hub_entry("tiny"), denylist=denylist_of(sha256(data)))
    with pytest.raises(DeniedFile, match="denylist"):
        store.download("tiny")
    _nothing_visible(aria_paths, "tiny")


def test_a_stale_part_of_another_revision_is_discarded(
    hub: HubServer, make_store: StoreFactory, aria_paths: AriaPaths
) -> None:
    old, new = payload(100_000, seed=14), payload(100_000, seed=15)
    hub.add(REPO, FILE, old)
    hub.faults.cuts, hub.faults.always_cut_after = [50_000], 0
    store = make_store(hub_entry("tiny"))
    with pytest.raises(DownloadError):
        store.download("tiny")
    hub.add(REPO, FILE, new)  # the repo moved on
    hub.faults.always_cut_after = None
    resumed_before = len(hub.range_gets())
    assert store.download("tiny").path.read_bytes() == new
    assert len(hub.range_gets()) == resumed_before  # started from byte 0
