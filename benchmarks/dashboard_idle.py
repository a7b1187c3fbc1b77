"""What an open dashboard tab costs while nothing happens: CPU of the API process.

Starts the real ``aria api start`` (its own process, a temporary ARIA_HOME with the
embedded model imported when one is installed), measures the process's CPU time over
``--seconds`` with no page open, then opens the dashboard in headless Chromium, lets it
load, and measures again over the same time with the tab open and idle. Both windows
count user + system CPU time of the API process and its children; the tab's requests
during the second window are counted too (the page has no timers: only its one live
connection stays open, and it carries a keep-alive comment every 25 s).

Target (issue 17): < 1% CPU with one tab open for 60 s. Prints a table and writes
``benchmarks/results/dashboard_idle.json`` with the CPU model and the load.

    python benchmarks/dashboard_idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import platformdirs
import psutil
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the browser flags shared with the tests

from tests.helpers.browser import CHROMIUM_FLAGS, find_chromium  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dashboard_idle.json"
_URL = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def _cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _window(process: psutil.Process, seconds: float) -> dict[str, float]:
    cpu0, wall0 = _cpu_seconds(process), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = _cpu_seconds(process), time.monotonic()
    wall = wall1 - wall0
    return {"wall_s": wall, "cpu_s": cpu1 - cpu0, "cpu_percent": 100 * (cpu1 - cpu0) / wall}


def _start_api(home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "ARIA_HOME": str(home), "COLUMNS": "200"}
    embedded = Path(platformdirs.user_data_dir("aria", "aria")) / "models" / "SmolLM2-135M-Instruct"
    for gguf in embedded.glob("*.gguf"):
        subprocess.run(
            [sys.executable, "-m", "aria", "model", "import", str(gguf)],
            env=env,
            check=True,
            capture_output=True,
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "aria", "api", "start", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        found = _URL.search(line)
        if found:
            return process, found.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("aria api start did not print its address")


def _machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "cpu_model": model,
        "logical_cores": psutil.cpu_count(),
        "load_average": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium: run `bash scripts/system_deps.sh`", file=sys.stderr)
        return 1
    machine_before = _machine()
    with tempfile.TemporaryDirectory() as scratch:
        api, url = _start_api(Path(scratch) / "home")
        try:
            process = psutil.Process(api.pid)
            time.sleep(3)
            alone = _window(process, args.seconds)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
                page = browser.new_page()
                requests: list[tuple[float, str]] = []
                page.on("request", lambda r: requests.append((time.monotonic(), r.url)))
                load_cpu, load_wall = _cpu_seconds(process), time.monotonic()
                page.goto(url + "/#chat")
                page.wait_for_selector("#view-chat[data-ready]")
                time.sleep(3)  # settle: the first requests are done
                loading = {  # the meter's control: serving the page does cost CPU
                    "wall_s": time.monotonic() - load_wall,
                    "cpu_s": _cpu_seconds(process) - load_cpu,
                    "requests": len(requests),
                }
                started = time.monotonic()
                with_tab = _window(process, args.seconds)
                during = [u for t, u in requests if t >= started]
                browser.close()
        finally:
            api.terminate()
            api.wait(timeout=30)
    result = {
        "benchmark": "dashboard_idle",
        "command": f"python benchmarks/dashboard_idle.py --seconds {args.seconds:g}",
        "machine_before": machine_before,
        "machine_after": _machine(),
        "api_alone": alone,
        "page_load": loading,
        "api_with_one_idle_tab": with_tab,
        "requests_during_idle_window": during,
        "target_cpu_percent": 1.0,
        "meets_target": with_tab["cpu_percent"] < 1.0,
    }
    print(f"{'window':<28}{'wall s':>8}{'CPU s':>9}{'CPU %':>8}")
    for name, window in (("API alone", alone), ("API + one idle tab", with_tab)):
        print(
            f"{name:<28}{window['wall_s']:>8.1f}{window['cpu_s']:>9.3f}{window['cpu_percent']:>8.3f}"
        )
    load = machine_before["load_average"][0]
    print(f"page load: {loading['requests']} requests, {loading['cpu_s']:.3f} CPU s in the API")
    print(f"requests by the tab while idle: {len(during)}; load average {load:.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
