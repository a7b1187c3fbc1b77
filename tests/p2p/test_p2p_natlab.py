"""NAT traversal end to end: three real nodes in network namespaces (see natlab.py).

Both home nodes know only the public bootstrap/relay node. They must find each other
through the DHT, reach each other through the relay (their only public address is
their router's), and then:
  * cone NAT: upgrade to a direct connection by DCUtR hole punching;
  * symmetric NAT (--random-fully): punching cannot work, so requests keep flowing
    through the relay.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.p2p.natlab import HOME_IP, PUBLIC_IP, Lan, NatLab, lab_unavailable
from tests.p2p.procs import NodeProc, start_node, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PORT = "4001"


@pytest.fixture
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[NodeProc, ...]]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    natlab = NatLab(symmetric=request.param == "symmetric")
    nodes: list[NodeProc] = []
    try:
        natlab.up()
        pub = start_node(
            tmp_path / "pub",
            "--port",
            PORT,
            "--host",
            PUBLIC_IP,
            "--relay",
            "--no-mdns",
            netns=natlab.ns("pub"),
        )
        nodes.append(pub)
        bootstrap = f"/ip4/{PUBLIC_IP}/tcp/{PORT}/p2p/{pub.status()['peer_id']}"  # type: ignore[index]
        for home in ("h1", "h2"):
            nodes.append(
                start_node(
                    tmp_path / home,
                    "--port",
                    PORT,
                    "--no-mdns",
                    "--bootstrap",
                    bootstrap,
                    netns=natlab.ns(home),
                )
            )
        yield tuple(nodes)
    finally:
        for node in nodes:
            with contextlib.suppress(AssertionError):
                node.stop()
        natlab.down()


def _peer(node: NodeProc, peer_id: str) -> dict | None:  # type: ignore[type-arg]
    view = node.peer(peer_id)
    return view if view and view["verified"] else None


def _discover(h1: NodeProc, h2: NodeProc) -> tuple[str, str, float]:
    start = time.monotonic()
    id1, id2 = h1.status()["peer_id"], h2.status()["peer_id"]  # type: ignore[index]
    for home in (h1, h2):
        status = wait_for(
            partial(_relayed, home),
            120,
            "a relay reservation",
            every_s=3,
        )
        assert status["reachability"] != "public"
        assert all(HOME_IP not in a for a in status["relayed_addrs"])
    wait_for(
        lambda: _peer(h1, id2) and _peer(h2, id1),
        180,
        "the two homes to find and verify each other through the DHT",
        every_s=3,
    )
    return id1, id2, time.monotonic() - start


@pytest.mark.parametrize("lab", ["cone"], indirect=True)
def test_cone_nat_homes_end_up_directly_connected(lab: tuple[NodeProc, ...]) -> None:
    _pub, h1, h2 = lab
    id1, id2, found_s = _discover(h1, h2)
    start = time.monotonic()
    view = wait_for(
        lambda: (v := _peer(h1, id2)) and v["connection"] == "direct" and v,
        120,
        "a direct (hole-punched) connection",
        every_s=3,
    )
    punched_s = time.monotonic() - start
    # The direct connection goes to the other router's public side, which drops unsolicited
    # inbound TCP: only a punched NAT mapping lets it through. (The relayed connection may
    # still be listed until DCUtR's grace period closes it.)
    direct = [a for a in view["addrs"] if "/p2p-circuit" not in a]
    assert any(a.startswith("/ip4/198.51.100.2") for a in direct), view["addrs"]
    ping = h1.cli("network", "ping", id2, "--json")
    assert ping.returncode == 0 and '"direct"' in ping.stdout
    print(f"\ncone NAT: discovered in {found_s:.1f} s, direct after {punched_s:.1f} s more")


@pytest.mark.parametrize("lab", ["symmetric"], indirect=True)
def test_symmetric_nat_homes_keep_talking_through_the_relay(lab: tuple[NodeProc, ...]) -> None:
    _pub, h1, h2 = lab
    id1, id2, found_s = _discover(h1, h2)
    pings = []
    for _ in range(3):
        result = h1.cli("network", "ping", id2, "--json")
        assert result.returncode == 0, result.stderr
        pings.append(result.stdout)
        time.sleep(5)
    assert all('"relayed"' in p for p in pings)  # punching cannot beat a symmetric NAT
    view = _peer(h2, id1)
    assert view is not None and view["connection"] == "relayed"
    print(f"\nsymmetric NAT: discovered in {found_s:.1f} s; pings over the relay: {pings}")


def test_mdns_finds_a_peer_on_the_same_lan(tmp_path: Path) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lan = Lan()
    nodes: list[NodeProc] = []
    try:
        lan.up()
        for host in ("m1", "m2"):
            nodes.append(start_node(tmp_path / host, "--port", PORT, netns=lan.ns(host)))
        m1, m2 = nodes
        id2 = m2.status()["peer_id"]  # type: ignore[index]
        view = wait_for(lambda: _peer(m1, id2), 90, "mDNS discovery on the LAN", every_s=3)
        assert view["connection"] == "direct"
        assert m1.status()["mdns"] is True  # type: ignore[index]
    finally:
        for node in nodes:
            with contextlib.suppress(AssertionError):
                node.stop()
        lan.down()


def _relayed(node: NodeProc) -> dict[str, Any] | None:
    """The node's status once it holds a relay reservation."""
    status = node.status()
    return status if status and status["relayed_addrs"] else None
