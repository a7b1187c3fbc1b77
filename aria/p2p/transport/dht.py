"""ARIA's use of py-libp2p's Kademlia DHT: advert records and provider lookups.

ARIA runs its own DHT, never the public IPFS one: py-libp2p's ``KadDHT`` is given a
view of the host (:class:`_AriaKadHost`) that speaks ``/aria/kad/1.0.0`` instead of
``/ipfs/kad/1.0.0`` and talks only to peers that completed the ARIA handshake: an
inbound DHT stream from anyone else is reset, an outbound one waits for the handshake
(or fails). Its routing table admits only such verified peers, and its provider store
keeps room for vouched peers over squatters (:func:`aria.p2p.providers.provider_room`).

Two py-libp2p 0.8.1 behaviours are worked around here (both shown by tests in
``tests/p2p/test_p2p_dht.py``):

* ``get_value`` answers from the local value store first, and caches whatever it
  fetched for 24 h regardless of the record's own expiry — so a node would keep
  seeing a peer's first advert (old load, withdrawn models) for a day. ARIA drops
  its local copy of a *foreign* advert before each lookup; the DHT re-stores the
  best record it then finds.
* ``find_providers`` returns only the local provider table when it holds any entry
  for the key, so a node that once learnt one provider never sees a second. ARIA
  asks the k closest peers of the key directly (one GET_PROVIDERS round after the
  iterative FIND_NODE walk, which is where providers are stored) and merges the
  local table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.adverts import Advert, AdvertError, advert_key, decode_advert, select_advert
from aria.p2p.netpolicy import ip_port, scope_of, subnet_of
from aria.p2p.providers import Evict, ProviderEntry, Refuse, provider_room
from aria.p2p.spec import ProtocolSpec

if TYPE_CHECKING:
    from libp2p.abc import IHost, INetStream
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import PeerInfo

# Is this peer a verified ARIA node? Waits up to the given seconds for a handshake in
# progress (connecting first, for an outbound question, when ``dial`` is True).
Verifier = Callable[["ID", float, bool], Awaitable[bool]]
Vouched = Callable[[str], bool]

__all__ = ["AriaDht", "make_validator"]

log = logging.getLogger(__name__)

_QUERY_TIMEOUT_S = 10.0
_IPFS_KAD = "/ipfs/kad/1.0.0"


def make_validator(spec: ProtocolSpec, clock: Callable[[], float]) -> Any:
    """A libp2p ``Validator`` for the ``/aria/`` namespace, backed by ``decode_advert``."""
    from libp2p.records.validator import Validator

    class AdvertValidator(Validator):
        def validate(self, key: str, value: bytes) -> None:
            try:
                decode_advert(value, spec, now=clock(), key=key)
            except AdvertError as exc:
                raise ValueError(f"invalid ARIA advert: {exc}") from None

        def select(self, key: str, values: list[bytes]) -> int:
            return select_advert(values, spec, now=clock())

    return AdvertValidator()


class _AriaKadHost:
    """The host as ``KadDHT`` sees it: ARIA's protocol id, verified ARIA peers only."""

    def __init__(self, host: IHost, protocol: str, verified: Verifier, wait_s: float) -> None:
        self._host, self._protocol, self._verified, self._wait_s = host, protocol, verified, wait_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def _ours(self, protocol: object) -> Any:
        from libp2p.custom_types import TProtocol

        return TProtocol(self._protocol) if str(protocol) == _IPFS_KAD else protocol

    def set_stream_handler(self, protocol: object, handler: Callable[..., Awaitable[None]]) -> None:
        async def gated(stream: INetStream) -> None:
            if not await self._verified(stream.muxed_conn.peer_id, self._wait_s, False):
                with contextlib.suppress(Exception):
                    await stream.reset()
                return
            await handler(stream)

        self._host.set_stream_handler(self._ours(protocol), gated)

    def remove_stream_handler(self, protocol: object) -> None:
        self._host.remove_stream_handler(self._ours(protocol))

    async def new_stream(self, peer: ID, protocols: Sequence[object]) -> INetStream:
        from libp2p.network.stream.exceptions import StreamError

        if not await self._verified(peer, self._wait_s, True):
            raise StreamError(f"{peer} is not a verified ARIA node")
        return await self._host.new_stream(peer, [self._ours(p) for p in protocols])


