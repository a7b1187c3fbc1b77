"""The RPC tunnel ``/aria/rpc-tunnel/1.0.0``: ggml-rpc bytes inside libp2p streams.

ggml-rpc has no authentication or encryption, so no RPC port ever leaves loopback.
The requesting node runs a :class:`~aria.p2p.transport.relay.Relay` on 127.0.0.1; each connection
the orchestrator makes to it becomes one libp2p stream (Noise-encrypted, to a peer
id the handshake verified). The serving node answers the stream with one frame,
``accept`` or ``reject`` (the consent contract's reason when it does not lend split
work to this peer now — ``task_not_allowed``, ``peer_not_allowed``, ``low_reputation``,
``outside_hours``...; ``busy`` while another peer's session holds the worker; ``failed``
if its worker cannot start), then joins it to its own confined RPC worker on 127.0.0.1 through the
ggml-rpc filter (:mod:`aria.p2p.lending`) until either side ends; the end of one side
closes the other at once, so a dead worker or peer looks like a reset to the
orchestrator.

The answer frames and the requester's reading of them are the sans-I/O
:mod:`aria.p2p.tunnel_protocol`, run by the pump; the serving side is
:mod:`aria.p2p.lending`, whose RPC-worker starter the node injects (so the peer layer
never imports split inference).

Control ops: ``tunnel {"peer_id"} -> {"port"}`` opens (or returns) the local port
for a peer after checking that the peer accepts; ``tunnel_close {"peer_id"}``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import trio

from aria.errors import ConsentRefused, InvalidRequest, PeerError
from aria.p2p.codec import End
from aria.p2p.context import PeerContext, reset
from aria.p2p.inference import CONSENT_REASONS, Reason, Reject
from aria.p2p.lending import Lending
from aria.p2p.transport.pump import pump
from aria.p2p.transport.relay import Relay, RelayStats
from aria.p2p.tunnel_protocol import (
    Accept,
    Accepted,
    Broken,
    Refused,
    TimedOut,
    TunnelDial,
    encode_answer,
)

if TYPE_CHECKING:
    from libp2p.abc import INetStream

__all__ = ["TUNNEL_PROTOCOL", "StreamDuplex", "Tunnels"]

log = logging.getLogger(__name__)

TUNNEL_PROTOCOL = "/aria/rpc-tunnel/1.0.0"
_OPEN_TIMEOUT_S = 60.0  # the first stream may wait for the peer's worker to start


class StreamDuplex:
    """A libp2p stream as the relay's ``Duplex`` (send / receive / aclose); ``rest`` is
    what arrived with the tunnel's answer, delivered first."""

    def __init__(self, stream: INetStream, rest: bytes = b"") -> None:
        self._stream = stream
        self._rest = rest

    async def send(self, item: bytes) -> None:
        try:
            await self._stream.write(item)
        except Exception as exc:  # py-libp2p raises several types for a gone stream
            raise anyio.BrokenResourceError(str(exc)) from None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._rest:
            data, self._rest = self._rest[:max_bytes], self._rest[max_bytes:]
            return data
        try:
            data = await self._stream.read(max_bytes)
        except Exception:
            data = b""
        if not data:
            raise anyio.EndOfStream
        return bytes(data)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._stream.reset()


class _PeerFarSide:
    """The relay's far side: a new tunnel stream to ``peer`` per local connection."""

    def __init__(self, tunnels: Tunnels, peer: str) -> None:
        self._tunnels, self._peer = tunnels, peer

    async def open(self) -> StreamDuplex:
        try:
            return await self._tunnels.open_stream(self._peer)
        except PeerError as exc:
            raise OSError(exc.message) from None


