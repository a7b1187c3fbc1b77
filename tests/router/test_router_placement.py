"""Where each chain entry runs: here, on a peer, split over peers — one decision (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from aria.catalog.entries import Capability, CatalogEntry, ModelId, Tier
from aria.router import (
    TEXT_CATEGORIES,
    Availability,
    ChainEntry,
    Local,
    OnPeer,
    QueryClassifier,
    RouteRequest,
    RoutingTable,
    Split,
    parse_preference,
    place_named,
    route,
)
from aria.router.placement import Preference
from tests.router.support import DEFAULT, entry, table

SMALL = entry("small-chat", Tier.EFFICIENCY)
QUALITY = entry("quality-4b", Tier.QUALITY)
CODER = entry("coder-7b", Tier.QUALITY, {Capability.CODE, Capability.CHAT})
HUGE = entry("huge-70b", Tier.QUALITY)
I2S = entry("bitnet-i2s", Tier.EFFICIENCY, one_bit=True).model_copy(update={"quantization": "I2_S"})
GIB = 1024**3


def available(
    installed: list[str],
    peers: Mapping[ModelId, tuple[str, ...]],
    *,
    budget_gb: float | None = None,
    prefer: Preference = "local-first",
    offered: tuple[CatalogEntry, ...] = (),
) -> Availability:
    catalog = [SMALL, QUALITY, CODER, HUGE, I2S, DEFAULT]
    known = {e.id: e for e in catalog}
    return Availability.build(
        profile="full",
        gpu=False,
        catalog=catalog,
        installed=[known[ModelId(m)] for m in installed],
        default_model=DEFAULT.id,
        peers=peers,
        offered=offered,
        budget_bytes=None if budget_gb is None else int(budget_gb * GIB),
        prefer=prefer,
    )


def rows(classifier: QueryClassifier, models: list[ModelId]) -> RoutingTable:
    return table(classifier, {c.value: {"default": models} for c in TEXT_CATEGORIES})


def test_local_entries_come_first_then_peers_then_splits(classifier: QueryClassifier) -> None:
    huge = HUGE.model_copy(update={"memory": HUGE.memory.model_copy(update={"ram_gb": 40.0})})
    over_budget = Availability.build(
        profile="full",
        gpu=False,
        catalog=[SMALL, QUALITY, huge, DEFAULT],
        installed=[SMALL, huge],
        default_model=DEFAULT.id,
        peers={QUALITY.id: ("peer-a", "peer-b"), SMALL.id: ("peer-c",)},
        budget_bytes=8 * GIB,
    )
    decision = route(
        RouteRequest.from_text("Tell me a joke about penguins."),
        rows(classifier, [huge.id, QUALITY.id, SMALL.id]),
        over_budget,
    )
    # Models in the router's order (installed ones first), each where it can run.
    assert decision.entries == (
        ChainEntry(SMALL.id, Local()),
        ChainEntry(SMALL.id, OnPeer("peer-c")),
        ChainEntry(QUALITY.id, OnPeer("peer-a")),
        ChainEntry(QUALITY.id, OnPeer("peer-b")),
        ChainEntry(huge.id, Split()),
        ChainEntry(DEFAULT.id, Local()),
    )
    assert decision.chain == (SMALL.id, QUALITY.id, huge.id, DEFAULT.id)
    assert not over_budget.fits_here(huge.id) and over_budget.fits_here(SMALL.id)


def test_peers_first_and_local_only_change_the_order(classifier: QueryClassifier) -> None:
    request = RouteRequest.from_text("Tell me a joke about penguins.")
    models = rows(classifier, [QUALITY.id, SMALL.id])
    peers = {QUALITY.id: ("peer-a",)}
    first = route(request, models, available([SMALL.id], peers, prefer="peers-first"))
    assert [str(e.where) for e in first.entries] == ["peer peer-a", "local", "local"]
    alone = route(request, models, available([SMALL.id], peers, prefer="local-only"))
    assert alone.entries == (ChainEntry(SMALL.id), ChainEntry(DEFAULT.id))


def test_a_code_query_no_local_model_suits_goes_to_the_peer_that_has_one(
    classifier: QueryClassifier,
) -> None:
    request = RouteRequest.from_text("Write a Python function that reverses a linked list.")
    models = table(classifier, {"code": {"default": [CODER.id]}})
    decision = route(request, models, available([], {CODER.id: ("peer-coder",)}))
    assert decision.category.value == "code"
    assert decision.entries == (
        ChainEntry(CODER.id, OnPeer("peer-coder")),
        ChainEntry(DEFAULT.id, Local()),
    )
    assert "offered by a peer" in decision.reason and decision.notice is None
    # Without peers (use_peers off), the same query is answered here, with a notice.
    here = route(request, models, available([], {}))
    assert here.entries[-1] == ChainEntry(DEFAULT.id, Local())
    assert here.notice is not None and "last resort" in here.notice


def test_a_model_only_a_peer_can_run_is_still_routed_to_that_peer(
    classifier: QueryClassifier,
) -> None:
    request = RouteRequest.from_text("hi there")
    decision = route(request, rows(classifier, [I2S.id]), available([], {I2S.id: ("p",)}))
    assert decision.entries[0] == ChainEntry(I2S.id, OnPeer("p"))  # bitnet.cpp is theirs
    offered_only = entry("their-import", Tier.QUALITY)
    decision = route(
        request,
        rows(classifier, [offered_only.id]),
        available([], {offered_only.id: ("q",)}, offered=(offered_only,)),
    )
    assert decision.entries[0] == ChainEntry(offered_only.id, OnPeer("q"))


def test_a_named_model_runs_here_if_installed_then_on_its_peers() -> None:
    peers = {QUALITY.id: ("peer-a", "peer-b")}
    both = place_named(QUALITY.id, available([QUALITY.id], peers))
    assert both == (
        ChainEntry(QUALITY.id),
        ChainEntry(QUALITY.id, OnPeer("peer-a")),
        ChainEntry(QUALITY.id, OnPeer("peer-b")),
    )
    assert place_named(QUALITY.id, available([], peers))[0] == ChainEntry(
        QUALITY.id, OnPeer("peer-a")
    )
    # Nobody has it: here, where the executor says how to install it.
    assert place_named(SMALL.id, available([], peers)) == (ChainEntry(SMALL.id),)
    assert place_named(QUALITY.id, available([], peers, prefer="local-only")) == (
        ChainEntry(QUALITY.id),
    )
    too_big = available([QUALITY.id], {}, budget_gb=0.5)
    assert place_named(QUALITY.id, too_big) == (ChainEntry(QUALITY.id, Split()),)


def test_preferences_parse_in_any_case() -> None:
    assert parse_preference(" Peers-First ") == "peers-first"
    assert parse_preference("local-only") == "local-only"
    assert parse_preference("anywhere") is None
