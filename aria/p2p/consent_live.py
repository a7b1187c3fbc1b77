"""Consent changes that reach a running node: the ``set_consent`` control op.

``aria node consent set|edit`` (and ``aria node share``) sign a new contract into
``node/consent.toml`` and then send its hash here. The node re-reads the contract (the
next inference request and the next tunnel are decided on it), ends the lending session
the new terms no longer allow and stops its RPC worker when split lending is off
(:meth:`aria.p2p.lending.Lending.apply_terms`), tells the node's services (the library
ends the uploads the new contract no longer allows), and publishes a fresh advert at
once, so peers see the new consent summary and contract hash. The reply says which contract
the node now runs under and whether the advert went out (within ``_PUBLISH_WAIT_S``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from aria.errors import ContractError, InvalidRequest
from aria.p2p.adverts import Advert
from aria.p2p.context import PeerContext
from aria.p2p.lending import Lending
from aria.p2p.services import NodeService

__all__ = ["consent_op"]

log = logging.getLogger(__name__)

_PUBLISH_WAIT_S = 1.5


def consent_op(
    ctx: PeerContext,
    lending: Lending,
    services: Sequence[NodeService],
    publish: Callable[[], Awaitable[Advert]],
    request_publish: Callable[[], None],
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """``set_consent {"contract": sha256}`` -> ``{"contract", "version", "advert_seq"}``.

    Raises:
        InvalidRequest: no contract hash; ContractError: the contract on disk is not the
            one named (not signed, edited since, or another version).
    """

    async def set_consent(args: dict[str, Any]) -> dict[str, Any]:
        wanted = args.get("contract")
        if not isinstance(wanted, str) or not wanted:
            raise InvalidRequest("set_consent needs the hash of the contract to apply")
        in_force = ctx.provenance.contract()
        if in_force.sha256 != wanted:
            raise ContractError(
                in_force.problem
                or f"the contract on disk is {in_force.sha256[:16]}…, not {wanted[:16]}…"
            )
        log.info("consent contract version %d applied live", in_force.contract.version)
        await lending.apply_terms()
        for service in services:
            await service.consent_changed()
        seq = None
        with trio.move_on_after(_PUBLISH_WAIT_S):
            seq = (await publish()).seq
        if seq is None:
            request_publish()  # the DHT is slow: publish in the background
        return {
            "applied": True,
            "contract": in_force.sha256,
            "version": in_force.contract.version,
            "advert_seq": seq,
        }

    return set_consent
