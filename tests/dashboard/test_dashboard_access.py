"""Who and what the page talks to, and who can use it: keys, same-origin only, quiet while
idle, accessible (axe-core in the page), usable at phone width and in both themes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, Page, Route

from aria.api import ServerConfig
from aria.apikeys import KeyStore
from tests.api.conftest import Server, make_node, running
from tests.dashboard.conftest import AXE, Dash, watch

VIEWS = ("chat", "node", "models", "network", "bench")


@pytest.fixture(scope="module")
def keyed(
    tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]
) -> Iterator[tuple[Server, str]]:
    node = make_node(tmp_path_factory.mktemp("dash_keys"), {"tiny": model_files["tiny"]})
    _, secret = KeyStore(node.paths.api).create("owner")
    with running(node, ServerConfig("127.0.0.1", 0, require_keys=True)) as server:
        yield server, secret


def test_with_keys_required_the_page_asks_for_one_and_refuses_a_wrong_one(
    page: Page, keyed: tuple[Server, str]
) -> None:
    server, secret = keyed
    dash = watch(page, server.url)
    page.goto(server.url + "/")
    page.wait_for_selector("#view-login:not([hidden])")
    assert page.is_hidden("#nav") and page.evaluate("document.activeElement.id") == "login-key"
    page.fill("#login-key", "aria-not-a-real-key")
    page.press("#login-key", "Enter")
    page.wait_for_selector("#login-error:has-text('That key was refused')")
    assert page.is_visible("#view-login") and page.is_hidden("#view-chat")
    page.fill("#login-key", secret)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#view-chat:not([hidden])")
    page.wait_for_selector("#chat-model option[value=tiny]", state="attached")
    # The key stays for this tab only (unless "remember" is ticked), and signing out forgets it.
    assert page.evaluate("sessionStorage.getItem('aria.apiKey')") == secret
    assert page.evaluate("localStorage.getItem('aria.apiKey')") is None
    page.click("#sign-out")
    page.wait_for_selector("#view-login:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('aria.apiKey')") is None
    assert dash.foreign() == []


def test_revoking_the_page_s_own_key_sends_it_back_to_sign_in(
    page: Page, keyed: tuple[Server, str]
) -> None:
    server, _ = keyed
    _, secret = KeyStore(server.node.paths.api).create("short-lived")
    page.goto(server.url + "/#node")
    page.fill("#login-key", secret)
    page.check("#login-remember")
    page.press("#login-key", "Enter")
    page.wait_for_selector("button[aria-label='Revoke key short-lived']")
    assert page.evaluate("localStorage.getItem('aria.apiKey')") == secret
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[aria-label='Revoke key short-lived']")
    page.wait_for_selector("#view-login:not([hidden])")
    assert "refused" in page.inner_text("#login-error")


def test_the_page_never_asks_another_host_and_is_quiet_when_idle(dash: Dash) -> None:
    blocked: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith(dash.url + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    dash.page.context.route("**/*", guard)
    page = dash.open("chat")
    page.select_option("#chat-model", "tiny")
    page.fill("#chat-input", "hi")
    page.press("#chat-input", "Enter")
    page.wait_for_selector(".msg.assistant .badge")
    for view in VIEWS:
        dash.open(view)
    dash.open("chat")
    time.sleep(1)
    before = len(dash.requests)
    time.sleep(5)  # idle: the one live connection stays open, nothing else is asked
    assert dash.requests[before:] == []
    assert blocked == [] and dash.foreign() == []
    assert {url.split("/", 3)[3].split("?")[0] for url in dash.requests} >= {
        "",
        "ui/main.js",
        "ui/app.css",
        "api/events",
        "v1/chat/completions",
        "api/catalog",
        "api/hardware",
    }


def _axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_every_view_passes_axe_without_serious_violations(
    browser: Browser, server: Server, scheme: Literal["light", "dark"], width: int
) -> None:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `make setup-dev`")
    # CSP would refuse the injected axe script: this context bypasses it (tests only).
    context = browser.new_context(
        bypass_csp=True, color_scheme=scheme, viewport={"width": width, "height": 900}
    )
    try:
        page = context.new_page()
        dash = watch(page, server.url)
        page.goto(server.url + "/#chat")
        page.wait_for_selector("#chat-model option[value=tiny]", state="attached")
        page.select_option("#chat-model", "tiny")
        page.fill("#chat-input", "hello **world**")
        page.press("#chat-input", "Enter")
        page.wait_for_selector(".msg.assistant .badge")
        found = {}
        for view in VIEWS:
            dash.open(view)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width + 1, f"{view} scrolls sideways at {width} px"
            violations = _axe(page)
            if violations:
                found[view] = [
                    (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations
                ]
        assert found == {}
        assert (
            page.evaluate("document.documentElement.scrollWidth") <= width + 1
        )  # no sideways scroll
        assert dash.foreign() == []
    finally:
        context.close()


def test_the_views_can_be_used_with_the_keyboard(dash: Dash) -> None:
    page = dash.open("chat")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.view") == "chat"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the second link: the node view
    page.wait_for_selector("#view-node:not([hidden])")
    assert page.get_attribute("#nav a[data-view=node]", "aria-current") == "page"
    dash.open("chat")
    page.select_option("#chat-model", "tiny")
    page.focus("#chat-input")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#chat-input") == "first line\nsecond line"
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.user:has-text('second line')")
    page.wait_for_selector(".msg.assistant .badge")
