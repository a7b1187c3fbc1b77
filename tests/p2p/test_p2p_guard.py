"""Peer guard: token buckets, penalties, bans and recovery under a fake clock."""

from __future__ import annotations

import dataclasses

from aria.p2p.codec import Violation
from aria.p2p.guard import PeerGuard, handshake_penalty
from aria.p2p.spec import load_spec

SPEC = load_spec().guard


def test_rate_limit_refuses_then_refills() -> None:
    guard, now = PeerGuard(SPEC), 0.0
    admitted = sum(guard.admit("p", now) for _ in range(int(SPEC.burst) + 5))
    assert admitted == int(SPEC.burst)
    assert guard.score("p", now) < SPEC.initial  # refusals cost a little
    assert guard.admit("p", now + 1.0)  # rate_per_s tokens came back


def test_violations_lead_to_a_temporary_ban() -> None:
    guard, now = PeerGuard(SPEC), 100.0
    bans = [guard.penalize("bad", "oversized", now) for _ in range(3)]
    assert bans[:2] == [None, None] and bans[2] is not None
    assert bans[2].until == now + SPEC.ban_s
    assert guard.is_banned("bad", now + 1) and not guard.admit("bad", now + 1)
    assert guard.penalize("bad", "malformed", now + 2) is None  # already banned
    assert [b.peer for b in guard.bans(now + 3)] == ["bad"]
    assert not guard.is_banned("bad", now + SPEC.ban_s + 1)
    assert guard.score("bad", now + SPEC.ban_s + 1) == SPEC.initial
    assert not guard.is_banned("good", now)


def test_score_recovers_and_clean_peers_are_pruned() -> None:
    spec = dataclasses.replace(SPEC, recover_per_s=1.0)
    guard = PeerGuard(spec)
    guard.penalize("p", "malformed", 0.0)
    assert guard.score("p", 0.0) == spec.initial - spec.penalties["malformed"]
    assert guard.score("p", 10.0) == spec.initial - spec.penalties["malformed"] + 10
    guard.admit("q", 10.0)
    guard.prune(1000.0)
    assert guard._peers == {}  # memory follows misbehaviour, not traffic


def test_handshake_penalties_only_for_the_peers_faults() -> None:
    assert handshake_penalty("oversized", Violation.OVERSIZED) == "oversized"
    assert handshake_penalty("bad_signature", None) == "handshake_rejected"
    assert handshake_penalty("replayed_nonce", None) == "handshake_rejected"
    assert handshake_penalty("timeout", None) == "timeout"
    assert handshake_penalty("no_handshake", None) is None  # not an ARIA node: no fault
    for kind in ("handshake_rejected", "timeout", *[v.value for v in Violation]):
        assert kind in SPEC.penalties
