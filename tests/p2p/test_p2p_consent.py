"""The one consent decision every peer request goes through (pure)."""

from __future__ import annotations

from aria.config import ConsentSettings
from aria.p2p.consent import (
    ANY_PEER,
    Allowed,
    ConsentTerms,
    Denied,
    PeerAsk,
    decide,
    terms_from_settings,
)


def test_defaults_share_nothing() -> None:
    terms = terms_from_settings(ConsentSettings())
    denied = decide(terms, PeerAsk("infer", "p"))
    assert isinstance(denied, Denied) and denied.reason == "consent_off"
    assert isinstance(decide(terms, PeerAsk("lend", "p")), Denied)


def test_lending_needs_the_switch_and_a_named_peer() -> None:
    on = terms_from_settings(ConsentSettings(share_rpc=True))
    refused = decide(on, PeerAsk("lend", "stranger"))
    assert isinstance(refused, Denied) and refused.reason == "not_allowed"
    named = terms_from_settings(ConsentSettings(share_rpc=True, rpc_peers=["friend"]))
    assert decide(named, PeerAsk("lend", "friend")) == Allowed()
    assert isinstance(decide(named, PeerAsk("lend", "stranger")), Denied)
    anyone = terms_from_settings(ConsentSettings(share_rpc=True, rpc_peers=[ANY_PEER]))
    assert decide(anyone, PeerAsk("lend", "stranger")) == Allowed()


def test_a_minimum_reputation_refuses_poorly_scored_borrowers() -> None:
    terms = ConsentTerms(share_rpc=True, rpc_peers=frozenset({ANY_PEER}), rpc_min_reputation=0.5)
    low = decide(terms, PeerAsk("lend", "p", reputation=0.3))
    assert isinstance(low, Denied) and "0.50" in low.message
    assert decide(terms, PeerAsk("lend", "p", reputation=0.9)) == Allowed()


def test_inference_respects_the_job_limit() -> None:
    terms = ConsentTerms(share_inference=True, max_remote_jobs=1)
    assert decide(terms, PeerAsk("infer", "p", active_jobs=0)) == Allowed()
    busy = decide(terms, PeerAsk("infer", "p", active_jobs=1))
    assert isinstance(busy, Denied) and busy.reason == "busy"
