"""Browser tests: Playwright (pytest-playwright's ``page``) driving Debian's Chromium.

The browser is the system's Chromium (:mod:`tests.helpers.browser`: ``playwright
install`` cannot reach its download host here). Every test's page is watched: a
request to any origin other than the server under test fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, Request, sync_playwright

from tests.api.conftest import Server, model_files, server
from tests.api.test_api_smollm import smollm
from tests.helpers.browser import AXE, CHROMIUM_FLAGS, find_chromium

__all__ = ["AXE", "Dash", "model_files", "server", "smollm"]


def _browser() -> str:
    found = find_chromium()
    if found is not None:
        return found
    message = "no Chromium for the browser tests: run `bash scripts/system_deps.sh`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# pytest-playwright keeps one Playwright for the whole session, and a started sync
# Playwright leaves its asyncio loop marked as running in this thread: every later test
# that calls asyncio.run() would fail. These overrides start and stop it per module.


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    started = sync_playwright().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright) -> BrowserType:
    return playwright.chromium


@pytest.fixture(scope="module")
def browser(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any]
) -> Iterator[Browser]:
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": _browser(), "args": CHROMIUM_FLAGS}


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}}


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


@pytest.fixture
def dash(page: Page, server: Server) -> Iterator[Dash]:
    """The page, watched, on the module's API (``server``: tiny generated models)."""
    watched = watch(page, server.url)
    yield watched
    assert watched.foreign() == [], "the page asked another origin (or failed)"
