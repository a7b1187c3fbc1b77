"""Split candidates from the peer network (pure), and the node's refusals when it cannot split."""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from aria.backends import GenerationJob, open_first
from aria.catalog import ModelId
from aria.config import AriaPaths, AriaSettings
from aria.errors import PlacementRefused
from aria.node import Node
from aria.p2p.adverts import ConsentSummary
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.views import PeerView
from aria.router import ChainEntry, Split
from aria.split import (
    LocalNode,
    PlanPolicy,
    candidates_from_peers,
    describe_split,
    lenders,
    plan_placement,
    read_layout,
)

GIB = 1024**3


def view(
    peer_id: str,
    *,
    share_rpc: bool = True,
    memory_gb: float = 1.5,
    cores: int = 4,
    rtt_ms: float | None = 2.0,
    verified: bool = True,
    score: float = 50.0,
) -> PeerView:
    return PeerView(
        peer_id=peer_id,
        addrs=[],
        connection="direct",
        rtt_ms=rtt_ms,
        verified=verified,
        hardware=HardwareSummary(cpu_cores=cores),
        consent=ConsentSummary(share_rpc=share_rpc, rpc_memory_gb=memory_gb),
        score=score,
    )


def test_lenders_are_verified_peers_that_share_rpc() -> None:
    peers = [view("a"), view("b", share_rpc=False), view("c", verified=False), view("d")]
    assert lenders(peers) == ["a", "d"]


def test_a_lender_with_a_tunnel_offers_its_advertised_memory_and_cores() -> None:
    [c] = candidates_from_peers([view("a")], {"a": 4100}, {}, full_score=100.0)
    assert (c.peer_id, c.endpoint, c.offered_bytes, c.threads) == (
        "a",
        "127.0.0.1:4100",
        int(1.5 * GIB),
        4,
    )
    assert c.rtt_s == pytest.approx(0.002)
    assert (c.reputation, c.consenting) == (0.5, True)


def test_measured_rtt_overrides_the_view_and_unknown_rtt_is_infinite() -> None:
    peers = [view("a", rtt_ms=None), view("b", rtt_ms=None)]
    a, b = candidates_from_peers(peers, {"a": 1, "b": 2}, {"a": 7.0}, full_score=100.0)
    assert a.rtt_s == pytest.approx(0.007)
    assert math.isinf(b.rtt_s)


def test_peers_without_consent_become_non_consenting_candidates() -> None:
    peers = [view("no-1", share_rpc=False), view("no-2", share_rpc=False, cores=0)]
    one, two = candidates_from_peers(peers, {}, {}, full_score=100.0)
    assert not one.consenting and not two.consenting
    assert one.offered_bytes == 0 and two.threads == 1
    assert one.endpoint != two.endpoint  # not "listed twice" to the planner


def test_unverified_peers_and_lenders_without_a_tunnel_are_left_out() -> None:
    peers = [view("a"), view("b", verified=False), view("c")]
    assert [c.peer_id for c in candidates_from_peers(peers, {"c": 9}, {}, full_score=100.0)] == [
        "c"
    ]


def test_reputation_is_the_guard_score_clamped_to_one() -> None:
    peers = [view("a", score=250.0), view("b", score=-5.0)]
    a, b = candidates_from_peers(peers, {"a": 1, "b": 2}, {}, full_score=100.0)
    assert (a.reputation, b.reputation) == (1.0, 0.0)


def test_the_planner_explains_skipping_peers_without_consent(split_gguf: Path) -> None:
    layout = read_layout(split_gguf)
    peers = [view("lender"), view("refuser", share_rpc=False)]
    candidates = candidates_from_peers(peers, {"lender": 5000}, {}, full_score=100.0)
    placement = plan_placement(
        layout, LocalNode(GIB, 2), candidates, PlanPolicy(max_local_layers=0)
    )
    assert [s.peer_id for s in placement.shares] == ["lender"]
    assert "peer refuser skipped: has not consented" in "\n".join(placement.explanation)
    assert describe_split(placement) == f"local=0; lender={layout.n_layers}+head"


def _tiny_node(home: Path, split_gguf: Path, **consent: bool) -> Node:
    settings = AriaSettings()
    settings.inference.memory_budget_gb = 0.025
    for key, value in consent.items():
        setattr(settings.consent, key, value)
    node = Node.create(AriaPaths(home), settings)
    node.store.import_file(split_gguf)
    return node


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        ({}, "splitting it over peers is off"),
        ({"use_peers": True}, "no ARIA node runs on this home"),
    ],
)
def test_a_model_too_big_for_the_budget_is_refused_with_the_reason(
    aria_home: Path, split_gguf: Path, consent: dict[str, bool], reason: str
) -> None:
    node = _tiny_node(aria_home, split_gguf, **consent)
    job = GenerationJob(prompt="hi", max_tokens=4, temperature=0.0)

    async def run() -> None:
        async with node.running():
            await node.generate(job, "tiny-split")

    with pytest.raises(PlacementRefused) as refused:
        anyio.run(run, backend="trio")
    assert refused.value.http_status == 503
    assert "tiny-split needs 0.1 GB but this node's memory budget is 0.025 GB" in str(
        refused.value.message
    )
    assert reason in refused.value.message


def test_a_model_that_cannot_be_placed_lets_the_router_chain_fall_back() -> None:
    async def open_one(entry: ChainEntry, stack: AsyncExitStack) -> str:
        if entry.model_id == "too-big":
            raise PlacementRefused("too-big needs 40 GB; no peer lends compute")
        return f"served by {entry.model_id}"

    chain = [ChainEntry(ModelId("too-big"), Split()), ChainEntry(ModelId("fits"))]
    opened = anyio.run(open_first, chain, open_one)
    assert opened.value == "served by fits"
    assert [(a.candidate, a.code) for a in opened.skipped] == [
        ("too-big@split over peers", "no_placement")
    ]
