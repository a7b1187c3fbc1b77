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
