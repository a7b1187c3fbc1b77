"""Per-peer rate limits and reputation (pure; time is a parameter).

Every inbound ARIA stream costs a token from the peer's bucket (``rate_per_s``,
``burst``); an empty bucket refuses the stream and costs a small penalty. Protocol
violations (malformed, oversized, truncated, unknown messages, refused handshakes,
timeouts) subtract their penalty from the peer's score, which slowly recovers. A
score below ``ban_below`` bans the peer for ``ban_s``: the node disconnects it and
refuses its connections and streams until the ban lapses (the score then restarts).
"""

from __future__ import annotations

from dataclasses import dataclass

from aria.p2p.spec import GuardSpec

__all__ = ["Ban", "PeerGuard", "handshake_penalty"]


# Handshake refusals that are the peer's fault (its record or its protocol use).
_REFUSED_RECORDS = frozenset(
    {
        "bad_signature",
        "stale_timestamp",
        "replayed_nonce",
        "incompatible_version",
        "peer_mismatch",
        "bad_payload",
        "bad_echo",
        "wrong_kind",
        "bad_key",
        "unexpected_message",
        "too_many_frames",
    }
)


def handshake_penalty(reason: str, violation: str | None) -> str | None:
    """The penalty kind for a handshake WE refused (None: not the peer's fault)."""
    if violation is not None:
        return violation
    if reason == "timeout":
        return "timeout"
    return "handshake_rejected" if reason in _REFUSED_RECORDS else None


@dataclass
class _Standing:
    score: float
    tokens: float
    updated: float
    banned_until: float = 0.0


@dataclass(frozen=True)
class Ban:
    peer: str
    until: float
    reason: str


class PeerGuard:
    """Tracks every peer's bucket, score and ban."""

    def __init__(self, spec: GuardSpec) -> None:
        self._spec = spec
        self._peers: dict[str, _Standing] = {}

    def _standing(self, peer: str, now: float) -> _Standing:
        spec = self._spec
        state = self._peers.get(peer)
        if state is None:
            state = _Standing(score=spec.initial, tokens=spec.burst, updated=now)
            self._peers[peer] = state
            return state
        if state.banned_until and now >= state.banned_until:
            state.banned_until, state.score = 0.0, spec.initial
        elapsed = max(0.0, now - state.updated)
        state.tokens = min(spec.burst, state.tokens + elapsed * spec.rate_per_s)
        state.score = min(spec.initial, state.score + elapsed * spec.recover_per_s)
        state.updated = now
        return state

    def is_banned(self, peer: str, now: float) -> bool:
        return self._standing(peer, now).banned_until > now

    def score(self, peer: str, now: float) -> float:
        return self._standing(peer, now).score

    def admit(self, peer: str, now: float) -> bool:
        """Spend one token for a new inbound stream; False means refuse it.

        A refused stream costs the ``rate_limited`` penalty (see ``penalize``).
        """
        state = self._standing(peer, now)
        if state.banned_until > now:
            return False
        if state.tokens >= 1.0:
            state.tokens -= 1.0
            return True
        self.penalize(peer, "rate_limited", now)
        return False

    def penalize(self, peer: str, kind: str, now: float) -> Ban | None:
        """Lower ``peer``'s score for a violation of ``kind`` (a key of the penalty table).

        Returns the new ``Ban`` when this penalty crossed the threshold (the caller
        disconnects the peer), else None.

        Raises:
            KeyError: ``kind`` is not in the penalty table (a programming error).
        """
        penalty = self._spec.penalties[kind]
        state = self._standing(peer, now)
        if state.banned_until > now:
            return None
        state.score -= penalty
        if state.score < self._spec.ban_below:
            state.banned_until = now + self._spec.ban_s
            return Ban(peer=peer, until=state.banned_until, reason=kind)
        return None

    def bans(self, now: float) -> list[Ban]:
        return [
            Ban(peer, s.banned_until, "score")
            for peer, s in self._peers.items()
            if s.banned_until > now
        ]

    def prune(self, now: float) -> None:
        """Forget peers with a clean record, so memory follows misbehaviour, not traffic."""
        spec = self._spec
        for peer in list(self._peers):
            state = self._standing(peer, now)
            if (
                not state.banned_until
                and state.score >= spec.initial
                and state.tokens >= spec.burst
            ):
                del self._peers[peer]
