"""What a node exposes and to whom, in network namespaces (root only; see natlab.py).

* A flood of fresh peer ids that never handshake is capped and dropped while an
  honest peer on another address keeps being served.
* Generic libp2p mDNS (the ``_p2p`` service IPFS uses) neither hears an ARIA node nor
  gets dialled by it; ARIA nodes hear each other under their own service.
* Sovereignty: a node with default settings and no bootstrap opens no outbound TCP
  connection, and ``aria api start`` serves a chat in a namespace with only loopback.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo

from aria.catalog import load_catalog, load_denylist
from aria.config import AriaPaths
from aria.convert.synthetic import write_llama_gguf
from aria.p2p.keys import NodeKey
from aria.p2p.local_api import read_endpoint
from aria.p2p.transport.host import build_host, libp2p_id, quiet_libp2p_logs
from aria.store import ModelStore
from tests.p2p.natlab import Annex, Island, Lan, lab_unavailable
from tests.p2p.procs import NodeProc, _env, start_node, verified, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.slow]

FLOOD = 100
MAX_PER_IP = 8  # the default p2p.max_per_ip


@pytest.fixture
def annex() -> Iterator[Annex]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Annex(symmetric=False)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


def test_a_flood_of_unverified_peer_ids_is_capped_and_dropped(annex: Annex, tmp_path: Path) -> None:
    lender = start_node(tmp_path / "l", "--port", "0", "--no-mdns")
    honest: NodeProc | None = None
    try:
        status = lender.status()
        assert status is not None
        port = int(status["listen_addrs"][0].split("/tcp/")[1].split("/")[0])
        l_id = str(status["peer_id"])
        # The honest peer lives in the annex: another IP than the flood's 127.0.0.1.
        boot = f"/ip4/{annex.HOST_IP}/tcp/{port}/p2p/{l_id}"
        honest = start_node(
            tmp_path / "h", "--port", "0", "--no-mdns", "--bootstrap", boot, netns=annex.ns("x")
        )
        honest_status = honest.status()
        assert honest_status is not None
        wait_for(partial(verified, lender, honest_status["peer_id"]), 60, "L to verify H")
        seen = _flood(lender, port, l_id, honest)
        print(f"\nconnections L held during the flood: max {max(seen)}, samples {seen}")
        assert max(seen) <= 1 + MAX_PER_IP, seen  # H plus one IP's share, never the flood
        h_id = str(honest.status()["peer_id"])  # type: ignore[index]
        wait_for(
            lambda: [p["peer_id"] for p in lender.peers() if p["connection"] != "none"] == [h_id],
            30,
            "L to drop every unverified connection",
        )
        assert "no ARIA handshake in time" in lender.log() or "dropped a connection" in lender.log()
    finally:
        if honest is not None:
            honest.stop()
        lender.stop()


def _flood(lender: NodeProc, port: int, l_id: str, honest: NodeProc) -> list[int]:
    """Connect FLOOD fresh peer ids (25 at a time, each held open) while sampling L's
    connection count and checking that H's pings still get answered."""
    quiet_libp2p_logs()
    target = PeerInfo(libp2p_id(l_id), [multiaddr.Multiaddr(f"/ip4/127.0.0.1/tcp/{port}")])
    seen: list[int] = []
    pings: list[float] = []

    async def one() -> None:
        host = build_host(NodeKey.generate())
        async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with contextlib.suppress(Exception), trio.move_on_after(15):
                await host.connect(target)
                await trio.sleep(15)  # hold it, never say a word

    async def sample(stop: trio.Event) -> None:
        while not stop.is_set():
            status = await trio.to_thread.run_sync(lender.status)
            if status:
                seen.append(int(status["connected_peers"]))
            reply = await trio.to_thread.run_sync(lambda: honest.query("ping", l_id))
            if reply:  # H's own CLI, inside its namespace: a request L must answer
                pings.append(float(reply["rtt_ms"]))
            await trio.sleep(0.5)

    async def main() -> None:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample, stop)
            for _ in range(FLOOD // 25):
                async with trio.open_nursery() as batch:
                    for _ in range(25):
                        batch.start_soon(one)
            stop.set()

    trio.run(main)
    assert len(pings) >= 3  # H was served all along
    return seen


_GENERIC_MDNS = textwrap.dedent(
    """
    import json, sys, time, trio, multiaddr
    from zeroconf import ServiceBrowser, Zeroconf
    from libp2p.discovery.mdns.mdns import MDNSDiscovery
    from libp2p.discovery.events.peerDiscovery import peerDiscovery
    from aria.p2p.keys import NodeKey
    from aria.p2p.transport.host import build_host
    found = {"p2p_peers": [], "aria_services": []}
    def heard(info):
        found["p2p_peers"].append(str(info.peer_id))
    peerDiscovery.register_peer_discovered_handler(heard)
    class Aria:
        def add_service(self, zc, kind, name): found["aria_services"].append(name)
        def remove_service(self, *a): pass
        def update_service(self, *a): pass
    async def main():
        host = build_host(NodeKey.generate())
        async with host.run([multiaddr.Multiaddr("/ip4/10.9.0.3/tcp/4001")]):
            addrs = ["/ip4/10.9.0.3/tcp/4001"]
            mdns = MDNSDiscovery(host.get_network(), port=4001, listen_addrs=addrs)
            mdns.start()  # the generic _p2p._udp.local. service, as IPFS nodes use it
            browser = ServiceBrowser(Zeroconf(), "_aria._udp.local.", Aria())
            await trio.sleep(float(sys.argv[1]))
            found["connected"] = [str(p) for p in host.get_connected_peers()]
            mdns.stop()
        print(json.dumps(found))
    trio.run(main)
    """
)


def test_generic_mdns_does_not_reach_an_aria_node(tmp_path: Path) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lan = Lan()
    node: NodeProc | None = None
    try:
        lan.up()
        node = start_node(tmp_path / "m1", "--port", "4001", netns=lan.ns("m1"))
        script = tmp_path / "generic_mdns.py"
        script.write_text(_GENERIC_MDNS)
        heard = subprocess.run(
            ["ip", "netns", "exec", lan.ns("m2"), sys.executable, str(script), "20"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=_env(tmp_path / "m2"),
        )
        found = json.loads(heard.stdout.strip().splitlines()[-1])
        assert found["aria_services"]  # mDNS works here, and the node announces as ARIA
        assert found["p2p_peers"] == []  # never on the generic service IPFS browses
        assert found["connected"] == []  # and it never dialled the generic peer it heard
        status = node.status()
        assert status is not None and status["connected_peers"] == 0
    finally:
        if node is not None:
            node.stop()
        lan.down()


def test_a_default_node_opens_no_outbound_connection(annex: Annex, tmp_path: Path) -> None:
    """Defaults: all interfaces, mDNS on, no bootstrap. Every SYN leaving is counted."""
    annex.count_outbound_syns()
    node = start_node(tmp_path / "n", netns=annex.ns("x"))
    try:
        status = node.status()
        assert status is not None and status["mdns"] is True
        time.sleep(35)  # publish, discovery, NAT and re-dial rounds all run meanwhile
        assert annex.syn_count() == 0
        sockets = subprocess.run(
            ["ip", "netns", "exec", annex.ns("x"), "ss", "-tnH", "state", "syn-sent"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert sockets.strip() == ""
    finally:
        node.stop()


def test_the_api_serves_a_chat_with_only_loopback(tmp_path: Path) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    island = Island(symmetric=False)
    home = tmp_path / "home"
    store = ModelStore(AriaPaths(home), load_catalog(), load_denylist())
    store.import_file(write_llama_gguf(tmp_path / "tiny.gguf", n_ctx=1024), model_id="tiny")
    api: subprocess.Popen[bytes] | None = None
    try:
        island.up()
        log = (home / "api.log").open("wb")
        api = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                island.ns("i"),
                sys.executable,
                "-m",
                "aria",
                "api",
                "start",
                "--port",
                "0",
            ],
            env=_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child keeps its own descriptor
        endpoint = wait_for(lambda: read_endpoint(AriaPaths(home)), 60, "the API in the island")
        chat = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                island.ns("i"),
                sys.executable,
                "-c",
                "import httpx, sys; r = httpx.post(sys.argv[1], json={'model': 'tiny', "
                "'messages': [{'role': 'user', 'content': 'hello'}], 'max_tokens': 8}, "
                "timeout=120); print(r.status_code); "
                "print(r.json()['choices'][0]['message']['content'])",
                f"{endpoint.url.rstrip('/')}/v1/chat/completions",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert chat.returncode == 0, chat.stderr[-2000:]
        assert chat.stdout.splitlines()[0] == "200"
    finally:
        if api is not None:
            api.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                api.wait(20)
            if api.poll() is None:
                api.kill()
        island.down()
