"""Which addresses a node dials and advertises, who may connect, whose offers count (pure)."""

from __future__ import annotations

import logging

import pytest

from aria.p2p.gatekeeper import Drop, Gatekeeper, Keep
from aria.p2p.netpolicy import ConnectionCaps, DialPolicy, advertised_ips, ip_port, scope_of
from aria.p2p.providers import Admit, Evict, ProviderEntry, Refuse, offer_fault, provider_room
from aria.p2p.transport.host import quiet_libp2p_logs

HOME = [("127.0.0.1", "255.0.0.0"), ("192.168.1.5", "255.255.255.0"), ("172.17.0.1", "255.255.0.0")]


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("100.64.0.7", "private"),
        ("fd00::1", "private"),
        ("169.254.1.1", "unroutable"),
        ("fe80::1", "unroutable"),
        ("224.0.0.251", "unroutable"),
        ("0.0.0.0", "unroutable"),
        ("8.8.8.8", "public"),
        ("198.51.100.10", "public"),  # RFC 5737: labs stand it for the internet
        ("::ffff:127.0.0.1", "loopback"),
        ("not-an-ip", "unroutable"),
    ],
)
def test_scopes(ip: str, scope: str) -> None:
    assert scope_of(ip) == scope


def test_a_home_node_dials_public_and_its_own_lan_only() -> None:
    policy = DialPolicy.for_node(
        lan=True,
        listen_ips=["0.0.0.0"],
        interfaces=HOME,
        operator=[("10.9.9.9", 4001)],
        own_port=8765,
    )
    assert policy.allows("8.8.8.8", 4001)
    assert policy.allows("192.168.1.77", 8765)  # same LAN
    assert policy.allows("172.17.5.5", 8765)  # a subnet of this machine (docker here)
    assert not policy.allows("10.0.0.1", 80)  # someone else's private network
    assert not policy.allows("127.0.0.1", 22)  # this machine's own services
    assert not policy.allows("169.254.169.254", 80)  # link-local (cloud metadata)
    assert not policy.allows("192.168.1.5", 8765)  # itself
    assert policy.allows("10.9.9.9", 4001)  # the operator's bootstrap, wherever it is
    assert not policy.allows("10.9.9.9", 4002)


def test_a_public_server_dials_no_private_address_and_a_lab_dials_loopback() -> None:
    public = DialPolicy.for_node(lan=False, listen_ips=["0.0.0.0"], interfaces=HOME)
    assert not public.allows("192.168.1.77", 8765) and public.allows("8.8.8.8", 1)
    lab = DialPolicy.for_node(lan=True, listen_ips=["127.0.0.1"], interfaces=HOME)
    assert lab.allows("127.0.0.1", 9000)


def test_advertised_addresses_skip_vpn_container_and_link_local() -> None:
    ips = ["127.0.0.1", "192.168.1.5", "172.17.0.1", "10.8.0.2", "169.254.3.3", "203.0.113.7"]
    home = advertised_ips(
        listen_ips=["0.0.0.0"], interface_ips=ips, primary_ip="192.168.1.5", lan=True
    )
    assert home == ["192.168.1.5", "203.0.113.7"]
    server = advertised_ips(
        listen_ips=["0.0.0.0"], interface_ips=ips, primary_ip="192.168.1.5", lan=False
    )
    assert server == ["203.0.113.7"]
    chosen = advertised_ips(listen_ips=["10.8.0.2"], interface_ips=ips, primary_ip=None, lan=True)
    assert chosen == ["10.8.0.2"]  # the operator bound it on purpose
    alone = advertised_ips(
        listen_ips=["0.0.0.0"], interface_ips=["127.0.0.1"], primary_ip=None, lan=True
    )
    assert alone == ["127.0.0.1"]


def test_ip_port_reads_multiaddrs() -> None:
    assert ip_port("/ip4/1.2.3.4/tcp/4001/p2p/12D3Koo") == ("1.2.3.4", 4001)
    assert ip_port("/dns4/example.org/tcp/443") == ("example.org", 443)
    assert ip_port("/ip4/1.2.3.4/udp/5") is None


