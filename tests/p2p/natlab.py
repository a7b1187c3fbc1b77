"""A NAT lab built from Linux network namespaces (root only), torn down afterwards.

    inet   "internet": bridge br0 on 198.51.100.0/24 (TEST-NET-2, never routed outside)
    pub    public bootstrap + relay node            198.51.100.10
    r1/r2  home routers: wan 198.51.100.21/.22, lan 192.168.1.1/24
           MASQUERADE (plus --random-fully for a symmetric NAT); unsolicited inbound TCP
           to the WAN address is DROPPED on INPUT, as real home routers do
    h1/h2  home nodes, BOTH 192.168.1.2/24 behind their router

Nothing is routed to the host's own namespace: traffic stays inside the lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

PUBLIC_IP = "198.51.100.10"
ROUTER_WAN = {1: "198.51.100.21", 2: "198.51.100.22"}
HOME_IP = "192.168.1.2"


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces and iptables)"
    if shutil.which("ip") is None:
        return "the NAT lab needs iproute2 (`apt-get install -y iproute2`)"
    if shutil.which("iptables") is None:
        return "the NAT lab needs iptables (`apt-get install -y iptables`)"
    probe = f"ariaprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _run(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


@dataclass
class NatLab:
    symmetric: bool
    prefix: str = field(default_factory=lambda: f"a{os.getpid() % 100000}")
    created: list[str] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _netns(self, name: str) -> None:
        _run("ip", "netns", "add", self.ns(name))
        self.created.append(self.ns(name))
        _run("ip", "-n", self.ns(name), "link", "set", "lo", "up")

    def _wire(self, a: str, a_if: str, b: str, b_if: str) -> None:
        tmp_a, tmp_b = f"{self.prefix}{a}{b}x"[:15], f"{self.prefix}{a}{b}y"[:15]
        _run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        _run("ip", "link", "set", tmp_a, "netns", self.ns(a))
        _run("ip", "link", "set", tmp_b, "netns", self.ns(b))
        _run("ip", "-n", self.ns(a), "link", "set", tmp_a, "name", a_if)
        _run("ip", "-n", self.ns(b), "link", "set", tmp_b, "name", b_if)
        _run("ip", "-n", self.ns(a), "link", "set", a_if, "up")
        _run("ip", "-n", self.ns(b), "link", "set", b_if, "up")

    def _in(self, name: str, *cmd: str) -> None:
        _run("ip", "netns", "exec", self.ns(name), *cmd)

    def up(self) -> None:
        for name in ("inet", "pub", "r1", "r2", "h1", "h2"):
            self._netns(name)
        _run("ip", "-n", self.ns("inet"), "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.ns("inet"), "link", "set", "br0", "up")
        self._wire("pub", "eth0", "inet", "pub")
        _run("ip", "-n", self.ns("inet"), "link", "set", "pub", "master", "br0")
        _run("ip", "-n", self.ns("pub"), "addr", "add", f"{PUBLIC_IP}/24", "dev", "eth0")
        for i in (1, 2):
            router, home = f"r{i}", f"h{i}"
            self._wire(router, "wan", "inet", router)
            _run("ip", "-n", self.ns("inet"), "link", "set", router, "master", "br0")
            _run("ip", "-n", self.ns(router), "addr", "add", f"{ROUTER_WAN[i]}/24", "dev", "wan")
            self._wire(router, "lan", home, "eth0")
            _run("ip", "-n", self.ns(router), "addr", "add", "192.168.1.1/24", "dev", "lan")
            _run("ip", "-n", self.ns(home), "addr", "add", f"{HOME_IP}/24", "dev", "eth0")
            _run("ip", "-n", self.ns(home), "route", "add", "default", "via", "192.168.1.1")
            self._in(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            masquerade = [
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                "192.168.1.0/24",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ]
            if self.symmetric:
                masquerade.append("--random-fully")
            self._in(router, *masquerade)
            self._in(
                router,
                "iptables",
                "-A",
                "INPUT",
                "-i",
                "wan",
                "-p",
                "tcp",
                "-m",
                "conntrack",
                "--ctstate",
                "NEW,INVALID",
                "-j",
                "DROP",
            )
            self._in(
                router,
                "iptables",
                "-A",
                "FORWARD",
                "-i",
                "wan",
                "-o",
                "lan",
                "-m",
                "conntrack",
                "--ctstate",
                "NEW,INVALID",
                "-j",
                "DROP",
            )

    def down(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.created.clear()


@dataclass
class Lan(NatLab):
    """Two hosts on one switch (a bridge), 10.9.0.2 and 10.9.0.3, no router, no bootstrap."""

    symmetric: bool = False

    def up(self) -> None:
        for name in ("sw", "m1", "m2"):
            self._netns(name)
        _run("ip", "-n", self.ns("sw"), "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.ns("sw"), "link", "set", "br0", "up")
        for i in (1, 2):
            host = f"m{i}"
            self._wire(host, "eth0", "sw", host)
            _run("ip", "-n", self.ns("sw"), "link", "set", host, "master", "br0")
            _run("ip", "-n", self.ns(host), "addr", "add", f"10.9.0.{i + 1}/24", "dev", "eth0")
            # mDNS sends to 224.0.0.251: give multicast a route on the LAN interface.
            _run("ip", "-n", self.ns(host), "route", "add", "224.0.0.0/4", "dev", "eth0")


@dataclass
class Annex(NatLab):
    """One namespace ``x`` joined to this machine's own namespace by a veth pair: this
    side 10.77.0.1/24, the namespace 10.77.0.2/24 with its default route through here.
    Every outbound TCP SYN it sends off loopback is counted and dropped, so nothing it
    tries ever leaves (``syn_count``)."""

    symmetric: bool = False
    HOST_IP = "10.77.0.1"
    NS_IP = "10.77.0.2"

    def up(self) -> None:
        self._netns("x")
        here, there = f"{self.prefix}h"[:15], f"{self.prefix}x"[:15]
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        _run("ip", "link", "set", there, "netns", self.ns("x"))
        _run("ip", "addr", "add", f"{self.HOST_IP}/24", "dev", here)
        _run("ip", "link", "set", here, "up")
        _run("ip", "-n", self.ns("x"), "link", "set", there, "name", "eth0")
        _run("ip", "-n", self.ns("x"), "addr", "add", f"{self.NS_IP}/24", "dev", "eth0")
        _run("ip", "-n", self.ns("x"), "link", "set", "eth0", "up")
        _run("ip", "-n", self.ns("x"), "route", "add", "default", "via", self.HOST_IP)
        _run("ip", "-n", self.ns("x"), "route", "add", "224.0.0.0/4", "dev", "eth0")

    def count_outbound_syns(self, *, except_to: str | None = None) -> None:
        """From now on, count and drop TCP SYNs leaving the namespace (not via loopback)."""
        rule = ["iptables", "-A", "OUTPUT", "!", "-o", "lo", "-p", "tcp", "--syn"]
        if except_to is not None:
            rule += ["!", "-d", except_to]
        self._in("x", *rule, "-j", "DROP")

    def syn_count(self) -> int:
        listing = subprocess.run(
            ["ip", "netns", "exec", self.ns("x"), "iptables", "-L", "OUTPUT", "-v", "-n", "-x"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split() for line in listing.splitlines() if "DROP" in line]
        return sum(int(row[0]) for row in rows)


@dataclass
class Island(NatLab):
    """One namespace ``i`` with nothing but loopback."""

    symmetric: bool = False

    def up(self) -> None:
        self._netns("i")
