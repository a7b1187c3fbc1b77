"""Both ends of a library stream as machines, moved by hand under a fake clock."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aria.library.machines import (
    Broken,
    ChunkArrived,
    ChunkMissing,
    Closed,
    Cut,
    FetcherDone,
    FetchMachine,
    Gained,
    Offered,
    ProviderFailed,
    Ready,
    Refused,
    Requested,
    ServeMachine,
    Stalled,
    Tick,
    Wanted,
)
from aria.library.wire import Get, Offer, encode_message, encode_piece
from aria.p2p.codec import Violation
from aria.p2p.keys import NodeKey
from tests.library.support import CHUNK, SPEC, blob, manifest_of, sha

NOW = 1_800_000_000.0
DATA = blob(3 * CHUNK + 200)


def pair() -> tuple[FetchMachine, ServeMachine]:
    fetcher, server = FetchMachine(sha(DATA), SPEC), ServeMachine(SPEC)
    fetcher.start(NOW)
    server.start(NOW)
    return fetcher, server


def to_server(fetcher: FetchMachine, server: ServeMachine) -> list[object]:
    return list(server.receive_data(fetcher.data_to_send(), NOW))


def to_fetcher(server: ServeMachine, fetcher: FetchMachine) -> list[object]:
    return list(fetcher.receive_data(server.data_to_send(), NOW))


def chunk(index: int) -> bytes:
    return DATA[index * CHUNK : (index + 1) * CHUNK]


LENGTHS = [CHUNK, CHUNK, CHUNK, 200]


def offered() -> tuple[FetchMachine, ServeMachine]:
    fetcher, server = pair()
    assert to_server(fetcher, server) == [Wanted(sha(DATA))]
    _, envelope = manifest_of(DATA, NodeKey.generate())
    server.offer(envelope, 4, "")
    events = to_fetcher(server, fetcher)
    assert events == [Offered(envelope, "")]
    fetcher.accept(LENGTHS, NOW)
    return fetcher, server


def test_a_whole_exchange() -> None:
    fetcher, server = offered()
    for index in (3, 0):
        fetcher.request(index, NOW)
    assert to_server(fetcher, server) == [Requested(3), Requested(0)]
    assert server.deadline == NOW  # a request waits: the driver wakes the owner at once
    assert server.handle_timer(NOW) == [Ready()]
    for _ in range(2):
        asked = server.next_request()
        assert asked is not None
        server.send_chunk(asked, chunk(asked))
    events = to_fetcher(server, fetcher)
    assert events == [
        ChunkArrived(3, chunk(3), sha(chunk(3))),
        ChunkArrived(0, chunk(0), sha(chunk(0))),
    ]
    assert fetcher.outstanding == () and server.next_request() is None
    fetcher.close(NOW)
    assert to_server(fetcher, server) == [FetcherDone()]
    assert to_fetcher(server, fetcher) == [Closed()]
    assert fetcher.done and server.done and not fetcher.failed and not server.failed


def test_every_write_stays_within_a_piece() -> None:
    fetcher, server = offered()
    fetcher.request(0, NOW)
    to_server(fetcher, server)
    server.next_request()
    server.send_chunk(0, chunk(0))
    data = server.data_to_send()
    frames = []
    while data:
        kind, length = struct.unpack_from(">cI", data)
        frames.append(length + 5)
        data = data[5 + length :]
    assert len(frames) == 4 and max(frames) <= SPEC.piece_size + 13


def test_a_refusal_and_a_provider_error_end_the_stream() -> None:
    fetcher, server = pair()
    to_server(fetcher, server)
    server.refuse("task_not_allowed", "not sharing")
    assert to_fetcher(server, fetcher) == [Refused("task_not_allowed", "not sharing")]
    assert fetcher.done and server.done
    fetcher, server = offered()
    fetcher.request(0, NOW)
    to_server(fetcher, server)
    server.fail("quota", "enough for today")
    assert to_fetcher(server, fetcher) == [ProviderFailed("quota", "enough for today")]


def test_cancel_missing_and_have() -> None:
    fetcher, server = offered()
    fetcher.request(1, NOW)
    fetcher.request(2, NOW)
    to_server(fetcher, server)
    fetcher.cancel(2)
    assert to_server(fetcher, server) == []
    server.announce((0, 3))
    assert server.next_request() == 1
    server.send_missing(1)
    assert to_fetcher(server, fetcher) == [ChunkMissing(2), Gained((0, 3)), ChunkMissing(1)]
    assert fetcher.outstanding == ()


@pytest.mark.parametrize(
    ("bad", "violation"),
    [
        (encode_piece(1, 0, b"x"), Violation.MALFORMED),  # never asked for
        (encode_piece(0, 5, b"x"), Violation.MALFORMED),  # not from the start
        (encode_piece(0, 0, b"x" * (CHUNK + 1)), Violation.OVERSIZED),
        (
            encode_message(Offer(manifest=manifest_of(DATA, NodeKey.generate())[1]), 1 << 20),
            Violation.UNKNOWN_MESSAGE,
        ),
        (b"Q\x00\x00\x00\x01x", Violation.MALFORMED),
        (b"M" + struct.pack(">I", SPEC.message_frame + 1), Violation.OVERSIZED),
    ],
)
def test_a_provider_breaking_the_protocol_is_named(bad: bytes, violation: Violation) -> None:
    fetcher, _server = offered()
    fetcher.request(0, NOW)
    events = fetcher.receive_data(bad, NOW)
    assert isinstance(events[-1], Broken) and events[-1].violation is violation
    assert fetcher.done and fetcher.failed


def test_data_before_the_offer_is_accepted_is_a_violation() -> None:
    fetcher, server = pair()
    to_server(fetcher, server)
    _, envelope = manifest_of(DATA, NodeKey.generate())
    server.offer(envelope, 4, "")
    to_fetcher(server, fetcher)  # offered, not yet accepted
    events = fetcher.receive_data(encode_piece(0, 0, b"x"), NOW)
    assert isinstance(events[-1], Broken)


def test_a_fetcher_flooding_requests_or_asking_past_the_end_is_cut() -> None:
    fetcher, server = offered()
    flood = b"".join(encode_message(Get(index=0), 1024) for _ in range(SPEC.max_requests + 1))
    events = server.receive_data(flood, NOW)
    assert isinstance(events[-1], Broken) and events[-1].violation is Violation.OVERSIZED
    fetcher, server = offered()
    events = server.receive_data(encode_message(Get(index=4), 1024), NOW)
    assert isinstance(events[-1], Broken)
    _fetcher, server = pair()
    assert isinstance(server.receive_data(encode_piece(0, 0, b"x"), NOW)[-1], Broken)


def test_timers() -> None:
    fetcher, server = pair()
    assert fetcher.handle_timer(NOW + SPEC.offer_timeout_s) == [Stalled((), "no offer in time")]
    assert server.handle_timer(NOW + SPEC.offer_timeout_s)[0] == Stalled((), "no request in time")
    fetcher, server = offered()
    fetcher.wake_at(NOW + 1)
    assert fetcher.deadline == NOW + 1 and fetcher.handle_timer(NOW + 1) == [Tick()]
    fetcher.request(0, NOW)
    assert fetcher.deadline == NOW + SPEC.stall_timeout_s
    stalled = fetcher.handle_timer(NOW + SPEC.stall_timeout_s)
    assert stalled == [Stalled((0,), "a requested chunk made no progress in time")]


def test_eof_before_end_is_a_cut() -> None:
    fetcher, server = offered()
    assert isinstance(fetcher.receive_eof(NOW)[0], Cut) and fetcher.failed
    assert isinstance(server.receive_eof(NOW)[0], Cut) and server.failed
    assert fetcher.receive_data(b"anything", NOW) == []


@settings(max_examples=200)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_any_bytes_give_events_never_exceptions(data: bytes, step: int) -> None:
    for make in (offered, pair):
        fetcher, server = make()
        fetcher.request(0, NOW) if make is offered else None
        for machine in (fetcher, server):
            for at in range(0, len(data), step):
                machine.receive_data(data[at : at + step], NOW)
            machine.receive_eof(NOW)
            assert machine.done
