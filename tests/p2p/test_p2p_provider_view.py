"""Which peers may serve which model, best first; and a generation on a peer, read back as
a local backend's events (no network: the node's answers are played here)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest

from aria.backends import DoneEvent, TokenEvent, ToolCallDelta
from aria.catalog import Capability, ModelId, Tier, load_catalog, load_denylist
from aria.config import AriaPaths
from aria.errors import ConsentRefused, ContextLengthExceeded, PeerError, RateLimited
from aria.p2p.adverts import ConsentSummary, LoadReport, ModelCard, ModelOffer
from aria.p2p.control import NodeClient
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.offers import offers_from_peers, rank
from aria.p2p.peer_generation import PeerRelays, open_on_peer
from aria.p2p.provider_view import ProviderView
from aria.p2p.views import PeerView
from tests.p2p.sim import FakeClock

pytestmark = pytest.mark.anyio

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
CARD = ModelCard(
    tier=Tier.QUALITY,
    params_b=1.5,
    licence="Apache-2.0",
    context_length=4096,
    capabilities=frozenset({Capability.CHAT, Capability.CODE}),
    ram_gb=2.0,
)


def view(
    peer: str,
    *models: str,
    share: bool = True,
    jobs: int = 0,
    slots: int = 2,
    rtt: float | None = None,
    score: float = 100.0,
    memory_gb: float = 16.0,
    verified: bool = True,
    sha: str = "1" * 64,
) -> PeerView:
    return PeerView(
        peer_id=peer,
        addrs=[],
        connection="direct",
        rtt_ms=rtt,
        verified=verified,
        hardware=HardwareSummary(memory_gb=memory_gb),
        models=[ModelOffer(id=m, sha256=sha, licence_class="green", card=CARD) for m in models],
        load=LoadReport(active_jobs=jobs),
        consent=ConsentSummary(share_inference=share, max_remote_jobs=slots),
        score=score,
    )


def test_only_willing_verified_peers_with_the_right_file_are_offers() -> None:
    pinned = load_catalog().default
    peers = [
        view("off", "m", share=False),
        view("full", "m", jobs=2),
        view("stranger", "m", verified=False),
        view("me", "m"),
        view("squatter", pinned.id, sha="2" * 64),  # a catalog id with another file
        view("denied", "m", sha=next(iter(load_denylist())).sha256),
        view("good", "m", pinned.id, sha=pinned.sha256 or "1" * 64),
    ]
    offers = offers_from_peers(
        peers, pins={pinned.id: pinned.sha256}, denied=load_denylist(), own_peer_id="me"
    )
    assert {m: [o.peer_id for o in found] for m, found in offers.items()} == {
        ModelId("m"): ["full", "good"],  # full by its advert: still an offer (ranked last)
        pinned.id: ["good"],
    }


def test_ranking_failed_last_then_load_fit_rtt_score() -> None:
    peers = [
        view("busy", "m", jobs=1, rtt=1.0),
        view("small", "m", memory_gb=2.0, rtt=1.0),  # 2 GB for a 2 GB model: not comfortable
        view("far", "m", rtt=80.0),
        view("near", "m", rtt=5.0),
        view("near-bad", "m", rtt=5.0, score=40.0),
        view("unknown-rtt", "m"),
        view("failed", "m", rtt=0.1),
        view("full", "m", jobs=2, rtt=0.5),  # no free slot by its last advert, which may lag
    ]
    offers = offers_from_peers(peers, pins={}, denied=())[ModelId("m")]
    entry = CARD.entry("m", "1" * 64)
    order = rank(offers, entry, recently_failed={"failed"})
    assert order == ["near", "near-bad", "far", "unknown-rtt", "small", "busy", "full", "failed"]


async def test_the_view_ranks_remembers_failures_and_builds_entries_from_cards(
    aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    providers = ProviderView(
        aria_paths, load_catalog(), load_denylist(), ttl_s=5, failure_s=60, clock=clock
    )
    answers = [[view("a", "import", rtt=1.0), view("b", "import", rtt=9.0)], []]
    asked: list[int] = []

    def fetch() -> Any:
        asked.append(1)
        return answers[min(len(asked) - 1, 1)], "me"

    monkeypatch.setattr(providers, "_fetch", fetch)
    await providers.refresh()
    await providers.refresh()  # within ttl_s: not asked again
    assert len(asked) == 1
    [entry] = providers.offered_entries({})
    assert entry.id == "import" and entry.source.kind == "peer" and entry.tier is Tier.QUALITY
    assert providers.ranked({entry.id: entry}) == {"import": ["a", "b"]}
    providers.failed("a")
    assert providers.ranked({entry.id: entry}) == {"import": ["b", "a"]}
    clock.advance(61)  # the failure is forgotten, and the node is asked again
    assert providers.ranked({entry.id: entry}) == {"import": ["a", "b"]}
    await providers.refresh()
    assert len(asked) == 2 and providers.ranked({}) == {}


async def test_a_model_only_unwilling_peers_offer_is_refused_with_the_reason(
    aria_paths: AriaPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = ProviderView(aria_paths, load_catalog(), load_denylist())
    peers = [view("off-1", "m", share=False), view("busy-1", "n", jobs=2)]
    monkeypatch.setattr(providers, "_fetch", lambda: (peers, "me"))
    await providers.refresh()
    refused = providers.refusal("m")
    assert isinstance(refused, ConsentRefused) and "task_not_allowed" in refused.message
    busy = providers.refusal("n")
    assert type(busy) is PeerError and "busy" in busy.message
    assert providers.refusal("nobody-has-it") is None


async def test_no_node_on_this_home_means_no_offers(aria_paths: AriaPaths) -> None:
    providers = ProviderView(aria_paths, load_catalog(), load_denylist())
    await providers.refresh()
    assert providers.ranked({}) == {} and providers.offered_entries({}) == []


class _Node:
    """The node's ``infer`` answers, played without a socket."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.closed = False

    async def astream(self, op: str, **args: Any) -> AsyncGenerator[Any, None]:
        assert op == "infer" and args["peer_id"] == PEER
        try:
            for item in self.items:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed = True


