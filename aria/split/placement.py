"""The planner's vocabulary: the node, the candidate peers, the policy, and the plan.

Plain frozen values (no I/O), so plans can be built, compared and serialized anywhere;
:mod:`aria.split.planner` makes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "GGML_RPC_MAX_SERVERS",
    "ROUND_TRIPS_PER_PEER_PER_TOKEN",
    "Candidate",
    "LocalNode",
    "PeerShare",
    "Placement",
    "PlanPolicy",
    "Skipped",
]

GGML_RPC_MAX_SERVERS = 16  # ggml-rpc.h: GGML_RPC_MAX_SERVERS
# Measured through a counting relay (benchmarks/split_inference.py): ggml-rpc queues a
# token's commands asynchronously, so each RPC device costs one round trip per token.
ROUND_TRIPS_PER_PEER_PER_TOKEN = 1


@dataclass(frozen=True)
class LocalNode:
    """The orchestrating node: memory it may fill with this model, and its threads."""

    memory_bytes: int
    threads: int


@dataclass(frozen=True)
class Candidate:
    """A peer offering an RPC worker (reached on ``endpoint`` through the tunnel)."""

    peer_id: str
    endpoint: str
    offered_bytes: int
    threads: int
    rtt_s: float
    reputation: float = 1.0
    consenting: bool = True


@dataclass(frozen=True)
class PlanPolicy:
    """Limits a plan must respect; ``max_local_layers=0`` sends every block to peers."""

    n_ctx: int = 2048
    max_rtt_s: float = 0.1
    min_reputation: float = 0.0
    min_peers: int = 0
    max_peers: int = GGML_RPC_MAX_SERVERS
    max_local_layers: int | None = None


@dataclass(frozen=True)
class PeerShare:
    """The contiguous run of blocks one peer holds (``holds_output``: also the head)."""

    peer_id: str
    endpoint: str
    first_layer: int
    layers: int
    holds_output: bool
    bytes_needed: int
    offered_bytes: int
    threads: int
    rtt_s: float

    @property
    def slots(self) -> int:
        """What llama.cpp's ``tensor_split`` counts for this device."""
        return self.layers + int(self.holds_output)


@dataclass(frozen=True)
class Skipped:
    peer_id: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """A plan: the node's own layers, each peer's share in device order, and why."""

    model: str
    n_layers: int
    local_layers: int
    local_bytes: int
    shares: tuple[PeerShare, ...]
    skipped: tuple[Skipped, ...]
    explanation: tuple[str, ...]
    n_ctx: int

    @property
    def endpoints(self) -> tuple[str, ...]:
        """RPC servers to register, in the order ``tensor_split`` weights them."""
        return tuple(share.endpoint for share in self.shares)

    @property
    def n_gpu_layers(self) -> int:
        """llama.cpp's offload count: every slot after the local blocks."""
        return 0 if not self.shares else self.n_layers + 1 - self.local_layers

    @property
    def tensor_split(self) -> tuple[float, ...]:
        """Slot counts per device; llama.cpp then gives each exactly that many slots."""
        return tuple(float(share.slots) for share in self.shares)

    @property
    def round_trips_per_token(self) -> int:
        return ROUND_TRIPS_PER_PEER_PER_TOKEN * len(self.shares)

    @property
    def network_s_per_token(self) -> float:
        """Network latency added to every generated token (sum of the peers' RTTs)."""
        return ROUND_TRIPS_PER_PEER_PER_TOKEN * sum(share.rtt_s for share in self.shares)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n_layers": self.n_layers,
            "n_ctx": self.n_ctx,
            "local_layers": self.local_layers,
            "local_bytes": self.local_bytes,
            "n_gpu_layers": self.n_gpu_layers,
            "tensor_split": list(self.tensor_split),
            "round_trips_per_token": self.round_trips_per_token,
            "network_s_per_token": self.network_s_per_token,
            "peers": [{**asdict(share), "slots": share.slots} for share in self.shares],
            "skipped": [asdict(skip) for skip in self.skipped],
            "explanation": list(self.explanation),
        }
