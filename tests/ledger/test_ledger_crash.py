"""Receipts survive a SIGKILL: of a process appending as fast as it can, and of the API in
the middle of a request. The chain is never torn: it verifies, every receipt a client
saw completed is in it, and SQLite's own integrity check passes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths
from aria.convert.synthetic import write_llama_gguf
from aria.ledger import Ledger
from aria.p2p.local_api import read_endpoint
from aria.signing import NodeKey
from aria.store import ModelStore
from tests.p2p.procs import _env, wait_for

_WRITER = """
import sys
from pathlib import Path
from aria.ledger import Ledger
from aria.signing import NodeKey
from tests.ledger.helpers import receipt
ledger = Ledger.open(Path(sys.argv[1]), NodeKey.from_seed(bytes.fromhex(sys.argv[2])))
print("ready", flush=True)
while True:
    entry = ledger.append("inference", receipt())
    print(entry.seq, flush=True)  # only printed once the commit (and its fsync) returned
"""


def _integrity(db: Path) -> str:
    return str(sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0])


def test_a_writer_killed_at_random_moments_never_tears_the_chain(tmp_path: Path) -> None:
    key = NodeKey.generate()
    acknowledged = 0
    for round_ in range(8):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), key.seed.hex()],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.037 * round_)  # a different moment each time
        os.kill(writer.pid, signal.SIGKILL)
        lines = writer.stdout.read().split()
        writer.wait()
        writer.stdout.close()
        if lines:
            acknowledged = max(acknowledged, int(lines[-1]))
        assert _integrity(tmp_path / "ledger.db") == "ok"
        with Ledger.open(tmp_path, key) as ledger:
            report = ledger.verify()
            assert report.ok, report
            # everything the writer saw committed is there (at most one more, uncommitted
            # when it printed nothing yet, may also be there)
            assert report.last_seq is not None and report.last_seq >= acknowledged
            acknowledged = report.last_seq
    assert acknowledged > 8


@pytest.mark.slow
def test_killing_the_api_mid_request_keeps_every_finished_receipt(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    paths = AriaPaths(home)
    store = ModelStore(paths, load_catalog(), load_denylist())
    slow = write_llama_gguf(
        tmp_path / "slow.gguf", n_embd=512, n_layers=8, n_head=8, n_ff=1536, n_ctx=4096, seed=1
    )
    store.import_file(slow, model_id="slow")
    with (home / "api.log").open("wb") as log:  # the child keeps its own descriptor
        api = subprocess.Popen(
            [sys.executable, "-m", "aria", "api", "start", "--host", "127.0.0.1", "--port", "0"],
            env=_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_for(lambda: read_endpoint(paths), 60, "the API").url
        body = {"model": "slow", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        finished = []
        with httpx.Client(base_url=url, timeout=120) as http:
            for _ in range(3):
                reply = http.post("/v1/chat/completions", json=body)
                assert reply.status_code == 200
                finished.append(reply.headers["x-aria-receipt"])
            long = {**body, "max_tokens": 3000, "stream": True}
            with http.stream("POST", "/v1/chat/completions", json=long) as stream:
                in_flight = stream.headers["x-aria-receipt"]
                for count, _ in enumerate(stream.iter_lines()):
                    if count == 20:  # mid-generation
                        os.kill(api.pid, signal.SIGKILL)
                        break
        api.wait(timeout=30)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
    assert _integrity(paths.ledger / "ledger.db") == "ok"
    result = subprocess.run(
        [sys.executable, "-m", "aria", "ledger", "verify", "--json"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    with Ledger.open(paths.ledger, signer=_signer(home)) as ledger:
        for receipt_id in finished:
            assert ledger.find(receipt_id) is not None
        assert ledger.find(in_flight) is None  # killed before it ended: no half receipt
    # the worker of the killed API does not outlive it for long (it sees its stdin close)
    wait_for(lambda: not _workers_of(home), 30, "the orphaned worker to exit")


def _signer(home: Path) -> str:
    from aria.p2p.identity import load_identity

    return load_identity(AriaPaths(home)).peer_id


def _workers_of(home: Path) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            env = process.info["environ"] or {}
            if env.get("ARIA_HOME") == str(home) and "aria.backends.worker" in " ".join(
                process.info["cmdline"] or []
            ):
                found.append(process.pid)
        except (psutil.Error, TypeError):
            continue
    return found
