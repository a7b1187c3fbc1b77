"""The node view in a real browser: the profile switch persists and the CLI agrees, consent
is saved, a new API key is shown once."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from aria.apikeys import KeyStore
from tests.api.conftest import Server
from tests.dashboard.conftest import Dash


def _cli_json(server: Server, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "aria", *args, "--json"],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(server.node.paths.home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=True,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def _cli_profile(server: Server) -> str:
    active: str = _cli_json(server, "node", "profile", "show")["active"]
    return active


def test_profile_switch_persists_across_reload_and_the_cli_agrees(
    dash: Dash, server: Server
) -> None:
    page = dash.open("node")
    page.wait_for_selector("#profile-efficient:checked")
    assert "efficiency" in page.inner_text("#hw-body")  # the tier advice is there
    page.check("#profile-balanced")
    page.wait_for_selector("#profile-status:has-text('profile balanced is active')")
    page.reload()
    page.wait_for_selector("#profile-balanced:checked")
    assert _cli_profile(server) == "balanced"
    assert server.node.settings.node.profile == "balanced"  # the running API switched at once
    # Keyboard: arrow keys move between the radio buttons and switch again.
    page.focus("#profile-balanced")
    page.keyboard.press("ArrowUp")
    page.wait_for_selector("#profile-status:has-text('profile efficient is active')")
    assert _cli_profile(server) == "efficient"


def test_consent_is_signed_into_the_contract_in_plain_words(dash: Dash, server: Server) -> None:
    page = dash.open("node")
    page.wait_for_selector("#consent-use_peers")
    words = page.inner_text("#consent-form")
    assert "your prompt is sent to a peer" in words.lower() or "prompt is sent to a peer" in words
    version = _cli_json(server, "node", "consent", "show")["version"]
    assert f"version {version}, signed" in words
    page.check("#consent-use_peers")
    page.fill("#consent-max_remote_tokens", "256")
    page.fill("#consent-rpc_peers", " *, ")
    page.click("#consent-form button[type=submit]")
    page.wait_for_selector(f"#consent-status:has-text('Saved as version {version + 1}')")
    shown = _cli_json(server, "node", "consent", "show")  # the CLI sees the signed contract
    assert shown["signed"] is True and shown["version"] == version + 1
    clauses = shown["contract"]
    assert clauses["use"]["prompts_may_leave"] is True and clauses["lend"]["max_tokens"] == 256
    assert clauses["lend"]["split_peers"] == ["*"]
    page.fill("#consent-rpc_peers", "")
    sent = len([url for url in dash.requests if url.endswith("/api/consent")])
    page.fill("#consent-max_remote_tokens", "0")  # below the bound: the form itself refuses
    page.click("#consent-form button[type=submit]")
    assert page.evaluate(
        "document.getElementById('consent-max_remote_tokens').validity.rangeUnderflow"
    )
    assert len([url for url in dash.requests if url.endswith("/api/consent")]) == sent
    page.uncheck("#consent-use_peers")
    page.fill("#consent-max_remote_tokens", "1024")
    page.click("#consent-form button[type=submit]")
    page.wait_for_selector("#consent-status:not(.error):has-text('Saved')")


def test_a_new_api_key_is_shown_once(dash: Dash, server: Server) -> None:
    page = dash.open("node")
    page.fill("#key-name", "phone")
    page.press("#key-name", "Enter")
    page.wait_for_selector("#new-key")
    secret = page.input_value("#new-key")
    assert secret.startswith("aria-") and "will not be shown again" in page.inner_text(
        "#key-secret"
    )
    assert "phone" in page.inner_text("#keys-body") and secret not in page.inner_text("#keys-body")
    page.reload()
    page.wait_for_selector("#keys-body table")
    assert page.locator("#new-key").count() == 0 and secret not in page.content()
    page.check("input[aria-label='Memory for key phone']")  # the key's memory switch
    page.wait_for_selector("#key-secret:has-text('Memory on')")
    found = KeyStore(server.node.paths.api).find(secret)
    assert found is not None and found.memory
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[aria-label='Revoke key phone']")
    page.wait_for_selector("#keys-body:has-text('No API keys yet')")
