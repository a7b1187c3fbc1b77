"""Where the layers of a split model go: a pure function of the model and the candidates.

Rules, in order (each one is a line of :attr:`Placement.explanation`):

1. The orchestrating node keeps the input embeddings and a scratch buffer; a model
   that fits entirely in its budget is not split at all.
2. Otherwise the node keeps as many leading blocks as its budget allows (local layers
   cost no network), unless the policy caps them.
3. Candidates are skipped when they did not consent, answer too slowly (RTT above the
   policy's limit), have too low a reputation, are listed twice, or offer less than
   one block plus scratch.
4. The fewest peers that can hold the rest are used: for every generated token each
   peer costs one network round trip. Among equally few, peers are taken by lowest
   RTT, then most threads, then best reputation (then id, so plans are repeatable).
5. Blocks are shared in proportion to the peers' threads, within each offer (equal
   threads: equal shares, so no peer is pushed to the edge of its offer); every peer
   holds at least one slot. The output head (the last slot) goes to the most preferred
   peer that can also fit it and a batch of logits: that device sends the logits back
   (``n_vocab`` floats) for every token, the largest per-token transfer.

Memory is checked conservatively: a peer's block capacity assumes the largest block
it could receive. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aria.errors import PlacementRefused
from aria.split.layout import ModelLayout
from aria.split.placement import (
    ROUND_TRIPS_PER_PEER_PER_TOKEN,
    Candidate,
    LocalNode,
    PeerShare,
    Placement,
    PlanPolicy,
    Skipped,
)

__all__ = ["plan_placement"]

_MIB = 1024**2


@dataclass
class _Need:
    """Memory arithmetic for one model under one policy."""

    layout: ModelLayout
    n_ctx: int
    blocks: list[int] = field(init=False)
    scratch: int = field(init=False)
    head: int = field(init=False)

    def __post_init__(self) -> None:
        self.blocks = [self.layout.block_bytes(i, self.n_ctx) for i in range(self.layout.n_layers)]
        self.scratch = self.layout.compute_bytes(self.n_ctx)
        self.head = self.layout.output_bytes + self.layout.output_compute_bytes()

    def capacity(self, offered: int, unit: int, *, last: bool) -> int:
        """Whole blocks of size ``unit`` fitting in ``offered`` (-1: not even the fixed part)."""
        room = offered - self.scratch - (self.head if last else 0)
        if room < 0:
            return -1
        return room // unit if unit else self.layout.n_layers


def plan_placement(
    layout: ModelLayout,
    local: LocalNode,
    candidates: Sequence[Candidate],
    policy: PlanPolicy,
) -> Placement:
    """Choose the node's layers, the peers and their shares.

    Raises:
        PlacementRefused: the node cannot even orchestrate, or no set of eligible
        peers can hold the remaining layers (the message says what was short).
    """
    need = _Need(layout, policy.n_ctx)
    n = layout.n_layers
    lines = [
        f"{layout.name}: {n} layers, {_mib(layout.weight_bytes)} of weights; at context "
        f"{policy.n_ctx} each layer also needs {_mib(layout.kv_bytes(policy.n_ctx))} of K/V cache"
    ]
    fixed = layout.input_bytes + need.scratch
    if local.memory_bytes < fixed:
        raise PlacementRefused(
            f"this node needs {_mib(fixed)} to orchestrate {layout.name} (input embeddings and "
            f"scratch) but its budget is {_mib(local.memory_bytes)}"
        )
    whole = fixed + sum(need.blocks) + need.head
    cap = n if policy.max_local_layers is None else min(policy.max_local_layers, n)
    if policy.min_peers == 0 and cap == n and whole <= local.memory_bytes:
        lines.append(
            f"fits in this node's budget ({_mib(whole)} of {_mib(local.memory_bytes)}): not split"
        )
        return Placement(layout.name, n, n, whole, (), (), tuple(lines), policy.n_ctx)

    local_layers, used = 0, fixed
    cap = min(cap, n + 1 - max(policy.min_peers, 1))
    while local_layers < cap and used + need.blocks[local_layers] <= local.memory_bytes:
        used += need.blocks[local_layers]
        local_layers += 1
    lines.append(_local_line(local_layers, used, local, layout))
    remaining = n - local_layers
    unit = max(need.blocks[local_layers:], default=0)

    eligible, skipped = _eligible(candidates, policy, need, unit)
    chosen = _choose(eligible, need, unit, remaining, policy)
    if chosen is None:
        offered = sum(c.offered_bytes for c in eligible)
        wanted = sum(need.blocks[local_layers:]) + need.head + need.scratch
        raise PlacementRefused(
            f"no set of peers can hold {layout.name}: {remaining} layers and the output head "
            f"need about {_mib(wanted)} beyond this node, {len(eligible)} eligible peer(s) offer "
            f"{_mib(offered)} ({len(skipped)} skipped)"
        )
    order, counts = _distribute(chosen, need, unit, remaining)
    shares = _shares(order, counts, local_layers, need)
    lines += _peer_lines(shares, eligible, skipped)
    return Placement(
        layout.name, n, local_layers, used, shares, tuple(skipped), tuple(lines), policy.n_ctx
    )


def _preference(candidate: Candidate) -> tuple[float, int, float, str]:
    return (candidate.rtt_s, -candidate.threads, -candidate.reputation, candidate.peer_id)


def _eligible(
    candidates: Sequence[Candidate], policy: PlanPolicy, need: _Need, unit: int
) -> tuple[list[Candidate], list[Skipped]]:
    eligible: list[Candidate] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for c in candidates:
        reason = None
        if c.peer_id in seen or c.endpoint in seen:
            reason = "listed twice"
        elif not c.consenting:
            reason = "has not consented to lend compute for split inference"
        elif c.rtt_s > policy.max_rtt_s:
            reason = (
                f"RTT {c.rtt_s * 1000:.1f} ms is above the {policy.max_rtt_s * 1000:.0f} ms limit"
            )
        elif c.reputation < policy.min_reputation:
            reason = f"reputation {c.reputation:.2f} is below {policy.min_reputation:.2f}"
        elif need.capacity(c.offered_bytes, unit, last=False) < 1:
            reason = (
                f"offers {_mib(c.offered_bytes)}, less than one layer ({_mib(unit)}) plus "
                f"scratch ({_mib(need.scratch)})"
            )
        seen.update((c.peer_id, c.endpoint))
        if reason is None:
            eligible.append(c)
        else:
            skipped.append(Skipped(c.peer_id, reason))
    return sorted(eligible, key=_preference), skipped


def _feasible(group: Sequence[Candidate], need: _Need, unit: int, remaining: int) -> bool:
    return _last_holder(group, need, unit, remaining) is not None


def _last_holder(
    group: Sequence[Candidate], need: _Need, unit: int, remaining: int
) -> Candidate | None:
    """The most preferred peer that can take the output head with ``group`` holding every
    block: its device sends a whole vector of logits back for every token."""
    if not group or remaining < len(group) - 1:
        return None
    plain = {c.peer_id: need.capacity(c.offered_bytes, unit, last=False) for c in group}
    for last in sorted(group, key=_preference):
        head_cap = need.capacity(last.offered_bytes, unit, last=True)
        if head_cap < 0:
            continue
        total = head_cap + sum(plain[c.peer_id] for c in group if c is not last)
        if total >= remaining:
            return last
    return None


def _choose(
    eligible: list[Candidate], need: _Need, unit: int, remaining: int, policy: PlanPolicy
) -> list[Candidate] | None:
    """The fewest peers that fit, picked greedily by preference with a feasibility check.

    A partial choice can be completed iff adding the largest offers completes it
    (capacity only grows with the offer), so the greedy never paints itself into a corner.
    """
    by_offer = sorted(eligible, key=lambda c: -c.offered_bytes)
    smallest = max(1, policy.min_peers)
    for k in range(smallest, min(policy.max_peers, len(eligible)) + 1):
        if not _feasible(by_offer[:k], need, unit, remaining):
            continue
        picked: list[Candidate] = []
        while len(picked) < k:
            for c in eligible:
                if c in picked:
                    continue
                rest = [o for o in by_offer if o is not c and o not in picked]
                if _feasible([*picked, c, *rest[: k - len(picked) - 1]], need, unit, remaining):
                    picked.append(c)
                    break
        return picked
    return None


def _distribute(
    chosen: list[Candidate], need: _Need, unit: int, remaining: int
) -> tuple[list[Candidate], list[int]]:
    """Device order (preference, head holder last) and blocks per device.

    Each non-last peer first gets one block; the rest go one at a time to the peer
    whose slots per thread would stay lowest (D'Hondt), within its capacity.
    """
    last = _last_holder(chosen, need, unit, remaining)
    assert last is not None  # _choose only returns feasible groups
    order = [c for c in chosen if c is not last] + [last]
    caps = [need.capacity(c.offered_bytes, unit, last=c is last) for c in order]
    counts = [1] * (len(order) - 1) + [0]
    heads = [0] * (len(order) - 1) + [1]
    for _ in range(remaining - sum(counts)):
        open_ = [i for i in range(len(order)) if counts[i] < caps[i]]
        best = min(open_, key=lambda i: ((counts[i] + heads[i] + 1) / order[i].threads, i))
        counts[best] += 1
    return order, counts


def _shares(
    order: list[Candidate], counts: list[int], first: int, need: _Need
) -> tuple[PeerShare, ...]:
    shares = []
    for position, (c, count) in enumerate(zip(order, counts, strict=True)):
        last = position == len(order) - 1
        needed = sum(need.blocks[first : first + count]) + need.scratch + (need.head if last else 0)
        shares.append(
            PeerShare(
                c.peer_id,
                c.endpoint,
                first,
                count,
                last,
                needed,
                c.offered_bytes,
                c.threads,
                c.rtt_s,
            )
        )
        first += count
    return tuple(shares)


def _local_line(local_layers: int, used: int, local: LocalNode, layout: ModelLayout) -> str:
    held = f"layers 0-{local_layers - 1}" if local_layers else "no layers"
    return (
        f"this node keeps the input embeddings ({_mib(layout.input_bytes)}) and {held}: "
        f"{_mib(used)} of its {_mib(local.memory_bytes)} budget, {local.threads} thread(s)"
    )


def _peer_lines(
    shares: tuple[PeerShare, ...], eligible: list[Candidate], skipped: list[Skipped]
) -> list[str]:
    lines = []
    for share in shares:
        span = f"layers {share.first_layer}-{share.first_layer + share.layers - 1}"
        if share.layers == 0:
            span = "no blocks"
        head = " and the output head" if share.holds_output else ""
        lines.append(
            f"peer {share.peer_id} ({share.endpoint}): {span}{head}, {_mib(share.bytes_needed)} "
            f"of its {_mib(share.offered_bytes)} offer; RTT {share.rtt_s * 1000:.1f} ms, "
            f"{share.threads} thread(s)"
        )
    used = {share.peer_id for share in shares}
    for c in eligible:
        if c.peer_id not in used:
            lines.append(
                f"peer {c.peer_id} not needed: {len(shares)} peer(s) suffice and each extra "
                "peer adds a network round trip per token"
            )
    lines += [f"peer {skip.peer_id} skipped: {skip.reason}" for skip in skipped]
    rtts = sum(share.rtt_s for share in shares) * ROUND_TRIPS_PER_PEER_PER_TOKEN
    lines.append(
        f"per generated token: {ROUND_TRIPS_PER_PEER_PER_TOKEN * len(shares)} network round "
        f"trip(s), about {rtts * 1000:.1f} ms of network latency"
    )
    return lines


def _mib(size: int) -> str:
    if size >= 1024 * _MIB:
        return f"{size / (1024 * _MIB):.2f} GiB"
    return f"{size / _MIB:.1f} MiB"
