"""What the control channel answers: status, peers, find (reads a running ``Node``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from aria.errors import InvalidRequest, ModelNotFound, PeerError
from aria.p2p.adverts import Advert, model_provider_key
from aria.p2p.netsize import estimate_network_size
from aria.p2p.providers import offer_fault
from aria.p2p.transport.host import connection_addrs, connection_kind, libp2p_id, ping_rtt_ms
from aria.p2p.views import ModelProvider, NetworkStatus, PeerView

if TYPE_CHECKING:
    from aria.p2p.node import Node

__all__ = [
    "control_ops",
    "find_providers",
    "node_peers",
    "node_status",
    "ping_peer_report",
]

log = logging.getLogger(__name__)

_MAX_MODEL_ID = 128
_MAX_PEER_ID = 128


def control_ops(node: Node) -> dict[str, Callable[[dict[str, Any]], Awaitable[Any]]]:
    """The control-channel operations of ``node`` (JSON in, JSON out)."""

    async def ping(_: dict[str, Any]) -> dict[str, str]:
        return {"peer_id": node.key.peer_id}

    async def status(_: dict[str, Any]) -> dict[str, Any]:
        return node_status(node).model_dump(mode="json")

    async def peers(_: dict[str, Any]) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in node_peers(node)]

    async def find(args: dict[str, Any]) -> list[dict[str, Any]]:
        model_id = args.get("model_id")
        if not isinstance(model_id, str) or not 0 < len(model_id) <= _MAX_MODEL_ID:
            raise InvalidRequest(f"find needs a model id of 1 to {_MAX_MODEL_ID} characters")
        return [p.model_dump(mode="json") for p in await find_providers(node, model_id)]

    async def ping_peer(args: dict[str, Any]) -> dict[str, Any]:
        peer = args.get("peer_id")
        if not isinstance(peer, str) or not 0 < len(peer) <= _MAX_PEER_ID:
            raise InvalidRequest("ping needs a peer id")
        return await ping_peer_report(node, peer)

    return {"ping": ping, "status": status, "peers": peers, "find": find, "ping_peer": ping_peer}


async def ping_peer_report(node: Node, peer: str) -> dict[str, Any]:
    """One libp2p ping to ``peer`` over the current connection (reached via its advert if
    not connected): a request/response that crosses whatever path the node uses. The
    peer's advert is fetched again too, so ``peers`` then shows its current state.

    Raises:
        InvalidRequest: ``peer`` is not a peer id.
        PeerError: the peer cannot be reached.
    """
    assert node.host is not None
    try:
        pid = libp2p_id(peer)
    except ValueError:
        raise InvalidRequest(f"{peer!r} is not a peer id") from None
    if connection_kind(node.host, pid) == "none":
        await node.reach(peer)
    assert node.dht is not None
    advert = await node.dht.fetch_advert(peer)
    if advert is not None:
        node.book.on_advert(peer, advert, node.clock())
    rtt = await ping_rtt_ms(node.host, pid)
    if rtt is None:
        raise PeerError(f"peer {peer} did not answer a ping")
    node.book.on_rtt(peer, rtt)
    return {"peer_id": peer, "rtt_ms": rtt, "connection": connection_kind(node.host, pid)}


def node_status(node: Node) -> NetworkStatus:
    assert node.host is not None and node.dht is not None and node.nat is not None
    now = node.clock()
    table = [str(p) for p in node.dht.routing_table_peers()]
    return NetworkStatus(
        peer_id=node.key.peer_id,
        protocol=node.spec.version,
        agent=node.agent,
        started_at=node.started_at,
        listen_addrs=[str(a) for a in node.host.get_addrs()],
        relayed_addrs=list(node.nat.reservations.values()),
        reachability="public" if node.options.relay else node.nat.reachability,
        relays_in_use=list(node.nat.reservations),
        relay_service=node.options.relay,
        mdns=node.mdns_active,
        connected_peers=len(node.host.get_connected_peers()),
        aria_peers=len(node.book.verified()),
        dht_routing_table=len(table),
        dht_size_estimate=estimate_network_size(node.key.peer_id, table),
        banned_peers=[b.peer for b in node.guard.bans(now)],
        advert_seq=node.advert.seq if node.advert else None,
    )


def node_peers(node: Node) -> list[PeerView]:
    """Connected peers, plus peers whose advert is current though not connected now."""
    assert node.host is not None
    now = node.clock()
    ids = {str(p) for p in node.host.get_connected_peers()}
    ids |= {r.peer_id for r in node.book.known() if node.book.advert(r.peer_id, now)}
    ids.discard(node.key.peer_id)
    views = []
    for peer in sorted(ids):
        pid = libp2p_id(peer)
        standing = node.provenance.standing(peer)
        views.append(
            node.book.view(
                peer,
                connection=connection_kind(node.host, pid),
                addrs=connection_addrs(node.host, pid),
                score=node.guard.score(peer, now),
                now=now,
                reputation=node.reputation(peer),
                checks=(standing.passed, standing.failed) if standing else (0, 0),
            )
        )
    return views


def _catalog_pin(node: Node, model_id: str) -> str | None:
    try:
        return node.catalog.get(model_id).sha256
    except ModelNotFound:
        return None


async def find_providers(node: Node, model_id: str) -> list[ModelProvider]:
    """Peers whose verified, current advert serves ``model_id`` (a DHT provider lookup).

    An offer of a catalog id whose sha256 is not the catalog's pin, or of a denylisted
    file, is ignored and costs its peer the ``false_offer`` penalty.
    """
    assert node.host is not None and node.dht is not None
    dht = node.dht
    candidates = set(await dht.find_providers(model_provider_key(model_id, node.spec), 50))
    candidates.discard(node.key.peer_id)
    adverts: dict[str, Advert] = {}

    async def check(peer: str) -> None:
        advert = await dht.fetch_advert(peer)
        if advert is not None:
            node.book.on_advert(peer, advert, node.clock())
            if not advert.withdrawn:
                adverts[peer] = advert

    async with trio.open_nursery() as nursery:
        for peer in candidates:
            nursery.start_soon(check, peer)
    found = []
    pinned = _catalog_pin(node, model_id)
    for peer, advert in sorted(adverts.items()):
        offer = advert.serves(model_id)
        if offer is not None:
            fault = offer_fault(offer.sha256, pinned=pinned, denied=offer.sha256 in node.denylist)
            if fault is not None:
                log.info("ignoring %s's offer of %s: %s", peer, model_id, fault)
                if node.guard.penalize(peer, "false_offer", node.clock()) is not None:
                    node.drop_peer(peer)
                continue
            found.append(
                ModelProvider(
                    peer_id=peer,
                    model=offer,
                    connection=connection_kind(node.host, libp2p_id(peer)),
                    addrs=list(advert.addrs),
                    relayed_addrs=list(advert.relayed_addrs),
                    load=advert.load,
                    consent=advert.consent,
                    hardware=advert.hardware_summary,
                )
            )
    return found