class Tunnels:
    """Both ends of the RPC tunnel for one node: its lending and its relays."""

    def __init__(self, ctx: PeerContext, lending: Lending) -> None:
        self.ctx = ctx
        self.lending = lending
        self._open_lock = trio.Lock()
        self._relays: dict[str, _Tunnel] = {}

    async def run(self) -> None:
        """Live as long as the node; stop the RPC worker when the node stops."""
        try:
            await trio.sleep_forever()
        finally:
            for tunnel in self._relays.values():
                tunnel.scope.cancel()
            with trio.CancelScope(shield=True):
                await self.lending.stop_worker()

    # -- serving side ---------------------------------------------------------------

    async def serve(self, stream: INetStream) -> None:
        """Handle one inbound tunnel stream (registered on the node's host)."""
        peer = await self.ctx.admit_stream(stream)
        if peer is None:
            return
        try:
            await self.lending.serve(stream, peer, self._refuse, self._accept)
        except Exception as exc:
            log.info("RPC tunnel from %s ended: %s", peer, exc)
            await reset(stream)

    async def _refuse(self, stream: INetStream, reason: Reason, message: str) -> None:
        answer = encode_answer(Reject(reason=reason, message=message)) + encode_answer(End())
        await stream.write(answer)
        await stream.close()

    async def _accept(self, stream: INetStream) -> StreamDuplex:
        await stream.write(encode_answer(Accept()))
        return StreamDuplex(stream)

    # -- requesting side ------------------------------------------------------------

    async def open_stream(self, peer: str) -> StreamDuplex:
        """A tunnel stream to ``peer`` that its node accepted.

        Raises:
            ConsentRefused: the peer's contract does not lend compute to us now (its
                reason: ``task_not_allowed``, ``peer_not_allowed``, ...).
            PeerError: unreachable, refused for another reason, or broke the protocol.
        """
        stream = await self.ctx.open_stream(peer, TUNNEL_PROTOCOL, _OPEN_TIMEOUT_S)
        try:
            events = await pump(stream, TunnelDial(_OPEN_TIMEOUT_S), self.ctx.clock)
        except BaseException:
            await reset(stream)  # a late "accept" would pin the peer's worker
            raise
        answer = events[0] if events else None
        if isinstance(answer, Accepted):
            return StreamDuplex(stream, answer.rest)
        await reset(stream)
        if isinstance(answer, Refused):
            reject = answer.reject
            text = f"peer {peer} refused the RPC tunnel ({reject.reason}): {reject.message}"
            if reject.reason in CONSENT_REASONS:
                raise ConsentRefused(text)
            raise PeerError(text)
        if isinstance(answer, Broken):
            raise PeerError(f"peer {peer} broke the RPC tunnel protocol ({answer.detail})")
        if isinstance(answer, TimedOut):
            raise PeerError(f"peer {peer} did not answer the RPC tunnel in {answer.waited_s:.0f} s")
        raise PeerError(f"peer {peer} closed the RPC tunnel without an answer")

    async def open_op(self, args: dict[str, Any]) -> dict[str, Any]:
        """Control op ``tunnel``: the 127.0.0.1 port whose connections reach ``peer_id``'s
        RPC worker (checked once now, so a refusal is an error here, not a dead port)."""
        peer = _peer_arg(args)
        async with self._open_lock:  # two callers must not start two relays for one peer
            if peer not in self._relays:
                await self._start_relay(peer)
        return self._relays[peer].report(peer)

    async def _start_relay(self, peer: str) -> None:
        probe = await self.open_stream(peer)
        await probe.aclose()
        relay = Relay(_PeerFarSide(self, peer))
        scope = trio.CancelScope()

        async def serve(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await relay.serve(task_status=task_status)
            self._relays.pop(peer, None)

        port = await self.ctx.start(serve)
        self._relays[peer] = _Tunnel(port, scope, relay.stats)
        log.info("RPC tunnel to %s listening on 127.0.0.1:%d", peer, port)

    async def close_op(self, args: dict[str, Any]) -> dict[str, Any]:
        """Control op ``tunnel_close``: stop ``peer_id``'s local port; report its traffic."""
        peer = _peer_arg(args)
        tunnel = self._relays.pop(peer, None)
        if tunnel is None:
            return {"closed": False, "peer_id": peer}
        tunnel.scope.cancel()
        return {"closed": True, **tunnel.report(peer)}


@dataclass(frozen=True)
class _Tunnel:
    """One open local tunnel port and the bytes it carried."""

    port: int
    scope: trio.CancelScope
    stats: RelayStats

    def report(self, peer: str) -> dict[str, Any]:
        return {
            "peer_id": peer,
            "port": self.port,
            "bytes_to_peer": self.stats.to_far,
            "bytes_from_peer": self.stats.to_near,
            "connections": self.stats.connections,
        }


def _peer_arg(args: dict[str, Any]) -> str:
    peer = args.get("peer_id")
    if not isinstance(peer, str) or not 0 < len(peer) <= 128:
        raise InvalidRequest("a tunnel needs a peer id")
    return peer
