"""Chat in a real browser: streamed text, the badge, stop, conversations kept, and model
output that tries to be HTML staying text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from tests.api.conftest import Server
from tests.api.test_api_smollm import MODEL
from tests.dashboard.conftest import Dash, watch

# Records, in the page, the length of the answer's text each time it changes.
_RECORD_GROWTH = """
() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const answer = document.querySelector('.msg.assistant[data-streaming] .content');
    if (answer) window.__lengths.push([performance.now(), answer.textContent.length]);
  }).observe(document.getElementById('chat-log'),
             {subtree: true, childList: true, characterData: true});
}
"""


def _ask(page: Page, text: str, model: str | None = None) -> None:
    if model is not None:
        page.select_option("#chat-model", model)
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")  # the keyboard sends; Shift+Enter would add a line


@pytest.mark.slow
def test_the_embedded_model_streams_into_the_page_with_a_badge(page: Page, smollm: Server) -> None:
    dash = watch(page, smollm.url)
    dash.open("chat")
    page.evaluate(_RECORD_GROWTH)
    _ask(page, "Write three sentences about the sea.")
    page.wait_for_selector(".msg.assistant .badge", timeout=120_000)
    lengths: list[list[float]] = page.evaluate("window.__lengths")
    sizes = [size for _, size in lengths]
    # The text grew step by step, not in one piece (it may shrink by a character when
    # markdown closes a pair, e.g. the second "**" of a bold run).
    assert len(set(sizes)) >= 3 and sizes[-1] > sizes[0], sizes
    assert lengths[-1][0] - lengths[0][0] > 50  # over time (ms), as tokens arrived
    badge = page.inner_text(".msg.assistant .badge")
    assert MODEL in badge and "on this machine" in badge and "tokens" in badge and "tok/s" in badge
    tier = page.inner_text(".msg.assistant .badge .tier")
    assert tier in {"efficiency", "quality"}
    assert "Why this model" in page.inner_text(".msg.assistant .reason")
    assert page.inner_text(".msg.assistant .content").strip()
    # Conversations are kept in this browser: a reload shows the same exchange.
    page.reload()
    page.wait_for_selector(".msg.assistant .badge")
    assert "the sea" in page.inner_text(".conv-list")
    assert MODEL in page.inner_text(".msg.assistant .badge")
    assert dash.foreign() == []


NO_END = {"2": -100, "4": -100}  # </s> and <|im_end|> of the generated models


def _never_ends(route: Route) -> None:
    """The untrained ``slow`` model may end its answer at once; with its end tokens banned
    it streams until the page stops it."""
    body = json.loads(route.request.post_data or "{}")
    route.continue_(post_data=json.dumps({**body, "logit_bias": NO_END}))


def test_stop_ends_an_answer_and_keeps_what_came(dash: Dash) -> None:
    page = dash.open("chat")
    page.route("**/v1/chat/completions", _never_ends)
    page.click("#chat-new")
    _ask(page, "Count from one to a thousand.", model="slow")
    page.wait_for_selector(".msg.assistant[data-streaming] .content:not(:empty)")
    page.click("#chat-stop")
    page.wait_for_selector(".msg.assistant .pill.warn")
    assert page.inner_text(".msg.assistant .pill.warn") == "stopped"
    assert page.is_hidden("#chat-stop") and page.is_enabled("#chat-send")
    assert "slow" in page.inner_text(".msg.assistant .badge")


HOSTILE = (
    "Here you go:\n\n<script>window.__pwned = 'script'</script>\n\n"
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n'
    "[a link](javascript:window.__pwned='link') and [a real one](https://example.org/docs)\n\n"
    "![tracking pixel](https://tracker.example/p.gif)\n\n"
    "```html\n<b onmouseover=\"window.__pwned='b'\">bold?</b>\n```\n\n"
    '**bold** and `code` and <iframe src="https://evil.example"></iframe>'
)


def _fake_answer(route: Route) -> None:
    """The API answering with text a hostile model could write (one SSE chunk per word)."""
    first, *rest = HOSTILE.split(" ")
    pieces = [
        {"choices": [{"index": 0, "delta": {"content": text}}]}
        for text in [first, *(" " + word for word in rest)]
    ]
    count = len(pieces)
    usage = {
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": count, "total_tokens": 3 + count},
    }
    body = "".join(f"data: {json.dumps(p)}\n\n" for p in [*pieces, usage]) + "data: [DONE]\n\n"
    route.fulfill(
        status=200,
        body=body,
        headers={
            "content-type": "text/event-stream",
            "x-aria-route": "model=tiny; category=chat; reason=<b>trusted</b> router text",
            "x-aria-memory": "used=m_1a2b,m_3c4d; saved=m_5e6f",
        },
    )


def test_a_model_answer_with_html_is_shown_as_text(dash: Dash) -> None:
    page = dash.open("chat")
    page.route("**/v1/chat/completions", _fake_answer)
    page.click("#chat-new")
    _ask(page, "show me some html", model="tiny")
    page.wait_for_selector(".msg.assistant .badge")
    answer = page.locator(".msg.assistant .content")
    text = answer.inner_text()
    assert "<script>window.__pwned = 'script'</script>" in text
    assert '<img src="x" onerror=' in text and "<iframe" in text
    assert page.evaluate("window.__pwned") is None
    assert answer.locator("script, img, iframe, b[onmouseover]").count() == 0
    links = answer.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    # links to click, never fetched by the page: the image and the iframe's address included
    assert links == [
        "https://example.org/docs",
        "https://tracker.example/p.gif",
        "https://evil.example/",
    ]
    assert "javascript:" in text  # the refused link stays visible as written
    assert (
        answer.locator("strong").inner_text() == "bold" and answer.locator("pre code").count() == 1
    )
    assert "<b>trusted</b>" in page.inner_text(".msg.assistant .reason")  # headers are text too
    assert "memory: 2 memories used, 1 saved" in page.inner_text(".msg.assistant .badge")
    page.unroute("**/v1/chat/completions")


_CASES: list[tuple[str, dict[str, Any]]] = [
    ("<script>alert(1)</script>", {"tags": [], "text": "<script>alert(1)</script>"}),
    ("[x](javascript:alert(1))", {"tags": [], "text": "[x](javascript:alert(1))"}),
    ("[x](JaVaScRiPt:alert(1))", {"tags": [], "text": "[x](JaVaScRiPt:alert(1))"}),
    (
        "[x](data:text/html,<script>1</script>)",
        {"tags": [], "text": "[x](data:text/html,<script>1</script>)"},
    ),
    ("[x](/relative)", {"tags": [], "text": "[x](/relative)"}),
    ("<http://a.example/?q=<script>>", {"tags": ["A"], "text": None}),
    ("**<i>b</i>**", {"tags": ["STRONG"], "text": "<i>b</i>"}),
    ("- one\n- two\n  - nested", {"tags": ["UL", "LI", "LI", "UL", "LI"], "text": None}),
    (
        "| a | b |\n|---|---|\n| <u>1</u> | 2 |",
        {
            "tags": ["DIV", "TABLE", "THEAD", "TR", "TH", "TH", "TBODY", "TR", "TD", "TD"],
            "text": None,
        },
    ),
    ("snake_case_name and *em*", {"tags": ["EM"], "text": "snake_case_name and em"}),
]


def test_the_markdown_renderer_only_builds_its_own_elements(dash: Dash) -> None:
    page = dash.open("chat")
    allowed = {
        "P",
        "BR",
        "PRE",
        "CODE",
        "STRONG",
        "EM",
        "DEL",
        "UL",
        "OL",
        "LI",
        "BLOCKQUOTE",
        "HR",
        "TABLE",
        "THEAD",
        "TBODY",
        "TR",
        "TH",
        "TD",
        "A",
        "DIV",
        "BUTTON",
    }
    for source, expected in _CASES:
        rendered = page.evaluate(
            """async (source) => {
                const { renderMarkdown } = await import('/ui/markdown.js');
                const box = document.createElement('div');
                box.append(renderMarkdown(source));
                const elements = [...box.querySelectorAll('*')];
                return {
                    tags: elements.map(e => e.tagName).filter(t => t !== 'P'),
                    attributes: elements.flatMap(e => [...e.attributes].map(a => a.name)),
                    hrefs: [...box.querySelectorAll('a')].map(a => a.href),
                    text: box.textContent,
                };
            }""",
            source,
        )
        assert set(rendered["tags"]) <= allowed, source
        assert rendered["tags"] == expected["tags"], source
        assert not any(
            name.startswith("on") or name in {"style", "src"} for name in rendered["attributes"]
        ), source
        assert all(href.startswith(("http:", "https:", "mailto:")) for href in rendered["hrefs"]), (
            source
        )
        if expected["text"] is not None:
            assert rendered["text"] == expected["text"], source
