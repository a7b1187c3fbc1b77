"""ARIA's use of py-libp2p's Kademlia DHT: advert records and provider lookups.

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

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from aria.p2p.adverts import Advert, AdvertError, advert_key, decode_advert, select_advert
from aria.p2p.spec import ProtocolSpec

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID

__all__ = ["AriaDht", "make_validator"]

log = logging.getLogger(__name__)

_QUERY_TIMEOUT_S = 10.0


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


class AriaDht:
    """A server-mode KadDHT with ARIA's validator, plus the lookups ARIA needs."""

    def __init__(self, host: IHost, spec: ProtocolSpec, clock: Callable[[], float]) -> None:
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT

        self.host = host
        self.spec = spec
        self._clock = clock
        self.kad = KadDHT(host, DHTMode.SERVER)
        self.kad.register_validator(spec.dht_namespace, make_validator(spec, clock))

    @property
    def routing_table_size(self) -> int:
        return int(self.kad.get_routing_table_size())

    def routing_table_peers(self) -> list[ID]:
        return list(self.kad.routing_table.get_peer_ids())

    async def add_peer(self, peer: ID) -> None:
        try:
            await self.kad.add_peer(peer, skip_server_mode_check=True)
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