def chunk(delta: dict[str, Any] | None = None, **fields: Any) -> str:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": None} | fields
    return json.dumps({"object": "chat.completion.chunk", "choices": [choice]})


async def events_of(items: list[Any], relays: PeerRelays | None = None) -> list[Any]:
    failed: list[str] = []
    node = _Node(items)
    relays = relays or PeerRelays()
    generation = await open_on_peer(cast(NodeClient, node), PEER, {}, relays, failed.append)
    out: list[Any] = []
    while not generation.finished:
        out.append(await generation.next_event())
    assert node.closed and relays.running == 0
    return out


async def test_a_peer_answer_becomes_text_tool_fragments_and_a_summary() -> None:
    usage = json.dumps({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    items = [
        {"peer": PEER, "data": chunk({"role": "assistant", "content": ""})},
        {"data": chunk({"content": "Hel"})},
        {"data": chunk({"content": "lo"})},
        {"data": chunk({"tool_calls": [{**call, "function": {"name": "f", "arguments": ""}}]})},
        {"data": chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]})},
        {"data": chunk(finish_reason="tool_calls")},
        {"data": usage},
        {"data": "[DONE]"},
    ]
    assert await events_of(items) == [
        TokenEvent("Hel"),
        TokenEvent("lo"),
        ToolCallDelta(0, "call_1", "f", ""),
        ToolCallDelta(0, None, None, '{"a":1}'),
        DoneEvent("stop", 7, 3),
    ]
    text = json.dumps({"object": "text_completion", "choices": [{"index": 0, "text": "Once"}]})
    assert (await events_of([{"peer": PEER, "data": text}, {"data": "[DONE]"}]))[0] == TokenEvent(
        "Once"
    )


async def test_a_peer_error_mid_answer_keeps_its_class_and_garbage_is_a_peer_error() -> None:
    error = {"error": {"message": "too long", "type": "invalid_request_error",
                       "param": "messages", "code": "context_length_exceeded"}}  # fmt: skip
    with pytest.raises(ContextLengthExceeded, match="too long"):
        await events_of(
            [{"peer": PEER, "data": chunk({"content": "x"})}, {"data": json.dumps(error)}]
        )
    for bad in ({"data": "{"}, {"data": "[1]"}, {"nothing": 1}, {"data": '{"choices": 5}'}):
        with pytest.raises(PeerError):
            await events_of([{"peer": PEER, "data": chunk({"content": "x"})}, bad])
    with pytest.raises(PeerError, match="without finishing"):
        await events_of([{"peer": PEER, "data": chunk({"content": "x"})}])
    with pytest.raises(PeerError, match="malformed first chunk"):
        await events_of([{"peer": "someone-else-entirely", "data": chunk()}])


async def test_peer_generations_are_bounded() -> None:
    relays = PeerRelays(limit=1)
    relays.running = 1
    with pytest.raises(RateLimited):
        await events_of([{"peer": PEER, "data": "[DONE]"}], relays)