def test_caps_per_ip_and_per_subnet() -> None:
    caps = ConnectionCaps(max_per_ip=2, max_per_subnet=3)
    for ip in ("203.0.113.1", "203.0.113.1", "203.0.113.2"):
        assert caps.admit(ip)
        caps.add(ip)
    assert not caps.admit("203.0.113.1")  # the IP holds 2
    assert not caps.admit("203.0.113.9")  # the /24 holds 3
    assert caps.admit("198.51.100.1")
    caps.remove("203.0.113.2")
    assert caps.admit("203.0.113.9")


def test_gatekeeper_drops_the_unverified_beyond_the_cap_and_past_the_deadline() -> None:
    gate = Gatekeeper(ConnectionCaps(8, 16), max_unverified=2, deadline_s=10)
    assert gate.on_connected("a", 1, "203.0.113.1", verified=False, now=0) == Keep()
    assert gate.on_connected("b", 2, "203.0.113.2", verified=False, now=1) == Keep()
    assert isinstance(gate.on_connected("c", 3, "203.0.113.3", verified=False, now=2), Drop)
    assert gate.on_connected("v", 4, "203.0.113.4", verified=True, now=2) == Keep()
    gate.on_verified("a")
    assert gate.overdue(now=10.5) == []  # "a" verified; "b" has until 11
    assert gate.overdue(now=11) == ["b"]
    gate.on_disconnected("b", 2, last=True)
    assert gate.unverified == 0


def test_gatekeeper_counts_ips_until_disconnect() -> None:
    gate = Gatekeeper(ConnectionCaps(1, 16), max_unverified=16, deadline_s=10)
    assert gate.on_connected("a", 1, "203.0.113.1", verified=True, now=0) == Keep()
    assert isinstance(gate.on_connected("b", 2, "203.0.113.1", verified=False, now=0), Drop)
    gate.on_disconnected("a", 1, last=True)
    assert gate.on_connected("b", 3, "203.0.113.1", verified=False, now=1) == Keep()
    assert gate.on_connected("r", 4, None, verified=False, now=1) == Keep()  # relayed


def _entry(peer: str, subnet: str | None = None, vouched: bool = False) -> ProviderEntry:
    return ProviderEntry(peer, subnet, vouched)


def test_vouched_providers_displace_squatters() -> None:
    full = {f"s{i}": _entry(f"s{i}", f"10.{i}.0.0/24") for i in range(20)}
    assert isinstance(provider_room(full, _entry("x", "10.99.0.0/24")), Refuse)
    assert provider_room(full, _entry("honest", "10.99.0.0/24", vouched=True)) == Evict("s0")
    vouched = {p: _entry(p, e.subnet, vouched=True) for p, e in full.items()}
    assert isinstance(provider_room(vouched, _entry("late", None, vouched=True)), Refuse)
    assert provider_room(full, full["s3"]) == Admit()  # a refresh


def test_one_subnet_holds_two_places_per_key() -> None:
    held = {"a": _entry("a", "10.0.0.0/24"), "b": _entry("b", "10.0.0.0/24")}
    assert isinstance(provider_room(held, _entry("c", "10.0.0.0/24")), Refuse)
    assert provider_room(held, _entry("c", "10.1.0.0/24")) == Admit()
    assert provider_room(held, _entry("d", "10.0.0.0/24", vouched=True)) == Evict("a")


def test_offers_must_match_the_catalog_pin_and_the_denylist() -> None:
    pin = "ab" * 32
    assert offer_fault(pin, pinned=pin, denied=False) is None
    assert offer_fault("cd" * 32, pinned=None, denied=False) is None  # not a catalog id
    assert "catalog" in (offer_fault("cd" * 32, pinned=pin, denied=False) or "")
    assert "denylist" in (offer_fault(pin, pinned=pin, denied=True) or "")


def test_libp2p_chatter_is_filtered_on_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    """The auto-connector sets its own INFO level; the handler filter still drops it."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    quiet_libp2p_logs(handler)
    chatty = logging.getLogger("libp2p.network.auto_connector")
    chatty.setLevel(logging.INFO)
    chatty.info("initiating 200 new dials")
    chatty.error("a real error")
    assert [r.getMessage() for r in records] == ["a real error"]
