"""Shared fixtures: every test runs against its own temporary ARIA_HOME."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aria.config import AriaPaths

pytest_plugins = ["tests.helpers.rpc_workers"]


@pytest.fixture(autouse=True)
def aria_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh ARIA_HOME per test; nothing ever touches the user's real data dir."""
    home = tmp_path_factory.mktemp("aria_home")
    monkeypatch.setenv("ARIA_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("ARIA_") and name not in {"ARIA_HOME", "ARIA_DEBUG"}:
            monkeypatch.delenv(name)
    yield home


@pytest.fixture
def aria_paths(aria_home: Path) -> AriaPaths:
    paths = AriaPaths(aria_home)
    paths.ensure()
    return paths


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on trio, like the API and the node."""
    return "trio"


@pytest.fixture(scope="session")
def embedding_file() -> Path:
    """The user's installed default embedding model (all-MiniLM-L6-v2), for slow tests."""
    import platformdirs

    from aria.catalog import load_catalog, load_denylist
    from aria.store import ModelStore

    catalog = load_catalog()
    model = catalog.default_embedding_id or ""
    user = ModelStore(
        AriaPaths(Path(platformdirs.user_data_dir("aria", "aria"))), catalog, load_denylist()
    )
    if not user.is_installed(model):
        pytest.skip(f"{model} is not installed (`aria model ensure-default`)")
    return user.path_of(model)
