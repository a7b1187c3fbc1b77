"""What this node knows about other ARIA nodes (pure; time is a parameter).

A peer becomes *verified* when a handshake with it succeeds on the current
connection, and *described* once its advert was fetched from the DHT and checked.
The node's loops feed events in; the control channel reads views out.
"""

from __future__ import annotations

from dataclasses import dataclass

from aria.p2p.adverts import Advert
from aria.p2p.handshake import NodeInfo
from aria.p2p.views import ConnectionKind, PeerView

__all__ = ["PeerBook", "PeerRecord"]


@dataclass
class PeerRecord:
    peer_id: str
    info: NodeInfo | None = None
    verified_at: float | None = None
    advert: Advert | None = None
    advert_fetched_at: float | None = None
    rtt_ms: float | None = None
    refused: str | None = None


class PeerBook:
    def __init__(self) -> None:
        self._peers: dict[str, PeerRecord] = {}

    def get(self, peer: str) -> PeerRecord | None:
        return self._peers.get(peer)

    def _record(self, peer: str) -> PeerRecord:
        return self._peers.setdefault(peer, PeerRecord(peer))

    def on_handshake(self, peer: str, info: NodeInfo, now: float) -> bool:
        """Record a successful handshake; True when the peer was not verified before."""
        record = self._record(peer)
        fresh = record.verified_at is None
        record.info, record.verified_at, record.refused = info, now, None
        return fresh

    def on_handshake_failed(self, peer: str, reason: str) -> None:
        record = self._record(peer)
        record.verified_at, record.refused = None, reason

    def on_disconnected(self, peer: str) -> None:
        """The last connection closed: the next one must handshake again."""
        record = self._peers.get(peer)
        if record is not None:
            record.verified_at = None
            record.rtt_ms = None

    def on_advert(self, peer: str, advert: Advert, now: float) -> None:
        record = self._record(peer)
        record.advert = None if advert.withdrawn else advert
        record.advert_fetched_at = now

    def on_advert_missing(self, peer: str, now: float) -> None:
        record = self._record(peer)
        record.advert_fetched_at = now

    def on_rtt(self, peer: str, rtt_ms: float) -> None:
        self._record(peer).rtt_ms = rtt_ms

    def prune(self, now: float) -> None:
        """Forget peers that are neither verified nor advertised, so a node that meets
        many peers (or many failed handshakes) keeps a bounded book."""
        stale = [
            peer
            for peer, record in self._peers.items()
            if record.verified_at is None and self.advert(peer, now) is None
        ]
        for peer in stale:
            del self._peers[peer]

    def verified(self) -> list[PeerRecord]:
        return [r for r in self._peers.values() if r.verified_at is not None]

    def known(self) -> list[PeerRecord]:
        return list(self._peers.values())

    def advert(self, peer: str, now: float) -> Advert | None:
        """The peer's advert if it is still valid at ``now``."""
        record = self._peers.get(peer)
        if record is None or record.advert is None or record.advert.expires_at <= now:
            return None
        return record.advert

    def advert_due(self, peer: str, now: float, *, refresh_s: float, retry_s: float) -> bool:
        """Time to (re)fetch the peer's advert: ``refresh_s`` after a success, ``retry_s``
        after a miss (a peer that just connected may not have published yet)."""
        record = self._peers.get(peer)
        if record is None or record.advert_fetched_at is None:
            return True
        interval = refresh_s if self.advert(peer, now) is not None else retry_s
        return now - record.advert_fetched_at >= interval

    def relays(self, now: float) -> list[str]:
        return [
            r.peer_id
            for r in self._peers.values()
            if (a := self.advert(r.peer_id, now)) and a.relay
        ]

    def view(
        self,
        peer: str,
        *,
        connection: ConnectionKind,
        addrs: list[str],
        score: float,
        now: float,
        reputation: float = 0.5,
        checks: tuple[int, int] = (0, 0),
    ) -> PeerView:
        record = self._record(peer)
        advert = self.advert(peer, now)
        info = record.info
        hardware = advert.hardware_summary if advert else (info.hardware if info else None)
        return PeerView.model_validate(
            {
                "peer_id": peer,
                "addrs": addrs,
                "connection": connection,
                "rtt_ms": record.rtt_ms,
                "agent": info.agent if info else "",
                "verified": record.verified_at is not None,
                "hardware": hardware.model_dump() if hardware else {},
                "models": [m.model_dump() for m in advert.models] if advert else [],
                "load": advert.load.model_dump() if advert else {},
                "consent": advert.consent.model_dump() if advert else {},
                "relay": bool(advert and advert.relay),
                "relayed_addrs": list(advert.relayed_addrs) if advert else [],
                "advert_expires_at": advert.expires_at if advert else None,
                "score": score,
                "reputation": reputation,
                "checks_passed": checks[0],
                "checks_failed": checks[1],
                # the advert is republished on every change and re-fetched by pings and
                # refreshes; the handshake's hash is only as new as the connection
                "contract": (advert.consent.contract if advert else None)
                or (info.contract if info else None),
            }
        )
