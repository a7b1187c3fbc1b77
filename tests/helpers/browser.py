"""Which Chromium the browser tests, the idle benchmark and the screenshot script drive.

``playwright install`` cannot reach its download host here, so Playwright drives the
system's ``chromium-headless-shell`` (Debian; scripts/system_deps.sh installs it), with
the flags that stop Chromium from calling Google's services on its own (background
networking, component updates, sync): the page under test must be the only thing
making requests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["AXE", "CHROMIUM_FLAGS", "find_chromium"]

CHROMIUM_FLAGS = [
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

_BROWSERS = ("chromium-headless-shell", "chromium")


def find_chromium() -> str | None:
    """The system Chromium to drive, or None when none is installed."""
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None
