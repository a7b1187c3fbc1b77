"""The models view in a real browser: a download from a local hub mirror shows progress to
100% and the model then answers in the chat; an import asks the licence question."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from aria.convert import write_llama_gguf
from tests.api.conftest import Server, running
from tests.dashboard.conftest import Dash, watch
from tests.helpers.hubnode import HUB_MODEL, hub_node, publish_model
from tests.helpers.hubserver import HubServer

# Records, in the page, every percentage a download progress text shows.
_RECORD_PERCENT = """
() => {
  window.__percents = [];
  new MutationObserver((changes) => {
    for (const change of changes) {
      const target = change.target.closest ? change.target : change.target.parentElement;
      for (const el of [target, ...target.querySelectorAll('[data-percent]')]) {
        if (el.dataset && el.dataset.percent) window.__percents.push(Number(el.dataset.percent));
      }
    }
  }).observe(document.getElementById('models-table'),
             {subtree: true, childList: true, attributes: true, attributeFilter: ['data-percent']});
}
"""


@pytest.fixture
def hubbed(tmp_path: Path) -> Iterator[tuple[Server, HubServer]]:
    with HubServer() as hub:
        entry = publish_model(hub, tmp_path)
        with running(hub_node(tmp_path / "home", hub, entry)) as server:
            yield server, hub


def test_a_download_shows_progress_to_100_percent_then_the_model_answers(
    page: Page, hubbed: tuple[Server, HubServer]
) -> None:
    server, hub = hubbed
    hub.faults.throttle_bps = 4_000_000  # ~3 s for the 12 MB file: several updates
    dash = watch(page, server.url)
    dash.open("models")
    page.fill("#models-search", HUB_MODEL)
    row = page.locator(f"tr[data-model='{HUB_MODEL}']")
    assert "not installed" in row.inner_text() and "Apache-2.0" in row.inner_text()
    page.evaluate(_RECORD_PERCENT)
    page.click(f"button[aria-label='Download {HUB_MODEL}']")
    page.wait_for_selector(f".download[data-model='{HUB_MODEL}'] progress")
    speed = page.wait_for_selector(".progress-text:has-text('/s')")
    assert speed is not None
    assert "left" in speed.inner_text() or "%" in speed.inner_text()
    page.wait_for_selector(f"tr[data-model='{HUB_MODEL}'] .pill.ok", timeout=60_000)
    percents: list[int] = page.evaluate("window.__percents")
    assert percents[-1] == 100 and len(set(percents)) >= 3, percents
    assert percents == sorted(percents)
    assert page.is_visible(f"button[aria-label='Verify {HUB_MODEL}']")
    # Usable: the chat's model picker offers it and it answers.
    page.click("#nav a[data-view=chat]")
    page.wait_for_selector(f"#chat-model option[value='{HUB_MODEL}']", state="attached")
    page.select_option("#chat-model", HUB_MODEL)
    page.fill("#chat-input", "hello")
    page.press("#chat-input", "Enter")
    page.wait_for_selector(".msg.assistant:not([data-streaming])", timeout=60_000)
    assert page.locator(".msg.assistant .error").all_inner_texts() == []
    assert HUB_MODEL in page.inner_text(".msg.assistant .badge")
    assert dash.foreign() == []


def test_importing_a_file_asks_the_licence_question_plainly(dash: Dash, tmp_path: Path) -> None:
    path = write_llama_gguf(tmp_path / "my-llama.gguf", seed=11, license="llama3.1")
    page = dash.open("models")
    page.fill("#import-path", str(path))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-confirm")
    question = page.inner_text("#import-confirm")
    assert "llama3.1" in question and "accept its terms" in question and "never shared" in question
    assert page.input_value("#import-id") == "my-llama"
    page.click("#import-confirm button[type=submit]")  # not accepted yet: the form says so
    assert page.evaluate("document.getElementById('import-accept').validity.valueMissing")
    page.check("#import-accept")
    page.click("#import-confirm button[type=submit]")
    page.wait_for_selector("#import-status:has-text('Imported as my-llama')")
    page.fill("#models-search", "my-llama")
    page.wait_for_selector("tr[data-model='my-llama'] .pill.ok")
    assert "yellow" in page.inner_text("tr[data-model='my-llama']")
    page.fill("#import-path", str(tmp_path / "missing.gguf"))
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-result .error:has-text('is not a file')")
