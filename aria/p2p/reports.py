"""What the control channel answers about the network: peers, providers, pings.

Each report reads the node through its narrow context (:class:`aria.p2p.context.PeerContext`)
and its DHT; the node's own status is :meth:`aria.p2p.node.PeerNode.status`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from aria.errors import InvalidRequest, ModelNotFound, PeerError
from aria.p2p.adverts import Advert, model_provider_key
from aria.p2p.context import PeerContext
from aria.p2p.providers import offer_fault
from aria.p2p.transport.dht import AriaDht
from aria.p2p.views import ModelProvider, PeerView

__all__ = ["find_providers", "node_peers", "ping_peer_report", "report_ops"]

log = logging.getLogger(__name__)

_MAX_MODEL_ID = 128
_MAX_PEER_ID = 128

Op = Callable[[dict[str, Any]], Awaitable[Any]]


def report_ops(ctx: PeerContext, dht: AriaDht) -> dict[str, Op]:
    """The control-channel operations that report on the network (JSON in, JSON out)."""

    async def ping(_: dict[str, Any]) -> dict[str, str]:
        return {"peer_id": ctx.key.peer_id}

    async def peers(_: dict[str, Any]) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in node_peers(ctx)]

    async def find(args: dict[str, Any]) -> list[dict[str, Any]]:
        model_id = args.get("model_id")
        if not isinstance(model_id, str) or not 0 < len(model_id) <= _MAX_MODEL_ID:
            raise InvalidRequest(f"find needs a model id of 1 to {_MAX_MODEL_ID} characters")
        return [p.model_dump(mode="json") for p in await find_providers(ctx, dht, model_id)]

    async def ping_peer(args: dict[str, Any]) -> dict[str, Any]:
        peer = args.get("peer_id")
        if not isinstance(peer, str) or not 0 < len(peer) <= _MAX_PEER_ID:
            raise InvalidRequest("ping needs a peer id")
        return await ping_peer_report(ctx, dht, peer)

    return {"ping": ping, "peers": peers, "find": find, "ping_peer": ping_peer}


async def ping_peer_report(ctx: PeerContext, dht: AriaDht, peer: str) -> dict[str, Any]:
    """One libp2p ping to ``peer`` over the current connection (reached via its advert if
    not connected): a request/response that crosses whatever path the node uses. The
    peer's advert is fetched again too, so ``peers`` then shows its current state.

    Raises:
        InvalidRequest: ``peer`` is not a peer id.
        PeerError: the peer cannot be reached.
    """
    try:
        kind = ctx.connection(peer)
    except ValueError:
        raise InvalidRequest(f"{peer!r} is not a peer id") from None
    if kind == "none":
        await ctx.reach(peer)
    advert = await dht.fetch_advert(peer)
    if advert is not None:
        ctx.book.on_advert(peer, advert, ctx.clock())
    rtt = await ctx.ping(peer)
    if rtt is None:
        raise PeerError(f"peer {peer} did not answer a ping")
    return {"peer_id": peer, "rtt_ms": rtt, "connection": ctx.connection(peer)}


def node_peers(ctx: PeerContext) -> list[PeerView]:
    """Connected peers, plus peers whose advert is current though not connected now."""
    now = ctx.clock()
    ids = ctx.connected()
    ids |= {r.peer_id for r in ctx.book.known() if ctx.book.advert(r.peer_id, now)}
    ids.discard(ctx.key.peer_id)
    views = []
    for peer in sorted(ids):
        standing = ctx.provenance.standing(peer)
        views.append(
            ctx.book.view(
                peer,
                connection=ctx.connection(peer),
                addrs=ctx.addrs(peer),
                score=ctx.guard.score(peer, now),
                now=now,
                reputation=ctx.reputation(peer),
                checks=(standing.passed, standing.failed) if standing else (0, 0),
            )
        )
    return views


def _catalog_pin(ctx: PeerContext, model_id: str) -> str | None:
    try:
        return ctx.catalog.get(model_id).sha256
    except ModelNotFound:
        return None


async def find_providers(ctx: PeerContext, dht: AriaDht, model_id: str) -> list[ModelProvider]:
    """Peers whose verified, current advert serves ``model_id`` (a DHT provider lookup).

    An offer of a catalog id whose sha256 is not the catalog's pin, or of a denylisted
    file, is ignored and costs its peer the ``false_offer`` penalty.
    """
    candidates = set(await dht.find_providers(model_provider_key(model_id, ctx.spec), 50))
    candidates.discard(ctx.key.peer_id)
    adverts: dict[str, Advert] = {}

    async def check(peer: str) -> None:
        advert = await dht.fetch_advert(peer)
        if advert is not None:
            ctx.book.on_advert(peer, advert, ctx.clock())
            if not advert.withdrawn:
                adverts[peer] = advert

    async with trio.open_nursery() as nursery:
        for peer in candidates:
            nursery.start_soon(check, peer)
    found = []
    pinned = _catalog_pin(ctx, model_id)
    for peer, advert in sorted(adverts.items()):
        offer = advert.serves(model_id)
        if offer is None:
            continue
        fault = offer_fault(offer.sha256, pinned=pinned, denied=offer.sha256 in ctx.denylist)
        if fault is not None:
            log.info("ignoring %s's offer of %s: %s", peer, model_id, fault)
            ctx.penalize(peer, "false_offer")
            continue
        found.append(
            ModelProvider(
                peer_id=peer,
                model=offer,
                connection=ctx.connection(peer),
                addrs=list(advert.addrs),
                relayed_addrs=list(advert.relayed_addrs),
                load=advert.load,
                consent=advert.consent,
                hardware=advert.hardware_summary,
            )
        )
    return found
