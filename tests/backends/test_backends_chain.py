"""The fallback chain: which failures move on to the next model, which do not."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from aria.backends import open_first
from aria.catalog import ModelId
from aria.errors import (
    AriaError,
    BackendCrashed,
    BackendUnavailable,
    ContextLengthExceeded,
    ModelNotInstalled,
    RoutingError,
)

pytestmark = pytest.mark.anyio

FAILURES: dict[str, AriaError] = {
    "missing": ModelNotInstalled("missing is not installed; run `aria model download missing`"),
    "broken": BackendUnavailable("could not start"),
    "crashed": BackendCrashed("died before its first token"),
    "too-long": ContextLengthExceeded("prompt too long"),
}


async def opener(model_id: ModelId, stack: AsyncExitStack) -> str:
    stack.callback(released.append, model_id)
    if model_id in FAILURES:
        raise FAILURES[model_id]
    return f"served by {model_id}"


released: list[str] = []


async def test_skips_unavailable_models_and_reports_why() -> None:
    released.clear()
    opened = await open_first([ModelId(m) for m in ("missing", "broken", "crashed", "ok")], opener)
    assert opened.value == "served by ok" and opened.model_id == "ok"
    assert [(a.model_id, a.code) for a in opened.skipped] == [
        ("missing", "model_not_installed"),
        ("broken", "backend_unavailable"),
        ("crashed", "backend_crashed"),
    ]
    assert released == ["missing", "broken", "crashed"]  # each failed attempt cleaned up
    await opened.aclose()
    assert released[-1] == "ok"


async def test_request_errors_are_not_retried_elsewhere() -> None:
    with pytest.raises(ContextLengthExceeded):
        await open_first([ModelId("too-long"), ModelId("ok")], opener)


async def test_a_single_candidate_raises_its_own_error() -> None:
    with pytest.raises(ModelNotInstalled, match="aria model download missing"):
        await open_first([ModelId("missing")], opener)


async def test_when_every_candidate_fails_the_reasons_are_listed() -> None:
    with pytest.raises(RoutingError, match="missing: .*broken: could not start"):
        await open_first([ModelId("missing"), ModelId("broken")], opener)
