"""Views that follow real processes: a second node joining the network view, and a
benchmark run from the page with its progress and charts."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.api.conftest import make_node, running
from tests.dashboard.conftest import Dash, watch
from tests.p2p.procs import start_node

pytestmark = pytest.mark.slow


def test_a_second_node_appears_in_the_network_view(
    page: Page, tmp_path: Path, model_files: dict[str, Path]
) -> None:
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    first = start_node(tmp_path / "a", *common)
    nodes = [first]
    try:
        with running(make_node(tmp_path / "a", {"tiny": model_files["tiny"]})) as server:
            dash = watch(page, server.url)
            dash.open("network")
            status = first.status()
            assert status is not None
            assert page.inner_text("#self-peer-id") == status["peer_id"]
            assert page.inner_text("#nat-status") in {"public", "unknown yet", "behind NAT"}
            assert page.is_visible("#no-peers")
            second = start_node(tmp_path / "b", *common, "--bootstrap", status["listen_addrs"][0])
            nodes.append(second)
            joined = second.status()
            assert joined is not None
            row = page.wait_for_selector(f"tr[data-peer='{joined['peer_id']}']", timeout=60_000)
            assert row is not None
            text = row.inner_text()
            assert "direct" in text and "cores" in text and "not rated yet" in text
            assert "nothing" in text  # it shares nothing: consent is off by default
            assert page.inner_text("#used-remote") == "0"
            # Leaving the view closes its stream: then nothing keeps asking the node.
            with page.expect_event(
                "requestfailed", lambda request: request.url.endswith("/api/network/events")
            ):
                dash.open("chat")
            assert dash.foreign() == []
    finally:
        for node in nodes:
            node.stop()


def test_a_benchmark_runs_from_the_page_and_draws_its_results(dash: Dash) -> None:
    page = dash.open("bench")
    assert page.is_visible("text=No benchmark yet")
    page.select_option("#bench-model", "tiny")
    for field, value in {
        "prompt": "16",
        "gen": "4",
        "runs": "2",
        "warmup": "0",
        "bandwidth": "64",
    }.items():
        page.fill(f"#bench-{field}", value)
    page.click("#bench-run")
    page.wait_for_selector("#bench-progress:not([hidden])")
    assert page.is_disabled("#bench-run") and page.is_visible("#bench-stop")
    page.wait_for_selector("#bench-report table", timeout=180_000)
    assert page.is_hidden("#bench-progress") and page.inner_text("#bench-error") == ""
    report = page.inner_text("#bench-report")
    assert "tiny" in report and "Median of the measured runs" in report and "Energy:" in report
    titles = page.locator("#bench-report figcaption").all_inner_texts()
    assert titles == [
        "Throughput (tokens/s)",
        "Time to first token (ms)",
        "Energy per generated token (J/token)",
        "Fraction of the decode roofline (% of memory-bandwidth ceiling)",
    ]
    assert page.locator("#bench-report svg rect.bar").count() == 5  # 2 + 1 + 1 + 1 bars
    assert page.locator("#bench-results option").count() == 1
