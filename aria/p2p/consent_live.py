"""Consent changes that reach a running node: the ``set_consent`` control op.

``aria node share`` writes ``config.toml`` and then sends the new ``[consent]`` values
here. The node swaps its settings (so the next inference request and the next tunnel
are decided on them), ends the lending session the new terms no longer allow and
stops its RPC worker when lending is off (:meth:`aria.p2p.lending.Lending.apply_terms`),
and publishes a fresh advert at once, so peers see the new consent summary. The reply
says what was applied and whether the advert went out (within ``_PUBLISH_WAIT_S``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from pydantic import ValidationError

from aria.config import ConsentSettings
from aria.errors import InvalidRequest
from aria.p2p.adverts import Advert
from aria.p2p.context import PeerContext
from aria.p2p.lending import Lending

__all__ = ["consent_op"]

log = logging.getLogger(__name__)

_PUBLISH_WAIT_S = 1.5


def consent_op(
    ctx: PeerContext,
    lending: Lending,
    publish: Callable[[], Awaitable[Advert]],
    request_publish: Callable[[], None],
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """``set_consent {"consent": {field: value}}`` -> ``{"consent", "advert_seq"}``."""

    async def set_consent(args: dict[str, Any]) -> dict[str, Any]:
        changes = args.get("consent")
        if not isinstance(changes, dict) or not changes:
            raise InvalidRequest("set_consent needs a consent object with the fields to change")
        current = ctx.settings.consent
        try:
            updated = ConsentSettings.model_validate({**current.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidRequest(f"consent.{where}: {first['msg']}") from None
        ctx.settings.consent = updated
        log.info("consent changed live: %s", sorted(changes))
        await lending.apply_terms()
        seq = None
        with trio.move_on_after(_PUBLISH_WAIT_S):
            seq = (await publish()).seq
        if seq is None:
            request_publish()  # the DHT is slow: publish in the background
        return {"consent": updated.model_dump(mode="json"), "advert_seq": seq}

    return set_consent