class AriaDht:
    """A server-mode KadDHT on ARIA's protocol, with ARIA's validator, plus the lookups
    ARIA needs. ``verified``/``vouched`` come from the node (its handshakes and adverts)."""

    def __init__(
        self,
        host: IHost,
        spec: ProtocolSpec,
        clock: Callable[[], float],
        verified: Verifier,
        vouched: Vouched,
    ) -> None:
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT

        self.host = host
        self.spec = spec
        self._clock = clock
        self._verified = verified
        self._vouched = vouched
        view = _AriaKadHost(host, spec.dht_id, verified, spec.handshake_timeout_s)
        self.kad = KadDHT(view, DHTMode.SERVER)  # type: ignore[arg-type]
        self.kad.register_validator(spec.dht_namespace, make_validator(spec, clock))
        self._gate_routing_table()
        self._gate_provider_store()

    def _gate_routing_table(self) -> None:
        table = self.kad.routing_table
        add = table.add_peer

        async def add_verified(peer: Any, **_: Any) -> bool:
            if not await self._verified(getattr(peer, "peer_id", peer), 0.0, False):
                return False
            return bool(await add(peer, skip_server_mode_check=True))

        table.add_peer = add_verified  # type: ignore[method-assign,assignment]

    def _gate_provider_store(self) -> None:
        store = self.kad.provider_store
        add = store.add_provider

        def add_with_room(key: bytes, provider: PeerInfo) -> None:
            held = {
                p: self._entry(r.provider_info) for p, r in store.providers.get(key, {}).items()
            }
            verdict = provider_room(held, self._entry(provider))
            if isinstance(verdict, Refuse):
                log.debug("no room for provider %s: %s", provider.peer_id, verdict.reason)
                return
            if isinstance(verdict, Evict):
                store.providers[key].pop(verdict.peer_id, None)
            add(key, provider)

        store.add_provider = add_with_room  # type: ignore[method-assign]

    def _entry(self, info: PeerInfo) -> ProviderEntry:
        subnet = None
        for addr in getattr(info, "addrs", []) or []:
            target = ip_port(addr)
            if target is not None and scope_of(target[0]) in ("public", "private"):
                subnet = subnet_of(target[0])
                break
        peer = str(info.peer_id)
        return ProviderEntry(peer, subnet, self._vouched(peer))

    @property
    def routing_table_size(self) -> int:
        return int(self.kad.get_routing_table_size())

    def routing_table_peers(self) -> list[ID]:
        return list(self.kad.routing_table.get_peer_ids())

    async def add_peer(self, peer: ID) -> None:
        try:
            await self.kad.routing_table.add_peer(peer)
        except Exception as exc:  # a peer that vanished meanwhile is not an error
            log.debug("could not add %s to the routing table: %s", peer, exc)

    async def publish_advert(self, value: bytes) -> None:
        """Store our advert locally and at the k closest peers of its key."""
        key = advert_key(str(self.host.get_id()), self.spec)
        await self.kad.put_value(key, value)

    async def fetch_advert(self, peer: str) -> Advert | None:
        """The peer's current verified advert, or None (missing, invalid or expired)."""
        key = advert_key(peer, self.spec)
        if peer != str(self.host.get_id()):
            self.kad.value_store.remove(key.encode("utf-8"))
        with trio.move_on_after(_QUERY_TIMEOUT_S * 2):
            try:
                value = await self.kad.get_value(key)
            except Exception as exc:
                log.debug("advert lookup for %s failed: %s", peer, exc)
                return None
            if value is None:
                return None
            try:
                return decode_advert(value, self.spec, now=self._clock(), key=key)
            except AdvertError as exc:
                log.info("refused the advert of %s: %s", peer, exc)
        return None

    async def provide(self, key: bytes) -> bool:
        try:
            return bool(await self.kad.provider_store.provide(key))
        except Exception as exc:
            log.debug("provide failed: %s", exc)
            return False

    async def find_providers(self, key: bytes, count: int = 20) -> list[str]:
        """Peer ids that announced ``key``: the k closest peers' tables plus ours."""
        store = self.kad.provider_store
        found: dict[str, None] = {str(p.peer_id): None for p in store.get_providers(key)}
        with trio.move_on_after(_QUERY_TIMEOUT_S * 2):
            closest = await self.kad.peer_routing.find_closest_peers_network(key)
            me = self.host.get_id()

            async def ask(peer: ID) -> None:
                with trio.move_on_after(_QUERY_TIMEOUT_S):
                    providers, _closer = await store._get_providers_from_peer_with_closers(
                        peer, key
                    )
                    for info in providers:
                        store.add_provider(key, info)
                        found.setdefault(str(info.peer_id), None)

            async with trio.open_nursery() as nursery:
                for peer in closest:
                    if peer != me:
                        nursery.start_soon(ask, peer)
        return list(found)[:count]
