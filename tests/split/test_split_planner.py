"""The split planner: pure placement decisions, table-driven."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aria.errors import PlacementRefused
from aria.split import Candidate, LocalNode, PlanPolicy, plan_placement
from aria.split.layout import ModelLayout

MIB = 1024**2

# 10 blocks of 10 MiB; tiny shapes so K/V and scratch are small and easy to reason about:
# K/V per layer at n_ctx 256 = 2*64*256*2 = 64 KiB; scratch = 512*(256*2+8*64+16*64)*4 = 4 MiB;
# head = 5 MiB weights + 512*1000*4 (~1.95 MiB) logits.
LAYOUT = ModelLayout(
    name="toy",
    layer_bytes=(10 * MIB,) * 10,
    input_bytes=5 * MIB,
    output_bytes=5 * MIB,
    n_embd=64,
    n_embd_kv=64,
    n_head=2,
    n_ff=64,
    n_vocab=1000,
    context_length=256,
)
POLICY = PlanPolicy(n_ctx=256)
BLOCK = LAYOUT.block_bytes(0, 256)
SCRATCH = LAYOUT.compute_bytes(256)
HEAD = LAYOUT.output_bytes + LAYOUT.output_compute_bytes()
ORCHESTRATE = LAYOUT.input_bytes + SCRATCH


def peer(
    name: str,
    blocks: float,
    *,
    rtt_ms: float = 1.0,
    threads: int = 4,
    reputation: float = 1.0,
    consenting: bool = True,
) -> Candidate:
    """A peer offering room for ``blocks`` blocks plus scratch (see ``with_head``)."""
    return Candidate(
        peer_id=name,
        endpoint=f"tunnel-{name}:7000",
        offered_bytes=int(blocks * BLOCK) + SCRATCH,
        threads=threads,
        rtt_s=rtt_ms / 1000,
        reputation=reputation,
        consenting=consenting,
    )


def local(blocks: float) -> LocalNode:
    return LocalNode(memory_bytes=ORCHESTRATE + int(blocks * BLOCK), threads=2)


def with_head(c: Candidate) -> Candidate:
    return replace(c, offered_bytes=c.offered_bytes + HEAD)


@pytest.mark.parametrize(
    ("name", "local_blocks", "peers", "policy", "expected"),
    [
        # (chosen peer ids in device order, blocks each, local layers)
        ("fits locally", 11, [peer("a", 20)], POLICY, ((), (), 10)),
        ("one peer takes the rest", 6, [with_head(peer("a", 20))], POLICY, (("a",), (4,), 6)),
        (
            "fewest peers beat lower RTT",
            0,
            [
                peer("near1", 5, rtt_ms=1),
                with_head(peer("near2", 5, rtt_ms=1)),
                with_head(peer("far", 12, rtt_ms=20)),
            ],
            POLICY,
            (("far",), (10,), 0),
        ),
        (
            "among equally few, lowest RTT",
            4,
            [with_head(peer("slow", 8, rtt_ms=30)), with_head(peer("fast", 8, rtt_ms=2))],
            POLICY,
            (("fast",), (6,), 4),
        ),
        (
            "equal RTT: more threads",
            4,
            [with_head(peer("t2", 8, threads=2)), with_head(peer("t8", 8, threads=8))],
            POLICY,
            (("t8",), (6,), 4),
        ),
        (
            "two peers: faster one fills its offer and takes the head",
            0,
            [with_head(peer("big", 6, threads=2)), peer("quick", 6, threads=8)],
            POLICY,
            (("big", "quick"), (5, 5), 0),  # the preferred peer takes the head
        ),
        (
            "min_peers forces a split of a model that fits",
            20,
            [with_head(peer("a", 20)), with_head(peer("b", 20, rtt_ms=2))],
            replace(POLICY, min_peers=2, max_local_layers=0),
            (("b", "a"), (6, 4), 0),  # equal threads: 6 and 5 slots (blocks + head)
        ),
        (
            "max_local_layers caps the node's share",
            20,
            [with_head(peer("a", 20))],
            replace(POLICY, max_local_layers=3),
            (("a",), (7,), 3),
        ),
    ],
)
def test_placement_table(
    name: str,
    local_blocks: float,
    peers: list[Candidate],
    policy: PlanPolicy,
    expected: tuple[tuple[str, ...], tuple[int, ...], int],
) -> None:
    plan = plan_placement(LAYOUT, local(local_blocks), peers, policy)
    ids, blocks, local_layers = expected
    assert tuple(s.peer_id for s in plan.shares) == ids, name
    assert tuple(s.layers for s in plan.shares) == blocks, name
    assert plan.local_layers == local_layers, name
    assert plan.local_layers + sum(s.layers for s in plan.shares) == LAYOUT.n_layers
    for share in plan.shares:
        assert share.bytes_needed <= share.offered_bytes, f"{name}: {share.peer_id} overcommitted"
    if plan.shares:
        assert plan.shares[-1].holds_output and not any(s.holds_output for s in plan.shares[:-1])


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (peer("shy", 20, consenting=False), "not consented"),
        (peer("laggy", 20, rtt_ms=500), "RTT 500.0 ms is above the 100 ms limit"),
        (peer("shady", 20, reputation=0.1), "reputation 0.10 is below 0.50"),
        (replace(peer("tiny", 0), offered_bytes=SCRATCH + BLOCK - 1), "less than one layer"),
    ],
)
def test_skipped_peers_are_explained(bad: Candidate, reason: str) -> None:
    good = with_head(peer("good", 20))
    plan = plan_placement(LAYOUT, local(0), [bad, good], replace(POLICY, min_reputation=0.5))
    assert [s.peer_id for s in plan.shares] == ["good"]
    assert [(s.peer_id, reason in s.reason) for s in plan.skipped] == [(bad.peer_id, True)]
    assert any(f"peer {bad.peer_id} skipped" in line for line in plan.explanation)


def test_duplicate_endpoint_is_skipped() -> None:
    a = with_head(peer("a", 20))
    plan = plan_placement(LAYOUT, local(0), [a, replace(a, peer_id="alias")], POLICY)
    assert [s.reason for s in plan.skipped] == ["listed twice"]


def test_unused_eligible_peer_is_explained() -> None:
    plan = plan_placement(
        LAYOUT, local(0), [with_head(peer("a", 20)), with_head(peer("b", 20, rtt_ms=5))], POLICY
    )
    assert [s.peer_id for s in plan.shares] == ["a"]
    assert any(line.startswith("peer b not needed") for line in plan.explanation)


def test_tensor_split_and_offload_count_match_llama_cpp_slots() -> None:
    plan = plan_placement(
        LAYOUT, local(3), [peer("a", 4, threads=8), with_head(peer("b", 3, threads=2))], POLICY
    )
    assert plan.local_layers == 3
    assert [s.layers for s in plan.shares] == [4, 3]
    # llama.cpp offloads the last n_gpu_layers slots (blocks + head) and splits them by weight.
    assert plan.n_gpu_layers == LAYOUT.n_layers + 1 - 3
    assert plan.tensor_split == (4.0, 4.0)  # 3 blocks + the head on the last device
    assert sum(plan.tensor_split) == plan.n_gpu_layers
    assert plan.endpoints == tuple(s.endpoint for s in plan.shares)
    assert plan.round_trips_per_token == 2
    assert plan.network_s_per_token == pytest.approx(0.002)
    assert [(s.first_layer, s.layers) for s in plan.shares] == [(3, 4), (7, 3)]


def test_local_only_plan_offloads_nothing() -> None:
    plan = plan_placement(LAYOUT, local(11), [], POLICY)
    assert (plan.n_gpu_layers, plan.tensor_split, plan.round_trips_per_token) == (0, (), 0)
    assert "not split" in plan.explanation[-1]


@pytest.mark.parametrize(
    ("local_node", "peers", "message"),
    [
        (LocalNode(ORCHESTRATE - 1, 2), [with_head(peer("a", 20))], "to orchestrate toy"),
        (local(0), [], "0 eligible peer(s)"),
        (local(0), [peer("a", 5), peer("b", 4)], "no set of peers can hold toy"),
        (local(0), [with_head(peer("a", 9.5))], "no set of peers can hold toy"),
        (local(0), [peer("shy", 30, consenting=False)], "(1 skipped)"),
    ],
)
def test_refusals_are_typed_and_say_why(
    local_node: LocalNode, peers: list[Candidate], message: str
) -> None:
    with pytest.raises(PlacementRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_placement(LAYOUT, local_node, peers, POLICY)


def test_min_peers_more_than_candidates_is_refused() -> None:
    with pytest.raises(PlacementRefused):
        plan_placement(LAYOUT, local(0), [with_head(peer("a", 20))], replace(POLICY, min_peers=2))


def test_plan_is_deterministic_and_serializable() -> None:
    peers = [with_head(peer(name, 4)) for name in ("c", "a", "d", "b")]
    first = plan_placement(LAYOUT, local(0), peers, POLICY)
    again = plan_placement(LAYOUT, local(0), list(reversed(peers)), POLICY)
    assert first.shares == again.shares
    data = first.to_dict()
    assert data["tensor_split"] == list(first.tensor_split)
    assert [p["peer_id"] for p in data["peers"]] == [s.peer_id for s in first.shares]
    assert data["explanation"] == list(first.explanation)


def test_head_needs_room_on_the_last_peer() -> None:
    big_head = replace(LAYOUT, output_bytes=30 * MIB)
    # Five peers have room for every block (2 each) but none for a 30 MiB head.
    peers = [peer(name, 2.5) for name in "abcde"]
    with pytest.raises(PlacementRefused):
        plan_placement(big_head, local(0), peers, POLICY)
    roomy = replace(peer("f", 3.5), offered_bytes=peer("f", 3.5).offered_bytes + 30 * MIB)
    plan = plan_placement(big_head, local(0), [*peers, roomy], POLICY)
    assert plan.shares[-1].peer_id == "f"
