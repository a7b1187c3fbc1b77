"""The byte relay (the shape of the RPC tunnel): piping, counting, failure, loopback only."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import anyio
import pytest

from aria.p2p.transport.relay import Relay, RelayStats, TcpFarSide, relay_in_thread
from aria.rpc import listening_addresses


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A one-connection-at-a-time echo server on 127.0.0.1 (in a thread)."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(5)


def _exchange(port: int, payloads: list[bytes]) -> bytes:
    """Send each payload and read its echo before sending the next (one round trip each)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        received = b""
        for payload in payloads:
            client.sendall(payload)
            expected = len(received) + len(payload)
            while len(received) < expected:
                received += client.recv(65536)
        return received


def test_relay_pipes_both_ways_and_counts(echo_server: int) -> None:
    payloads = [b"hello", b"x" * 300_000, b"bye"]
    with relay_in_thread(TcpFarSide("127.0.0.1", echo_server)) as (port, relay):
        assert _exchange(port, payloads) == b"".join(payloads)
        assert ("127.0.0.1", port) in listening_addresses(os.getpid())
        assert all(host == "127.0.0.1" for host, _ in listening_addresses(os.getpid()))
    total = sum(map(len, payloads))
    assert (relay.stats.to_far, relay.stats.to_near) == (total, total)
    assert relay.stats.connections == 1
    assert relay.stats.round_trips >= len(payloads)


def test_unreachable_far_side_closes_the_near_side() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]  # nothing will listen here
    with (
        relay_in_thread(TcpFarSide("127.0.0.1", dead_port)) as (port, relay),
        socket.create_connection(("127.0.0.1", port), timeout=5) as client,
    ):
        client.sendall(b"anyone?")
        try:
            answer = client.recv(10)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # closed or reset, as a dead worker's connection would be
    assert relay.stats.total == 0


@pytest.mark.anyio
async def test_far_side_ending_ends_the_pipe(echo_server: int) -> None:
    stats = RelayStats()
    relay = Relay(TcpFarSide("127.0.0.1", echo_server), stats)
    async with anyio.create_task_group() as group:
        port = await group.start(relay.serve)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(b"ping")
        assert await stream.receive() == b"ping"
        await stream.aclose()
        group.cancel_scope.cancel()
    assert (stats.to_far, stats.to_near) == (4, 4)
