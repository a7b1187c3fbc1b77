"""The local control channel and the one-node-per-home pid file."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from aria.config import AriaPaths
from aria.errors import InvalidRequest, NodeNotRunning, PeerError
from aria.p2p.codec import FrameDecoder
from aria.p2p.control import ControlServer, NodeClient, control_file
from aria.p2p.lifecycle import node_pid, pid_file, pid_lock, stop_node


def _serve_and_check(paths: AriaPaths, check) -> None:  # type: ignore[no-untyped-def]
    async def echo(args: dict[str, object]) -> dict[str, object]:
        return {"echo": args}

    async def refuse(_: dict[str, object]) -> None:
        raise InvalidRequest("that model id is not valid")

    async def crash(_: dict[str, object]) -> None:
        raise RuntimeError("internal detail that must not leak")

    handlers = {"ping": echo, "echo": echo, "refuse": refuse, "crash": crash}

    async def main() -> None:
        server = ControlServer(paths, "12D3KooWtest", handlers, token="secret-token")
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            await trio.to_thread.run_sync(check)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_requests_errors_and_authentication(aria_paths: AriaPaths) -> None:
    def check() -> None:
        assert stat.S_IMODE(control_file(aria_paths).stat().st_mode) == 0o600
        client = NodeClient.connect(aria_paths)
        assert client is not None and client.peer_id == "12D3KooWtest"
        assert client.request("echo", x=1) == {"echo": {"x": 1}}
        with pytest.raises(InvalidRequest, match="that model id is not valid") as refused:
            client.request("refuse")  # the node's error keeps its class and status
        assert refused.value.http_status == 400 and refused.value.code == "invalid_request"
        with pytest.raises(PeerError, match="failed to run 'crash'") as crashed:
            client.request("crash")
        assert "internal detail" not in str(crashed.value)
        with pytest.raises(PeerError, match="unknown control operation"):
            client.request("reboot")
        with pytest.raises(PeerError, match="wrong control token"):
            NodeClient(client.port, "guess", client.peer_id).request("echo")
        with socket.create_connection(("127.0.0.1", client.port), timeout=5) as sock:
            sock.sendall(b"\x00\x00\x00\x05hello")
            reply = FrameDecoder(1 << 20).feed(sock.recv(65536))
        assert json.loads(reply[0])["error"]["code"] == "bad_request"

    _serve_and_check(aria_paths, check)


def test_no_node_means_none_or_one_line_error(aria_paths: AriaPaths) -> None:
    assert NodeClient.connect(aria_paths) is None
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    control_file(aria_paths).write_text(
        json.dumps({"port": port, "token": "t", "pid": 1, "peer_id": "x"})
    )
    assert NodeClient.connect(aria_paths) is None
    with pytest.raises(NodeNotRunning, match="aria node start"):
        NodeClient.require(aria_paths)
    result = subprocess.run(
        [sys.executable, "-m", "aria", "network", "peers"],
        capture_output=True,
        text=True,
        env={"ARIA_HOME": str(aria_paths.home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == NodeNotRunning.exit_code
    assert result.stderr.startswith("error: no ARIA node is running")
    assert len(result.stderr.strip().splitlines()) == 1


def _sleeper() -> subprocess.Popen[bytes]:
    # cmdline mentions "aria", like a real node process
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "aria"])


def test_pid_lock_refuses_a_second_node_and_cleans_up(aria_paths: AriaPaths) -> None:
    other = _sleeper()
    try:
        pid_file(aria_paths).write_text(f"{other.pid}\n")
        assert node_pid(aria_paths) == other.pid
        with pytest.raises(PeerError, match="already running"), pid_lock(aria_paths):
            pass
    finally:
        other.kill()
        other.wait()
    # its process is gone: the pid file is stale and gets replaced
    with pid_lock(aria_paths):
        assert pid_file(aria_paths).read_text().strip() == str(os.getpid())
        control_file(aria_paths).write_text("{}")
    assert not pid_file(aria_paths).exists() and not control_file(aria_paths).exists()


def test_stop_without_node_tidies_stale_files(aria_paths: AriaPaths) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file(aria_paths).write_text(f"{dead.pid}\n")
    control_file(aria_paths).write_text("{}")
    with pytest.raises(NodeNotRunning):
        stop_node(aria_paths)
    assert not pid_file(aria_paths).exists() and not control_file(aria_paths).exists()


def test_stop_signals_the_node_process(aria_paths: AriaPaths, tmp_path: Path) -> None:
    # A stand-in node: removes its pid file on SIGTERM, as the real one does.
    script = tmp_path / "aria_fake_node.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "def bye(*_):\n"
        f"    os.unlink({str(pid_file(aria_paths))!r}); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        f"open({str(pid_file(aria_paths))!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        for _ in range(100):
            if pid_file(aria_paths).exists():
                break
            trio.run(trio.sleep, 0.05)
        assert stop_node(aria_paths, timeout_s=10) == proc.pid
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
