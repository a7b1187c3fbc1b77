"""The chunk planner: pull-based shares, rarest first, bans, give-backs, the end game."""

from __future__ import annotations

import heapq

from aria.library.bitmap import Bitmap
from aria.library.planner import Accepted, Corrupt, Duplicate, SwarmPlan

GOOD = tuple(f"{i:064x}" for i in range(40))
BAD = "f" * 64


def plan(count: int = 40, done: Bitmap | None = None, **kwargs: int) -> SwarmPlan:
    return SwarmPlan([100] * count, GOOD[:count], done or Bitmap(count), **kwargs)


def run(swarm: SwarmPlan, speeds: dict[str, float]) -> dict[str, int]:
    """Every provider sends each chunk in 100/speed seconds; how many did each deliver?"""
    now = 0.0
    pending: list[tuple[float, str, int]] = []
    busy_until = dict.fromkeys(speeds, 0.0)
    for peer in speeds:
        swarm.add_source(peer, None)

    def ask(peer: str) -> None:
        for index in swarm.assign(peer, now):
            busy_until[peer] = max(busy_until[peer], now) + 100 / speeds[peer]
            heapq.heappush(pending, (busy_until[peer], peer, index))

    for peer in speeds:
        ask(peer)
    delivered = dict.fromkeys(speeds, 0)
    while pending and not swarm.complete:
        now, peer, index = heapq.heappop(pending)
        if index not in swarm.done:
            verdict = swarm.arrived(peer, index, GOOD[index], now)
            if isinstance(verdict, Accepted):
                delivered[peer] += 1
        ask(peer)
        for other in speeds:
            ask(other)
    assert swarm.complete
    return delivered


def test_fast_providers_get_more_chunks_and_a_slow_one_few() -> None:
    delivered = run(plan(), {"fast-1": 10.0, "fast-2": 10.0, "slow": 1.0})
    assert delivered["fast-1"] + delivered["fast-2"] >= 34
    assert delivered["slow"] <= 4
    assert sum(delivered.values()) == 40


def test_resumed_chunks_are_never_asked_again() -> None:
    done = Bitmap(40, range(0, 40, 2))
    swarm = plan(done=done)
    swarm.add_source("p", None)
    asked: list[int] = []
    while not swarm.complete:
        for index in swarm.assign("p", 0.0):
            asked.append(index)
            swarm.arrived("p", index, GOOD[index], 1.0)
    assert sorted(asked) == list(range(1, 40, 2))


def test_a_bad_chunk_bans_its_sender_and_gives_its_chunks_back() -> None:
    swarm = plan(window=3)
    swarm.add_source("liar", None)
    swarm.add_source("honest", None)
    lies = swarm.assign("liar", 0.0)
    assert len(lies) == 3
    verdict = swarm.arrived("liar", lies[0], BAD, 1.0)
    assert verdict == Corrupt(lies[0], tuple(lies[1:]))
    assert swarm.is_banned("liar") and swarm.assign("liar", 1.0) == []
    assert swarm.active_sources == ["honest"]
    taken: set[int] = set()
    while not swarm.complete:
        for index in swarm.assign("honest", 2.0):
            taken.add(index)
            swarm.arrived("honest", index, GOOD[index], 2.0)
    assert set(lies) <= taken and lies[0] not in swarm.done.missing()


def test_a_provider_that_leaves_gives_its_chunks_back() -> None:
    swarm = plan()
    swarm.add_source("a", None)
    swarm.add_source("b", None)
    held = swarm.assign("a", 0.0)
    first = swarm.assign("b", 0.0)
    assert held == [0, 1] and first == [2, 3]
    assert swarm.drop_source("a") == (0, 1)
    for index in first:
        swarm.arrived("b", index, GOOD[index], 1.0)
    assert swarm.assign("b", 1.0) == [0, 1]  # given back, asked before the rest
    assert swarm.assign("a", 1.0) == []


def test_rarest_first_among_partial_providers() -> None:
    swarm = plan(count=6)
    swarm.add_source("seed", None)
    swarm.add_source("half", Bitmap(6, [0, 1, 2]))
    first = swarm.assign("seed", 0.0)
    assert set(first) <= {3, 4, 5}  # only the seed holds these
    swarm.gained("half", (4,))
    assert swarm.assign("half", 0.0)[0] in {0, 1, 2, 4}
    swarm.missing_at("half", 0)
    assert not swarm.stuck


def test_stuck_when_nobody_holds_what_is_missing() -> None:
    swarm = plan(count=4)
    swarm.add_source("half", Bitmap(4, [0, 1]))
    for index in swarm.assign("half", 0.0):
        swarm.arrived("half", index, GOOD[index], 1.0)
    assert swarm.done_bytes() == 200 and swarm.stuck and not swarm.complete


def test_end_game_asks_an_idle_fast_provider_for_a_slow_ones_chunk() -> None:
    swarm = plan(count=3, window=1)
    swarm.add_source("slow", None)
    swarm.add_source("fast", None)
    slow = swarm.assign("slow", 0.0)
    fast = swarm.assign("fast", 0.0)
    swarm.arrived("fast", fast[0], GOOD[fast[0]], 1.0)
    swarm.arrived("slow", slow[0], GOOD[slow[0]], 50.0)  # the slow one is measured slow
    remaining = swarm.assign("slow", 50.0)
    duplicate = swarm.assign("fast", 51.0)
    assert duplicate == remaining  # end game: the idle fast provider doubles up
    verdict = swarm.arrived("fast", duplicate[0], GOOD[duplicate[0]], 52.0)
    assert verdict == Accepted(duplicate[0], ("slow",))  # cancel the slow copy
    assert swarm.complete
    assert swarm.arrived("slow", duplicate[0], GOOD[duplicate[0]], 60.0) == Duplicate(duplicate[0])
    views = {v.peer: v for v in swarm.sources()}
    assert views["fast"].chunks == 2 and views["slow"].state == "active"
