"""Take the screenshots in docs/dashboard.md from a real, running ARIA.

Everything is real: the API with the embedded model (imported from the user's ARIA home),
a download from a local hub mirror in progress, two ``aria node start`` processes for
the network view, and an ``aria bench`` run from the page. Needs `make setup-dev`.

    python scripts/dashboard_screenshots.py [--out docs/images/dashboard]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import platformdirs
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the helpers the browser tests use

from aria.api.background import serve_in_thread  # noqa: E402
from tests.helpers.browser import CHROMIUM_FLAGS, find_chromium  # noqa: E402
from tests.helpers.hubnode import HUB_MODEL, hub_node, publish_model  # noqa: E402
from tests.helpers.hubserver import HubServer  # noqa: E402
from tests.p2p.procs import start_node  # noqa: E402

QUESTION = "Give me three tips to save energy at home, as a markdown list."


def _shot(page: Page, out: Path, name: str, *, full: bool = False) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(out / f"{name}.png"), full_page=full)
    print(f"wrote {out / name}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    embedded = Path(platformdirs.user_data_dir("aria", "aria")) / "models" / "SmolLM2-135M-Instruct"
    gguf = next(embedded.glob("*.gguf"), None)
    chromium = find_chromium()
    if gguf is None or chromium is None:
        print("needs the embedded model and Chromium: run `make setup-dev`", file=sys.stderr)
        return 1
    common = ("--port", "0", "--host", "127.0.0.1", "--no-mdns")
    with tempfile.TemporaryDirectory() as scratch, HubServer() as hub:
        home = Path(scratch) / "home"
        node = hub_node(home, hub, publish_model(hub, Path(scratch)))
        node.store.import_file(gguf)
        first = start_node(home, *common)
        second = start_node(
            Path(scratch) / "peer", *common, "--bootstrap", first.status()["listen_addrs"][0]
        )  # type: ignore[index]
        try:
            with serve_in_thread(node) as url, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 820})
                page.goto(url + "/#chat")
                page.wait_for_selector("#view-chat[data-ready]")
                page.fill("#chat-input", QUESTION)
                page.press("#chat-input", "Enter")
                page.wait_for_selector(".msg.assistant .badge", timeout=120_000)
                _shot(page, out, "chat")

                page.goto(url + "/#node")
                page.wait_for_selector("#view-node[data-ready]")
                _shot(page, out, "node")

                hub.faults.throttle_bps = 1_000_000
                page.goto(url + "/#models")
                page.wait_for_selector("#view-models[data-ready]")
                page.select_option("#models-tier", "efficiency")
                page.click(f"button[aria-label='Download {HUB_MODEL}']")
                page.wait_for_selector(".progress-text:has-text('left')")
                time.sleep(2)
                _shot(page, out, "models", full=True)

                page.goto(url + "/#network")
                page.wait_for_selector("tr[data-peer]", timeout=60_000)
                _shot(page, out, "network")

                page.goto(url + "/#bench")
                page.wait_for_selector("#view-bench[data-ready]")
                for field, value in {
                    "prompt": "64",
                    "gen": "32",
                    "runs": "2",
                    "warmup": "1",
                    "bandwidth": "256",
                }.items():
                    page.fill(f"#bench-{field}", value)
                page.click("#bench-run")
                page.wait_for_selector("#bench-report table", timeout=300_000)
                _shot(page, out, "bench")

                page.set_viewport_size({"width": 390, "height": 844})
                page.emulate_media(color_scheme="dark")
                page.goto(url + "/#chat")
                page.wait_for_selector(".msg.assistant .badge")
                _shot(page, out, "phone-dark")
                browser.close()
        finally:
            second.stop()
            first.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
