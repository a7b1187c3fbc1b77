"""The fallback chain: which failures move on to the next entry, which do not."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from aria.backends import open_first
from aria.catalog import ModelId
from aria.errors import (
    AriaError,
    BackendCrashed,
    BackendUnavailable,
    ConsentRefused,
    ContextLengthExceeded,
    ModelNotInstalled,
    PeerError,
    RequestFailed,
    RoutingError,
)
from aria.router import ChainEntry, Local, OnPeer

pytestmark = pytest.mark.anyio

FAILURES: dict[str, AriaError] = {
    "missing": ModelNotInstalled("missing is not installed; run `aria model download missing`"),
    "broken": BackendUnavailable("could not start"),
    "crashed": BackendCrashed("died before its first token"),
    "too-long": ContextLengthExceeded("prompt too long"),
    "one-request": RequestFailed("the parser gave up"),
    "gone-peer": PeerError("peer P hung up"),
    "unwilling-peer": ConsentRefused("peer Q refused the request (consent_off)"),
}


def chain(*models: str) -> list[ChainEntry]:
    return [ChainEntry(ModelId(m), OnPeer("P") if "peer" in m else Local()) for m in models]


async def opener(entry: ChainEntry, stack: AsyncExitStack) -> str:
    stack.callback(released.append, entry.model_id)
    if entry.model_id in FAILURES:
        raise FAILURES[entry.model_id]
    return f"served by {entry.model_id}"


released: list[str] = []


async def test_skips_unavailable_models_and_reports_why() -> None:
    released.clear()
    models = ("missing", "broken", "crashed", "gone-peer", "unwilling-peer", "ok")
    opened = await open_first(chain(*models), opener)
    assert opened.value == "served by ok" and opened.model_id == "ok"
    assert [(a.candidate, a.code) for a in opened.skipped] == [
        ("missing", "model_not_installed"),
        ("broken", "backend_unavailable"),
        ("crashed", "backend_crashed"),
        ("gone-peer@peer P", "peer_error"),
        ("unwilling-peer@peer P", "consent_refused"),
    ]
    assert released == list(models[:-1])  # each failed attempt cleaned up
    await opened.aclose()
    assert released[-1] == "ok"


async def test_request_errors_are_not_retried_elsewhere() -> None:
    with pytest.raises(ContextLengthExceeded):
        await open_first(chain("too-long", "ok"), opener)
    with pytest.raises(RequestFailed):  # one request's failure: another model is not asked
        await open_first(chain("one-request", "ok"), opener)


async def test_a_single_candidate_raises_its_own_error() -> None:
    with pytest.raises(ModelNotInstalled, match="aria model download missing"):
        await open_first(chain("missing"), opener)


async def test_when_every_candidate_fails_the_reasons_are_listed() -> None:
    with pytest.raises(RoutingError, match="missing: .*broken: could not start.*gone-peer@"):
        await open_first(chain("missing", "broken", "gone-peer"), opener)
