"""The I/O edge of split inference over the peer network: tunnels to lenders, as candidates.

Asks the node running on this ARIA home (its control channel) for its peers, opens an
RPC tunnel to every verified peer that lends compute (``tunnel`` op: a 127.0.0.1 port
whose connections become libp2p streams to that peer's loopback RPC worker), pings
lenders whose RTT is not yet known, and turns it all into planner candidates with
:func:`aria.split.peers.candidates_from_peers`. Blocking: call it from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aria.config import AriaPaths
from aria.errors import AriaError
from aria.p2p.control import NodeClient
from aria.p2p.spec import load_spec
from aria.split.peers import candidates_from_peers, lenders
from aria.split.placement import Candidate

__all__ = ["NetworkCandidates", "network_candidates"]


@dataclass(frozen=True)
class NetworkCandidates:
    """Candidates from the peer network, and why some lenders are not among them."""

    node_running: bool
    candidates: tuple[Candidate, ...] = ()
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def lenders(self) -> int:
        """Candidates that consented and have a tunnel."""
        return sum(c.consenting for c in self.candidates)

    def notes(self) -> list[str]:
        return [f"peer {peer} unreachable: {why}" for peer, why in self.unreachable.items()]


def network_candidates(paths: AriaPaths) -> NetworkCandidates:
    """The peers of the node running on ``paths``' home, tunnels opened to the lenders.

    Never raises for a peer: a lender whose tunnel or ping fails is listed in
    ``unreachable`` with the reason; no node running gives ``node_running=False``.
    """
    client = NodeClient.connect(paths)
    if client is None:
        return NetworkCandidates(node_running=False)
    try:
        views = client.peers()
    except AriaError as exc:
        return NetworkCandidates(True, unreachable={"(node)": exc.message})
    ports: dict[str, int] = {}
    rtts: dict[str, float] = {}
    unreachable: dict[str, str] = {}
    by_id = {view.peer_id: view for view in views}
    for peer in lenders(views):
        try:
            ports[peer] = int(client.request("tunnel", peer_id=peer)["port"])
            if by_id[peer].rtt_ms is None:
                rtts[peer] = float(client.ping(peer)["rtt_ms"])
        except AriaError as exc:
            unreachable[peer] = exc.message
            ports.pop(peer, None)
    candidates = candidates_from_peers(views, ports, rtts, full_score=load_spec().guard.initial)
    return NetworkCandidates(True, tuple(candidates), unreachable)
