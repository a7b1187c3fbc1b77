"""The RPC worker's confinement: what a peer steering it could reach on this machine.

A real worker process is started the way the node starts one; the test then looks at
it from outside (``/proc``) and checks the worker's own proof that it cannot open the
node's identity key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aria.config import AriaPaths
from aria.errors import BackendUnavailable
from aria.p2p.identity import load_or_create_identity
from aria.rpc import RpcWorker, start_rpc_worker
from aria.rpc.sandbox import can_open, unprivileged_ids

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux confinement")


@pytest.fixture
def worker(aria_paths: AriaPaths, tmp_path: Path) -> Iterator[RpcWorker]:
    load_or_create_identity(aria_paths)
    started = start_rpc_worker(
        log_path=tmp_path / "rpc-worker.log",
        threads=1,
        memory_gb=0.25,
        secrets=[aria_paths.node / "identity.key"],
    )
    yield started
    started.stop()


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text(errors="replace")


def test_worker_runs_with_an_empty_environment_in_a_private_directory(worker: RpcWorker) -> None:
    environ = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=")[0].decode() for item in environ if item}
    assert names == {"PATH", "PYTHONPATH", "OMP_WAIT_POLICY", "GGML_NO_BACKTRACE"}
    cwd = Path(os.readlink(f"/proc/{worker.pid}/cwd"))
    assert cwd == worker.workdir and list(cwd.iterdir()) == []
    assert cwd.stat().st_mode & 0o077 == 0  # private to the worker's uid
    worker.stop()
    assert not cwd.exists()  # removed with the worker


def test_worker_limits_files_descriptors_core_dumps_and_memory(worker: RpcWorker) -> None:
    limits = {
        line[:26].strip(): line[26:].split()[:2]
        for line in _proc(worker.pid, "limits").splitlines()[1:]
    }
    assert limits["Max file size"] == [str(64 * 1024**2)] * 2
    assert limits["Max open files"] == ["64", "64"]
    assert limits["Max core file size"] == ["0", "0"]
    soft, hard = limits["Max data size"]
    assert soft == hard != "unlimited"  # the offer, which the worker cannot raise


def test_worker_cannot_open_the_nodes_identity_key(
    worker: RpcWorker, aria_paths: AriaPaths
) -> None:
    key = aria_paths.node / "identity.key"
    assert can_open(key)  # this test process can: the node's own files are fine
    ready = worker.ready
    # The worker proved it at start (it refuses to serve otherwise) and says how.
    assert ready.landlock_abi > 0 or ready.uid != os.getuid()
    if os.geteuid() == 0:  # CI runs as root: the worker serves as an unprivileged user
        ids = unprivileged_ids()
        assert ids is not None and ready.uid == ids[0]
        uids = _proc(worker.pid, "status").split("Uid:")[1].split("\n")[0].split()
        assert set(uids) == {str(ids[0])}


def test_confinement_closes_the_file_system_and_outbound_tcp(tmp_path: Path) -> None:
    """The same confinement in a child process, probed from inside."""
    secret = tmp_path / "secret"
    secret.write_text("key")
    work = tmp_path / "work"
    work.mkdir()
    ids = unprivileged_ids()
    if ids is not None:
        os.chown(work, *ids)
    probe = f"""
import encodings.idna, socket, sys  # imported before confinement
from pathlib import Path
from aria.rpc.sandbox import SandboxSpec, can_open, enter_sandbox
report = enter_sandbox(SandboxSpec(Path({str(work)!r}), 0, run_as={ids!r}))
Path("scratch").write_text("ok")
results = [can_open(Path({str(secret)!r})), Path("scratch").read_text() == "ok"]
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)
    results.append("connected")
except PermissionError:
    results.append("denied")
except OSError:
    results.append("refused")
print(report.landlock_abi, report.net_restricted, *results)
"""
    child = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    abi, net, secret_readable, scratch_ok, connect = child.stdout.split()
    assert (secret_readable, scratch_ok) == ("False", "True")
    if int(abi) >= 4:
        assert (net, connect) == ("True", "denied")


def test_worker_refuses_to_serve_when_it_could_read_a_secret(tmp_path: Path) -> None:
    """Fail closed: its own working directory stays readable, so naming it as the
    secret makes the worker refuse (as it would on a system it cannot confine)."""
    with pytest.raises(BackendUnavailable, match="could still open"):
        start_rpc_worker(log_path=tmp_path / "w.log", threads=1, memory_gb=0.1, secrets=[Path(".")])
