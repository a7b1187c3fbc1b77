"""Which connections a node keeps (pure; time is a parameter).

Peer ids cost nothing, so a connection earns its place by completing the ARIA
handshake. :class:`Gatekeeper` drops a connection

* from an IP or /24 (IPv6 /48) that already holds its share
  (:class:`~aria.p2p.netpolicy.ConnectionCaps`);
* from a new, unverified peer while ``max_unverified`` others are still handshaking;
* whose peer has not completed the handshake ``deadline_s`` after connecting
  (:meth:`overdue`, polled by the node every second).

The node disconnects what it is told to; verified peers are never dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aria.p2p.netpolicy import ConnectionCaps

__all__ = ["Drop", "Gatekeeper", "Keep"]


@dataclass(frozen=True)
class Keep:
    pass


@dataclass(frozen=True)
class Drop:
    reason: str


@dataclass
class Gatekeeper:
    caps: ConnectionCaps
    max_unverified: int
    deadline_s: float
    _ips: dict[int, str] = field(default_factory=dict)  # connection -> remote IP
    _pending: dict[str, float] = field(default_factory=dict)  # unverified peer -> since

    def on_connected(
        self, peer: str, connection: int, ip: str | None, *, verified: bool, now: float
    ) -> Keep | Drop:
        """A new connection (``ip`` None: relayed, counted on the relay's connection)."""
        if ip is not None:
            if not self.caps.admit(ip):
                return Drop(f"{ip} already holds its share of connections")
            self.caps.add(ip)
            self._ips[connection] = ip
        if verified or peer in self._pending:
            return Keep()
        if len(self._pending) >= self.max_unverified:
            return Drop("too many connections are still handshaking")
        self._pending[peer] = now
        return Keep()

    def on_disconnected(self, peer: str, connection: int, *, last: bool) -> None:
        ip = self._ips.pop(connection, None)
        if ip is not None:
            self.caps.remove(ip)
        if last:
            self._pending.pop(peer, None)

    def on_verified(self, peer: str) -> None:
        self._pending.pop(peer, None)

    def overdue(self, now: float) -> list[str]:
        """Peers past their handshake deadline (forgotten here; the node disconnects them)."""
        late = [p for p, since in self._pending.items() if now - since >= self.deadline_s]
        for peer in late:
            del self._pending[peer]
        return late

    @property
    def unverified(self) -> int:
        return len(self._pending)
