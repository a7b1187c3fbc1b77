"""RPC worker processes: loopback only, confined, offer announced, probe-able."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aria.errors import BackendUnavailable, ConfigError
from aria.rpc import (
    listening_addresses,
    probe_worker,
    require_loopback,
    start_rpc_worker,
)
from aria.rpc.worker import offered_bytes
from aria.rpc.workers import worker_environment
from aria.split import WorkerSpec, probe_candidates
from tests.helpers.rpc_workers import StartWorker

GIB = 1024**3


@pytest.mark.parametrize(
    "endpoint", ["0.0.0.0:5000", "192.168.1.7:5000", "localhost:5000", "[::]:5000", "::1:5000"]
)
def test_anything_but_127_0_0_1_is_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="may only listen on 127.0.0.1"):
        require_loopback(endpoint)


@pytest.mark.parametrize("endpoint", ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":80", "x"])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        require_loopback(endpoint)


def _worker_args(tmp_path: Path, endpoint: str) -> list[str]:
    return [
        *(sys.executable, "-m", "aria.rpc.worker", "--endpoint", endpoint),
        *("--memory-gb", "1", "--workdir", str(tmp_path)),
    ]


def test_worker_process_refuses_a_public_address(tmp_path: Path) -> None:
    child = subprocess.run(
        _worker_args(tmp_path, "0.0.0.0:5000"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=worker_environment(),
    )
    assert child.returncode == ConfigError.exit_code
    assert child.stderr.strip().splitlines() == [
        "error: an RPC worker may only listen on 127.0.0.1, not '0.0.0.0': the ggml-rpc protocol "
        "has no authentication or encryption (peers reach it through a libp2p tunnel)"
    ]


def test_worker_announces_its_offer_and_listens_on_loopback_only(
    rpc_workers: StartWorker,
) -> None:
    worker = rpc_workers(memory_gb=0.5, threads=2)
    ready = worker.ready
    assert ready.offered_bytes == int(0.5 * GIB)
    assert ready.threads == 2 and ready.pid == worker.pid
    assert 0 < ready.free_bytes <= ready.total_bytes
    port = int(worker.endpoint.rpartition(":")[2])
    assert listening_addresses(worker.pid) == [("127.0.0.1", port)]


def test_offer_is_capped_by_free_memory() -> None:
    assert offered_bytes(2.0, free_bytes=GIB) == GIB
    assert offered_bytes(0.5, free_bytes=4 * GIB) == GIB // 2


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BackendUnavailable, match="could not listen"):
            start_rpc_worker(log_path=tmp_path / "w.log", threads=1, memory_gb=1, port=port)


def test_probe_reads_a_live_worker_and_reports_a_dead_one(rpc_workers: StartWorker) -> None:
    worker = rpc_workers(memory_gb=0.25)
    probe = probe_worker(worker.endpoint)
    assert probe.total_bytes > 0 and 0 <= probe.rtt_s < 1
    candidates, unreachable = probe_candidates(
        [WorkerSpec.parse(f"{worker.endpoint}@0.125"), WorkerSpec.parse("127.0.0.1:1")]
    )
    assert [(c.endpoint, c.offered_bytes) for c in candidates] == [(worker.endpoint, GIB // 8)]
    assert list(unreachable) == ["127.0.0.1:1"]
    worker.kill()
    with pytest.raises(BackendUnavailable, match=worker.endpoint):
        probe_worker(worker.endpoint)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000", WorkerSpec("127.0.0.1:5000")),
        ("127.0.0.1:5000@1.5", WorkerSpec("127.0.0.1:5000", 1.5)),
    ],
)
def test_worker_spec_parses(text: str, expected: WorkerSpec) -> None:
    assert WorkerSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:5000@", "127.0.0.1:5000@-1", "127.0.0.1:5000@lots"])
def test_worker_spec_rejects_bad_memory(text: str) -> None:
    with pytest.raises(ConfigError, match="positive number of GB"):
        WorkerSpec.parse(text)


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--threads", "-2"], "at least one thread"), (["--memory-gb", "0"], "positive number")],
)
def test_worker_rejects_bad_arguments_before_announcing(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    child = subprocess.run(
        [*_worker_args(tmp_path, "127.0.0.1:5000"), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=worker_environment(),
    )
    assert (child.returncode, child.stdout) == (ConfigError.exit_code, "")
    assert message in child.stderr
