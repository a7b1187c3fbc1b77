"""How much a node uploads for its library, and to whom (pure; time is a parameter).

Whether a peer is served at all is the consent contract's decision
(:mod:`aria.library.serve`); ``[consent]`` in config.toml then bounds how much: the upload
bandwidth of the whole library (``library_upload_mbps``, and the contract's
``lend.upload_mbps`` when it is lower, so that clause caps library traffic live), the
bandwidth one peer may use, and the bytes one peer may take in a day. A chunk
is sent only after :meth:`UploadLimits.reserve` said how long to wait for it; a peer over
its daily bytes is told ``quota`` and served nothing more until its window rolls over.
"""

from __future__ import annotations

from dataclasses import dataclass

from aria.config import ConsentSettings
from aria.consent import Contract

__all__ = ["LimitTerms", "TokenBucket", "UploadLimits", "terms_from_consent", "upload_cap_mbps"]

_DAY_S = 86_400.0
_BURST_S = 1.0  # a bucket holds one second of its rate (at least one chunk, see reserve)


@dataclass(frozen=True)
class LimitTerms:
    upload_bps: float  # bytes/s for the whole library; 0 = no cap
    peer_bps: float  # bytes/s for one peer; 0 = no cap
    peer_bytes_per_day: int


def upload_cap_mbps(consent: ConsentSettings, contract: Contract) -> float:
    """The library's upload cap in Mbit/s: the lower of its setting and the contract's
    ``lend.upload_mbps`` (0: no cap)."""
    caps = [consent.library_upload_mbps, contract.lend.upload_mbps or 0.0]
    return min((cap for cap in caps if cap > 0), default=0.0)


def terms_from_consent(consent: ConsentSettings, contract: Contract) -> LimitTerms:
    return LimitTerms(
        upload_bps=upload_cap_mbps(consent, contract) * 1e6 / 8,
        peer_bps=consent.library_peer_mbps * 1e6 / 8,
        peer_bytes_per_day=int(consent.library_peer_gb_per_day * 1e9),
    )


class TokenBucket:
    """Bytes per second with a one-second burst; a rate of 0 never waits."""

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self._tokens = rate * _BURST_S
        self._updated = now

    def reserve(self, size: int, now: float) -> float:
        """Take ``size`` bytes' worth; return the seconds to wait before sending them."""
        if self.rate <= 0:
            return 0.0
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.rate * _BURST_S, self._tokens + elapsed * self.rate)
        self._updated = now
        self._tokens -= size
        return max(0.0, -self._tokens / self.rate)


@dataclass
class _PeerDay:
    began: float
    sent: int


class UploadLimits:
    """The node's upload buckets and each peer's daily bytes."""

    def __init__(self, terms: LimitTerms, now: float) -> None:
        self._terms = terms
        self._total = TokenBucket(terms.upload_bps, now)
        self._peers: dict[str, TokenBucket] = {}
        self._days: dict[str, _PeerDay] = {}

    def update(self, terms: LimitTerms, now: float) -> None:
        """New consent: new rates from now on (bytes already counted stay counted)."""
        if terms != self._terms:
            self._terms = terms
            self._total = TokenBucket(terms.upload_bps, now)
            self._peers.clear()

    def allowance(self, peer: str, now: float) -> int:
        """Bytes ``peer`` may still take today."""
        day = self._day(peer, now)
        return max(0, self._terms.peer_bytes_per_day - day.sent)

    def reserve(self, peer: str, size: int, now: float) -> float:
        """Count ``size`` bytes for ``peer``; the seconds to wait before sending them."""
        self._day(peer, now).sent += size
        bucket = self._peers.get(peer)
        if bucket is None:
            bucket = self._peers[peer] = TokenBucket(self._terms.peer_bps, now)
        return max(self._total.reserve(size, now), bucket.reserve(size, now))

    def _day(self, peer: str, now: float) -> _PeerDay:
        day = self._days.get(peer)
        if day is None or now - day.began >= _DAY_S:
            day = self._days[peer] = _PeerDay(now, 0)
        return day

    def forget_idle(self, now: float) -> None:
        """Drop counters of peers whose day is over (bounded memory)."""
        for peer in [p for p, d in self._days.items() if now - d.began >= _DAY_S]:
            del self._days[peer]
            self._peers.pop(peer, None)
