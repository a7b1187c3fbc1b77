"""What the node reports through its control channel (pure data).

These models are the contract between the node process and its local clients
(the CLI and the API process); they are JSON on the wire and typed on both ends.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from aria.p2p.adverts import ConsentSummary, LoadReport, ModelOffer
from aria.p2p.hardware_summary import HardwareSummary

__all__ = ["ConnectionKind", "ModelProvider", "NetworkStatus", "PeerView", "Reachability"]

ConnectionKind = Literal["direct", "relayed", "none"]
Reachability = Literal["public", "private", "unknown"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PeerView(_View):
    peer_id: str
    addrs: list[str]
    connection: ConnectionKind
    rtt_ms: float | None = None
    agent: str = ""
    verified: bool = False
    hardware: HardwareSummary = HardwareSummary()
    models: list[ModelOffer] = []
    load: LoadReport = LoadReport()
    consent: ConsentSummary = ConsentSummary()
    relay: bool = False
    relayed_addrs: list[str] = []
    advert_expires_at: float | None = None
    score: float = 0.0
    # 0..1: the lower of its spot-check record here and its protocol standing (the score)
    reputation: float = 0.5
    checks_passed: int = 0  # its answers this node re-executed and found equal
    checks_failed: int = 0  # ... and found different (evidence in the ledger)
    contract: str | None = None  # the SHA-256 of its consent contract (handshake)


class NetworkStatus(_View):
    peer_id: str
    protocol: str
    agent: str
    started_at: float
    listen_addrs: list[str]
    relayed_addrs: list[str]
    reachability: Reachability
    relays_in_use: list[str]
    relay_service: bool
    mdns: bool
    connected_peers: int
    aria_peers: int
    dht_routing_table: int
    dht_size_estimate: int
    banned_peers: list[str]
    advert_seq: int | None = None


class ModelProvider(_View):
    peer_id: str
    model: ModelOffer
    connection: ConnectionKind
    addrs: list[str]
    relayed_addrs: list[str]
    load: LoadReport
    consent: ConsentSummary
    hardware: HardwareSummary
