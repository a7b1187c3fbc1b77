"""What the library uses of the running node, and nothing more.

The library's fetcher and server depend on :class:`PeerNet` (open a library stream to a
peer, admit an inbound one, penalise a peer, the DHT's provider records, which peers say
they share a library, the consent contract in force, a peer's reputation) rather than on
the node that wires them; :class:`NodeNet` is that view of a running
:class:`aria.p2p.node.Node`, and tests give the library a fake one.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

import trio

from aria.config import ConsentSettings
from aria.consent import Contract
from aria.errors import PeerError
from aria.p2p.adverts import provider_key

if TYPE_CHECKING:
    from aria.p2p.node import Node

__all__ = ["LibraryStream", "NodeNet", "PeerNet", "end_stream"]

log = logging.getLogger(__name__)


class LibraryStream(Protocol):
    async def read(self, n: int | None = None) -> bytes: ...
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...
    async def reset(self) -> None: ...


async def end_stream(stream: LibraryStream, *, clean: bool) -> None:
    """Close a stream whose exchange ended with ``end``, reset any other (never raises)."""
    with trio.CancelScope(shield=True), trio.move_on_after(5), contextlib.suppress(Exception):
        await (stream.close() if clean else stream.reset())


class PeerNet(Protocol):
    """The node as the library sees it."""

    @property
    def peer_id(self) -> str: ...
    def now(self) -> float: ...
    def consent(self) -> ConsentSettings: ...  # the library's upload limits
    def contract(self) -> Contract: ...  # the consent contract in force now
    def reputation(self, peer: str) -> float: ...  # 0..1, as the contract's clauses read it
    async def open_stream(self, peer: str, timeout_s: float) -> LibraryStream: ...
    async def admit(self, stream: Any) -> str | None: ...
    def penalize(self, peer: str, kind: str) -> None: ...
    async def provide(self, sha256: str) -> None: ...
    async def find_providers(self, sha256: str) -> list[str]: ...
    def sharing_peers(self) -> list[str]: ...
    def verified_peers(self) -> list[str]: ...
    async def offers(self, model_id: str) -> list[tuple[str, str]]: ...


class NodeNet:
    """:class:`PeerNet` over a running node."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def peer_id(self) -> str:
        return self._node.key.peer_id

    def now(self) -> float:
        return self._node.clock()

    def consent(self) -> ConsentSettings:
        return self._node.settings.consent

    def contract(self) -> Contract:
        return self._node.provenance.contract().contract

    def reputation(self, peer: str) -> float:
        return self._node.reputation(peer)

    def _key(self, sha256: str) -> bytes:
        return provider_key(self._node.spec.library.key_prefix + sha256)

    async def open_stream(self, peer: str, timeout_s: float) -> LibraryStream:
        """A library stream to ``peer``, reaching it first when not connected.

        Raises:
            PeerError: not a peer id, unreachable, or no stream in time.
        """
        from libp2p.custom_types import TProtocol

        from aria.p2p.transport.host import connection_kind, libp2p_id

        node = self._node
        if node.host is None:
            raise PeerError("the node is not running")
        try:
            pid = libp2p_id(peer)
        except ValueError:
            raise PeerError(f"{peer!r} is not a peer id") from None
        protocol = TProtocol(node.spec.library.protocol)
        try:
            with trio.fail_after(timeout_s):
                if connection_kind(node.host, pid) == "none":
                    await node.reach(peer)
                stream: LibraryStream = await node.host.new_stream(pid, [protocol])
                return stream
        except Exception as exc:  # py-libp2p raises many types for an unreachable peer
            raise PeerError(f"cannot open a library stream to peer {peer}: {exc}") from None

    async def admit(self, stream: Any) -> str | None:
        """The peer of an inbound stream when it is a verified ARIA node within its rate
        limit; otherwise the stream is reset and None returned."""
        node = self._node
        peer = str(stream.muxed_conn.peer_id)
        record = node.book.get(peer)
        if record is None or record.verified_at is None or not node.guard.admit(peer, node.clock()):
            with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                await stream.reset()
            return None
        return peer

    def penalize(self, peer: str, kind: str) -> None:
        node = self._node
        if node.guard.penalize(peer, kind, node.clock()) is not None:
            log.warning("banning %s for %.0f s", peer, node.spec.guard.ban_s)
            node.drop_peer(peer)

    async def provide(self, sha256: str) -> None:
        if self._node.dht is not None:
            await self._node.dht.provide(self._key(sha256))

    async def find_providers(self, sha256: str) -> list[str]:
        if self._node.dht is None:
            return []
        found = await self._node.dht.find_providers(self._key(sha256), 50)
        return [p for p in found if p != self.peer_id]

    def verified_peers(self) -> list[str]:
        return [record.peer_id for record in self._node.book.verified()]

    def sharing_peers(self) -> list[str]:
        """Verified peers whose current advert says they share their library."""
        node = self._node
        now = node.clock()
        out = []
        for record in node.book.verified():
            advert = node.book.advert(record.peer_id, now)
            if advert is not None and advert.consent.share_library:
                out.append(record.peer_id)
        return out

    async def offers(self, model_id: str) -> list[tuple[str, str]]:
        """(peer, sha256) of each verified advert offering ``model_id`` (catalog pins and
        the denylist already applied, :func:`aria.p2p.reports.find_providers`)."""
        from aria.p2p.reports import find_providers

        return [(p.peer_id, p.model.sha256) for p in await find_providers(self._node, model_id)]
