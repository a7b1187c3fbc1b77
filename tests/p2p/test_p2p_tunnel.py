"""The RPC tunnel end to end: a split model over two peers' RPC workers through libp2p.

Four real node processes, each with its own ARIA_HOME: A (orchestrates; this test process
plays its API), B and C (lend compute: ``aria node share --rpc on``), D (consent off).
Nodes listen on all interfaces, as in production, so the socket check means something.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import psutil
import pytest

from aria.convert.synthetic import write_llama_gguf
from aria.errors import ConsentRefused, PeerError
from aria.p2p.control import NodeClient
from aria.rpc import listening_addresses
from aria.split import Candidate
from tests.p2p.procs import NodeProc, _env, start_node, verified, wait_for
from tests.split.test_split_inference import (
    dispatcher,
    generate,
    local_reference,
    split_model,
)

pytestmark = pytest.mark.slow

GIB = 1024**3


@dataclass
class Mesh:
    a: NodeProc
    lenders: list[NodeProc]
    refuser: NodeProc

    def peer_id(self, node: NodeProc) -> str:
        return str(node.status()["peer_id"])  # type: ignore[index]


def _share_rpc(home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "aria", "node", "share", "--rpc", "on", "--rpc-peer", "*"],
        env=_env(home),
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def split_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four blocks: two per lender."""
    path = tmp_path_factory.mktemp("tunnel-model") / "tiny-split.gguf"
    return write_llama_gguf(path, quant="Q8_0", n_layers=4, n_ctx=1024)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    root = tmp_path_factory.mktemp("tunnel")
    common = ("--port", "0", "--no-mdns")
    started: list[NodeProc] = []
    try:
        a = start_node(root / "a", *common)
        started.append(a)
        status = a.status()
        assert status is not None
        port = status["listen_addrs"][0].split("/tcp/")[1].split("/")[0]
        boot = f"/ip4/127.0.0.1/tcp/{port}/p2p/{status['peer_id']}"
        for name in ("b", "c"):
            (root / name).mkdir()
            _share_rpc(root / name)
        for name in ("b", "c", "d"):
            started.append(start_node(root / name, *common, "--bootstrap", boot))
        mesh = Mesh(a, started[1:3], started[3])
        for node in started[1:]:
            peer = mesh.peer_id(node)
            wait_for(partial(verified, a, peer), 60, f"A to verify {peer}")
        yield mesh
    finally:
        for node in reversed(started):
            node.stop()


def test_a_peer_without_rpc_consent_refuses_the_tunnel(mesh: Mesh) -> None:
    control = NodeClient.require(mesh.a.paths)
    with pytest.raises(PeerError) as refused:
        control.request("tunnel", peer_id=mesh.peer_id(mesh.refuser))
    assert refused.value.code == ConsentRefused.code
    assert "task_not_allowed" in refused.value.message
    assert not psutil.Process(mesh.refuser.proc.pid).children()  # no worker was started


def test_split_over_two_peers_through_the_tunnel_matches_local_greedy(
    mesh: Mesh, tmp_path: Path, split_gguf: Path
) -> None:
    control = NodeClient.require(mesh.a.paths)
    peers = []
    for lender in mesh.lenders:
        peer = mesh.peer_id(lender)
        port = control.request("tunnel", peer_id=peer)["port"]
        peers.append(Candidate(peer, f"127.0.0.1:{port}", GIB, 1, 0.001))

    async def run() -> tuple[str, str, list[str]]:
        d = dispatcher(tmp_path)
        async with d.running():
            expected = await local_reference(d, split_gguf)
            split = split_model(split_gguf, peers)
            async with split.lease(d) as lease:
                shares = [s.peer_id for s in lease.placement.shares]
                text, _ = await generate(lease)
        return expected, text, shares

    expected, text, shares = anyio.run(run, backend="trio")
    assert sorted(shares) == sorted(p.peer_id for p in peers)  # both lenders hold layers
    assert text == expected and len(text) > 50
    _only_libp2p_beyond_loopback(mesh)
    for lender in mesh.lenders:
        closed = control.request("tunnel_close", peer_id=mesh.peer_id(lender))
        assert closed["closed"] is True
        # the weights of its two blocks went out through the tunnel (Q8_0, ~0.6 MB each)
        assert closed["bytes_to_peer"] > 1_000_000 and closed["bytes_from_peer"] > 0


def _only_libp2p_beyond_loopback(mesh: Mesh) -> None:
    """Nodes listen beyond loopback only on their libp2p port; RPC workers and the
    tunnel's local ports only on 127.0.0.1."""
    for node in [mesh.a, *mesh.lenders, mesh.refuser]:
        libp2p_ports = {
            int(addr.split("/tcp/")[1].split("/")[0])
            for addr in node.status()["listen_addrs"]  # type: ignore[index]
        }
        for host, port in listening_addresses(node.proc.pid):
            assert host == "127.0.0.1" or port in libp2p_ports, (host, port)
    workers = [c for n in mesh.lenders for c in psutil.Process(n.proc.pid).children()]
    assert len(workers) == 2
    for worker in workers:
        addresses = listening_addresses(worker.pid)
        assert addresses and all(host == "127.0.0.1" for host, _ in addresses)
