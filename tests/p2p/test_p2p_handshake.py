"""The handshake state machine over an in-memory link with a fake clock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import cast

import pytest
from pydantic import BaseModel

from aria.p2p.codec import End, Violation, encode_frame, encode_message
from aria.p2p.handshake import (
    HandshakeComplete,
    HandshakeFailed,
    HandshakeMachine,
    Hello,
    ReplayGuard,
)
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.keys import NodeKey, PeerId
from aria.p2p.records import seal
from aria.p2p.spec import ProtocolSpec, load_spec
from tests.p2p.sim import FakeClock, Link

SPEC = load_spec()


def machine(
    key: NodeKey,
    peer: NodeKey | str,
    *,
    initiator: bool,
    replay: ReplayGuard | None = None,
    spec: ProtocolSpec = SPEC,
) -> HandshakeMachine:
    expected = peer.peer_id if isinstance(peer, NodeKey) else peer
    return HandshakeMachine(
        initiator=initiator,
        key=key,
        agent="aria/test",
        hardware=HardwareSummary(arch="x86_64", cpu_cores=2, memory_gb=8.0),
        expected_peer=PeerId(expected),
        replay=replay or ReplayGuard(64, 120.0),
        spec=spec,
    )


def pair(tamper: Callable[[str, bytes], bytes] | None = None) -> tuple[NodeKey, NodeKey, Link]:
    a, b = NodeKey.generate(), NodeKey.generate()
    link = Link(machine(a, b, initiator=True), machine(b, a, initiator=False), FakeClock())
    if tamper is not None:
        link.tamper = tamper
    link.start()
    return a, b, link


def failures(events: Sequence[object]) -> list[HandshakeFailed]:
    return [e for e in events if isinstance(e, HandshakeFailed)]


def test_both_sides_complete_and_learn_each_other() -> None:
    a, b, link = pair()
    link.run()
    [done_a] = link.events_a
    [done_b] = link.events_b
    assert isinstance(done_a, HandshakeComplete) and done_a.info.peer_id == b.peer_id
    assert isinstance(done_b, HandshakeComplete) and done_b.info.peer_id == a.peer_id
    assert done_b.info.hardware.cpu_cores == 2
    assert link.a.done and link.b.done
    # Each side ended its half with the explicit end marker.
    assert link.wire_a_to_b[-1].endswith(encode_message(End(), 64))
    assert link.wire_b_to_a[-1].endswith(encode_message(End(), 64))


def test_incompatible_major_version_is_refused_with_reason() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    old = dataclasses.replace(SPEC, version="0.9")
    link = Link(
        machine(a, b, initiator=True, spec=old), machine(b, a, initiator=False), FakeClock()
    )
    link.start()
    link.run()
    [refused] = failures(link.events_b)
    assert refused.reason == "incompatible_version" and not refused.by_peer
    [told] = failures(link.events_a)
    assert told.by_peer and told.reason == "incompatible_version"


def test_minor_version_difference_is_compatible() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    newer = dataclasses.replace(SPEC, version=f"{SPEC.major}.9")
    link = Link(
        machine(a, b, initiator=True, spec=newer), machine(b, a, initiator=False), FakeClock()
    )
    link.start()
    link.run()
    assert all(isinstance(e, HandshakeComplete) for e in link.events_a + link.events_b)


def _flip_signature(who: str, data: bytes) -> bytes:
    if who != "a" or b'"hello"' not in data:
        return data
    frame = json.loads(data[4:])
    signature = bytearray(frame["record"]["signature"].encode())
    signature[5] = ord("A") if signature[5] != ord("A") else ord("B")
    frame["record"]["signature"] = signature.decode()
    return encode_frame(json.dumps(frame).encode(), 1 << 20)


def test_bad_signature_is_refused() -> None:
    _, _, link = pair(tamper=_flip_signature)
    link.run()
    [refused] = failures(link.events_b)
    assert refused.reason == "bad_signature"
    assert failures(link.events_a)[0].by_peer


def test_stale_timestamp_is_refused() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    clock_a, clock_b = FakeClock(), FakeClock()
    initiator, responder = machine(a, b, initiator=True), machine(b, a, initiator=False)
    initiator.start(clock_a())
    hello = initiator.data_to_send()
    clock_b.advance(SPEC.max_clock_skew_s + 5)  # b's clock is ahead: a's hello looks old
    responder.start(clock_b())
    [refused] = responder.receive_data(hello, clock_b())
    assert isinstance(refused, HandshakeFailed) and refused.reason == "stale_timestamp"


def test_replayed_hello_is_refused() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    clock = FakeClock()
    shared = ReplayGuard(64, 120.0)
    initiator = machine(a, b, initiator=True)
    initiator.start(clock())
    hello = initiator.data_to_send()
    first = machine(b, a, initiator=False, replay=shared)
    first.start(clock())
    assert first.receive_data(hello, clock()) == []  # accepted, waiting for End
    clock.advance(5)
    second = machine(b, a, initiator=False, replay=shared)
    second.start(clock())
    [refused] = second.receive_data(hello, clock())
    assert isinstance(refused, HandshakeFailed) and refused.reason == "replayed_nonce"


def test_hello_signed_by_another_peer_is_refused() -> None:
    a, b, mallory = NodeKey.generate(), NodeKey.generate(), NodeKey.generate()
    clock = FakeClock()
    initiator = machine(mallory, b, initiator=True)  # mallory's hello ...
    initiator.start(clock())
    responder = machine(b, a, initiator=False)  # ... arrives on a connection from a
    responder.start(clock())
    [refused] = responder.receive_data(initiator.data_to_send(), clock())
    assert isinstance(refused, HandshakeFailed) and refused.reason == "peer_mismatch"


def test_old_welcome_cannot_answer_a_new_hello() -> None:
    a, b, link = pair()
    link.run()
    old_welcome = link.wire_b_to_a[0]
    clock = link.clock
    fresh = machine(a, b, initiator=True)
    fresh.start(clock())
    fresh.data_to_send()
    events = fresh.receive_data(old_welcome, clock())
    assert failures(events)[0].reason in {"bad_echo", "replayed_nonce"}


def test_truncated_stream_and_timeout() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    clock = FakeClock()
    responder = machine(b, a, initiator=False)
    responder.start(clock())
    initiator = machine(a, b, initiator=True)
    initiator.start(clock())
    hello = initiator.data_to_send()
    assert responder.receive_data(hello[:10], clock()) == []
    [cut] = failures(responder.receive_eof(clock()))
    assert cut.reason == "truncated" and cut.violation is Violation.TRUNCATED

    waiting = machine(b, a, initiator=False)
    waiting.start(clock())
    assert waiting.handle_timer(clock()) == []
    clock.advance(SPEC.handshake_timeout_s + 1)
    [late] = failures(waiting.handle_timer(clock()))
    assert late.reason == "timeout"


def test_oversized_unknown_and_excess_frames() -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    clock = FakeClock()
    big = machine(b, a, initiator=False)
    big.start(clock())
    [event] = failures(big.receive_data((SPEC.handshake_frame + 1).to_bytes(4, "big"), clock()))
    assert event.violation is Violation.OVERSIZED

    odd = machine(b, a, initiator=False)
    odd.start(clock())
    [event] = failures(odd.receive_data(encode_frame(b'{"type":"gossip"}', 100), clock()))
    assert event.violation is Violation.UNKNOWN_MESSAGE

    chatty = machine(b, a, initiator=False)
    chatty.start(clock())
    events = chatty.receive_data(encode_message(End(), 64) * (SPEC.handshake_frames + 1), clock())
    assert failures(events)[0].violation is Violation.MALFORMED


@pytest.mark.parametrize("timestamp", ["NaN", "Infinity"])
def test_non_finite_timestamps_are_refused(timestamp: str) -> None:
    a, b = NodeKey.generate(), NodeKey.generate()
    clock = FakeClock()
    initiator = machine(a, b, initiator=True)
    initiator.start(clock())
    frame = json.loads(initiator.data_to_send()[4:])
    payload = json.loads(frame["record"]["payload"])
    payload["timestamp"] = 0.0
    text = json.dumps(payload).replace("0.0", timestamp)
    forged = Hello(record=seal("hello", cast(BaseModel, _Raw(text)), a))
    responder = machine(b, a, initiator=False)
    responder.start(clock())
    [event] = responder.receive_data(encode_message(forged, 1 << 20), clock())
    assert isinstance(event, HandshakeFailed) and event.reason == "bad_payload"


class _Raw:
    """Seals a hand-written payload (to forge odd but correctly signed records)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def model_dump(self, mode: str = "json") -> object:
        return json.loads(self.text)
