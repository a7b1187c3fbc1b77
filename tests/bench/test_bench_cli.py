"""`aria bench` end to end on a tiny generated model, through the real console entry."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from aria.convert import write_llama_gguf

pytest.importorskip("llama_cpp")

QUICK = ["-p", "16", "-g", "8", "-r", "2", "--warmup", "1", "--bandwidth-mib", "64"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_llama_gguf(tmp_path_factory.mktemp("models") / "tiny-q8.gguf", quant="Q8_0")


def _aria(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", *args],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "160"},
        timeout=120,
        check=False,
    )


def test_sweep_writes_json_chart_and_saves_threads(
    tiny_model: Path, aria_home: Path, tmp_path: Path
) -> None:
    out, chart = tmp_path / "r.json", tmp_path / "r.png"
    args = ["-m", str(tiny_model), "--sweep", "--json", str(out), "--chart", str(chart)]
    done = _aria(aria_home, "bench", *args, *QUICK, "--save", "--note", "test run")
    assert done.returncode == 0, done.stderr
    assert "in-process" in done.stdout and "best" in done.stdout

    report = json.loads(out.read_text())
    assert report["kind"] == "aria-bench"
    assert report["notes"] == ["test run"]
    machine = report["machine"]
    assert machine["hardware"]["cpu"]["logical_cores"] >= 1
    assert "CPU :" in machine["llama_cpp_system_info"]
    assert machine["aria_version"]
    assert report["memory_bandwidth"]["read_gb_s"] > 0
    assert report["energy"]["method"] in {"rapl", "estimate"}
    assert report["plan"]["prompt_tokens"] == 16 and report["plan"]["gen_tokens"] == 8

    (model,) = report["models"]
    assert model["model"] == "tiny-q8"
    assert model["params"] > 1_000_000
    cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    assert [s["threads"] for s in model["thread_sweep"]] == list(range(1, cores + 1))
    for metric in ("prompt_tok_s", "gen_tok_s", "ttft_ms", "energy_j_per_token"):
        summary = model[metric]
        assert summary["n"] == 2
        assert summary["min"] <= summary["median"] <= summary["max"]
    assert model["gen_tok_s"]["min"] > 0
    assert model["peak_rss_mib"] > 0
    assert model["roofline"]["fraction"] > 0
    assert model["roofline"]["ceiling_tok_s"] > 0
    assert report["modes"] == [
        {
            "model": "tiny-q8",
            "mode": "in-process",
            "threads": model["best_threads"],
            "prompt_tok_s": model["prompt_tok_s"]["median"],
            "gen_tok_s": model["gen_tok_s"]["median"],
            "ttft_ms": model["ttft_ms"]["median"],
        }
    ]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = (aria_home / "config.toml").read_text()
    assert f"tiny-q8 = {model['best_threads']}" in config


def test_saved_threads_become_the_default(
    tiny_model: Path, aria_home: Path, tmp_path: Path
) -> None:
    (aria_home / "config.toml").write_text('[inference.measured_threads]\n"tiny-q8" = 1\n')
    out = tmp_path / "r.json"
    done = _aria(aria_home, "bench", "-m", str(tiny_model), "--json", str(out), *QUICK)
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(out.read_text())["models"]
    assert [s["threads"] for s in model["thread_sweep"]] == [1]


def test_json_dash_prints_the_report_alone_on_stdout(tiny_model: Path, aria_home: Path) -> None:
    done = _aria(aria_home, "bench", "-m", str(tiny_model), "--threads", "1", "--json", "-", *QUICK)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # nothing but the JSON: tables went to stderr
    assert report["kind"] == "aria-bench" and report["models"][0]["model"] == "tiny-q8"
    assert "in-process" in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--threads", "2", "--sweep"], 2, "--threads and --sweep exclude each other"),
        (["--save"], 2, "--save needs --sweep"),
        (["-m", "/nonexistent/model.gguf"], 2, "no model file at"),
        (["-m", "no-such-model-id"], 3, "no-such-model-id"),
    ],
)
def test_bad_input_is_one_clear_line(
    aria_home: Path, args: list[str], code: int, message: str
) -> None:
    done = _aria(aria_home, "bench", *args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, "the API server exited early"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the API server did not become healthy")


def test_api_streaming_mode_against_a_running_api(
    tiny_model: Path, aria_home: Path, tmp_path: Path
) -> None:
    assert _aria(aria_home, "model", "import", str(tiny_model)).returncode == 0
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"ARIA_HOME": str(aria_home), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(
        [sys.executable, "-m", "aria", "api", "start", "--port", str(port), "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_healthy(url, server)
        out = tmp_path / "api.json"
        args = ["-m", "tiny-q8", "--threads", "1", "--api", url, "--json", str(out)]
        done = _aria(aria_home, "bench", *args, *QUICK)
        assert done.returncode == 0, done.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = json.loads(out.read_text())
    modes = {row["mode"]: row for row in report["modes"]}
    assert set(modes) == {"in-process", "api-streaming"}
    assert modes["api-streaming"]["gen_tok_s"] > 0
    assert modes["api-streaming"]["prompt_tok_s"] is None  # not separable over HTTP
    api = report["models"][0]["api"]
    assert api["gen_tokens"] == [8, 8]
    assert all(abs(n - 16) <= 2 for n in api["prompt_tokens"])  # the same prompt, re-tokenized
