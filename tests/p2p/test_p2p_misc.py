"""Small pure helpers: address expansion, network-size estimate, protocol spec."""

from __future__ import annotations

import random

import base58
import pytest

from aria.p2p.addrs import expand_unspecified, is_circuit, relay_circuit_addr
from aria.p2p.keys import NodeKey
from aria.p2p.netsize import estimate_network_size
from aria.p2p.spec import load_spec, major_of


def test_unspecified_listen_address_becomes_interface_addresses() -> None:
    addrs = ["/ip4/0.0.0.0/tcp/8765", "/ip4/10.0.0.5/tcp/9"]
    assert expand_unspecified(addrs, ["127.0.0.1", "192.168.1.2", "fe80::1"]) == [
        "/ip4/192.168.1.2/tcp/8765",
        "/ip4/10.0.0.5/tcp/9",
    ]
    assert expand_unspecified(addrs[:1], ["127.0.0.1"]) == ["/ip4/127.0.0.1/tcp/8765"]


def test_circuit_addresses() -> None:
    addr = relay_circuit_addr("/ip4/198.51.100.10/tcp/4001/p2p/QmRelay", "QmRelay", "QmMe")
    assert addr == "/ip4/198.51.100.10/tcp/4001/p2p/QmRelay/p2p-circuit/p2p/QmMe"
    assert is_circuit(addr) and not is_circuit("/ip4/1.2.3.4/tcp/1")


def _random_peer(rng: random.Random) -> str:
    return base58.b58encode(b"\x00\x24\x08\x01\x12\x20" + rng.randbytes(32)).decode()


def test_network_size_estimate() -> None:
    rng = random.Random(7)
    me = NodeKey.generate().peer_id
    few = [_random_peer(rng) for _ in range(5)]
    assert estimate_network_size(me, few) == 6
    many = [_random_peer(rng) for _ in range(3000)]
    estimate = estimate_network_size(me, many)
    assert 3001 / 3 < estimate < 3001 * 3


def test_spec_values_and_versions() -> None:
    spec = load_spec()
    assert spec.major == 1 and spec.handshake_id.startswith("/aria/")
    assert set(spec.guard.penalties) >= {"malformed", "oversized", "truncated", "unknown_message"}
    with pytest.raises(ValueError):
        major_of("one.two")
