"""What the library uses of the running node, and nothing more.

The library's fetcher and server depend on :class:`PeerNet` (open a library stream to a
peer, admit an inbound one, penalise a peer, the DHT's provider records, which peers say
they share a library, the consent contract in force, a peer's reputation) rather than on
the node that wires them; :class:`NodeNet` is that view of a running
node's :class:`aria.p2p.context.PeerContext` and DHT, and tests give the library a fake one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import trio

from aria.config import ConsentSettings
from aria.consent import Contract
from aria.p2p.adverts import provider_key

if TYPE_CHECKING:
    from aria.p2p.context import PeerContext
    from aria.p2p.transport.dht import AriaDht

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
    """:class:`PeerNet` over a running node: its narrow context and its DHT (None until
    the node listens)."""

    def __init__(self, ctx: PeerContext, dht: Callable[[], AriaDht | None]) -> None:
        self._ctx, self._dht = ctx, dht

    @property
    def peer_id(self) -> str:
        return self._ctx.key.peer_id

    def now(self) -> float:
        return self._ctx.clock()

    def consent(self) -> ConsentSettings:
        return self._ctx.settings.consent

    def contract(self) -> Contract:
        return self._ctx.provenance.contract().contract

    def reputation(self, peer: str) -> float:
        return self._ctx.reputation(peer)

    def _key(self, sha256: str) -> bytes:
        return provider_key(self._ctx.spec.library.key_prefix + sha256)

    async def open_stream(self, peer: str, timeout_s: float) -> LibraryStream:
        """A library stream to ``peer``, reaching it first when not connected.

        Raises:
            PeerError: not a peer id, unreachable, or no stream in time.
        """
        stream: LibraryStream = await self._ctx.open_stream(
            peer, self._ctx.spec.library.protocol, timeout_s
        )
        return stream

    async def admit(self, stream: Any) -> str | None:
        """The peer of an inbound stream when it is a verified ARIA node within its rate
        limit; otherwise the stream is reset and None returned."""
        return await self._ctx.admit_stream(stream)

    def penalize(self, peer: str, kind: str) -> None:
        self._ctx.penalize(peer, kind)

    async def provide(self, sha256: str) -> None:
        dht = self._dht()
        if dht is not None:
            await dht.provide(self._key(sha256))

    async def find_providers(self, sha256: str) -> list[str]:
        dht = self._dht()
        if dht is None:
            return []
        found = await dht.find_providers(self._key(sha256), 50)
        return [p for p in found if p != self.peer_id]

    def verified_peers(self) -> list[str]:
        return [record.peer_id for record in self._ctx.book.verified()]

    def sharing_peers(self) -> list[str]:
        """Verified peers whose current advert says they share their library."""
        book, now = self._ctx.book, self._ctx.clock()
        out = []
        for record in book.verified():
            advert = book.advert(record.peer_id, now)
            if advert is not None and advert.consent.share_library:
                out.append(record.peer_id)
        return out

    async def offers(self, model_id: str) -> list[tuple[str, str]]:
        """(peer, sha256) of each verified advert offering ``model_id`` (catalog pins and
        the denylist already applied, :func:`aria.p2p.reports.find_providers`)."""
        from aria.p2p.reports import find_providers

        dht = self._dht()
        if dht is None:
            return []
        return [(p.peer_id, p.model.sha256) for p in await find_providers(self._ctx, dht, model_id)]
