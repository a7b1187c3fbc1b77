"""Browser tests: Playwright (pytest-playwright's ``page``) driving Debian's Chromium.

``playwright install`` cannot reach its download host here, so the browser is the
system's ``chromium-headless-shell`` (scripts/system_deps.sh installs it), started with
the flags that keep it from calling Google's services on its own. Every test's page
is watched: a request to any origin other than the server under test fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Request

from tests.api.conftest import Server, make_node, model_files, running

__all__ = ["AXE", "Dash", "model_files"]

_BROWSERS = ("chromium-headless-shell", "chromium")
_FLAGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
]

# axe-core, fetched from npm by `make setup-dev` (test-only; see the Makefile).
AXE = (
    Path(__file__).resolve().parents[2]
    / ".venv"
    / "npm"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)


def _browser() -> str:
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    message = "no Chromium for the browser tests: run `bash scripts/system_deps.sh`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": _browser(), "args": _FLAGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@dataclass
class Dash:
    """The page under test, pointed at one ARIA server, and every URL it requested."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)

    def open(self, view: str = "chat") -> Page:
        self.page.goto(f"{self.url}/#{view}")
        self.page.wait_for_selector(f"#view-{view}[data-ready]:not([hidden])")
        return self.page

    def foreign(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.url + "/")]


def watch(page: Page, url: str) -> Dash:
    dash = Dash(page, url)

    def record(request: Request) -> None:
        dash.requests.append(request.url)

    page.on("request", record)
    page.on("pageerror", lambda error: dash.requests.append(f"pageerror: {error}"))
    return dash


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[Server]:
    """A real API (tiny generated models ``tiny`` and ``slow``) with the dashboard."""
    node = make_node(tmp_path_factory.mktemp("dash_home"), model_files)
    with running(node) as server:
        yield server


@pytest.fixture
def dash(page: Page, served: Server) -> Iterator[Dash]:
    watched = watch(page, served.url)
    yield watched
    assert watched.foreign() == [], "the page asked another origin (or failed)"
