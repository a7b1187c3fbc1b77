"""Capability adverts: what a node offers, signed, expiring, kept in the DHT (pure).

A node publishes one advert under the Kademlia key ``/aria/<hash of its peer id>`` (a
value record checked by ARIA's namespace validator on every DHT node), and announces itself as a
*provider* of hashed keys: the rendezvous key (``/aria/nodes/1``, "I am an ARIA node")
and one key per model it serves (``/aria/model/1/<model id>``). ``find MODEL_ID`` is a
provider lookup followed by fetching and verifying each provider's advert.

Rules a record must pass before use (``decode_advert``): it parses as a signed
``advert`` envelope, the signature verifies, the signer is the peer the key names,
the protocol major matches, it is not expired, it was not issued in the future,
and it does not claim a lifetime above ``max_ttl_s``. Between two valid records for
the same key the higher ``seq`` wins (``select_advert``). A node that stops publishes
a *withdrawn* advert (a tombstone with a higher ``seq`` and a short life): peers drop
it at once instead of waiting for the old record to expire.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aria.catalog import (
    Capability,
    CatalogEntry,
    LicenceId,
    MemoryFloor,
    ModelId,
    PeerSource,
    Tier,
)
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.keys import NodeKey
from aria.p2p.records import RecordError, SignedEnvelope, open_envelope, seal
from aria.p2p.spec import ProtocolSpec, major_of

__all__ = [
    "Advert",
    "AdvertError",
    "ConsentSummary",
    "LoadReport",
    "ModelCard",
    "ModelOffer",
    "advert_key",
    "build_advert",
    "decode_advert",
    "encode_advert",
    "model_provider_key",
    "provider_key",
    "rendezvous_provider_key",
    "select_advert",
    "withdraw",
]


_KEY_HEX = 32


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class ModelCard(_Payload):
    """What another node's router needs to know of an offered model it does not hold (an
    operator's import has no entry in the reader's catalog)."""

    name: str = Field(default="", max_length=128)
    tier: Tier
    architecture: str = Field(default="", max_length=64)
    params_b: float = Field(gt=0, le=100_000)
    quantization: str = Field(default="", max_length=32)
    licence: str = Field(max_length=64)
    context_length: int = Field(gt=0, le=100_000_000)
    capabilities: frozenset[Capability] = Field(max_length=16)
    ram_gb: float = Field(gt=0, le=1_000_000)
    native_1bit: bool = False

    @classmethod
    def of(cls, entry: CatalogEntry) -> ModelCard:
        return cls(
            name=entry.name[:128],
            tier=entry.tier,
            architecture=entry.architecture[:64],
            params_b=entry.params_b,
            quantization=entry.quantization[:32],
            licence=entry.licence[:64],
            context_length=entry.context_length,
            capabilities=entry.capabilities,
            ram_gb=entry.memory.ram_gb,
            native_1bit=entry.native_1bit,
        )

    def entry(self, model_id: str, sha256: str) -> CatalogEntry | None:
        """The entry routing reads for a model only peers hold (None: an unusable id)."""
        try:
            return CatalogEntry(
                id=ModelId(model_id),
                name=self.name or model_id,
                family=self.architecture or "unknown",
                tier=self.tier,
                architecture=self.architecture or "unknown",
                params_b=self.params_b,
                quantization=self.quantization or "unknown",
                licence=LicenceId(self.licence),
                source=PeerSource(),
                size_bytes=None,
                sha256=sha256,
                context_length=self.context_length,
                capabilities=self.capabilities,
                memory=MemoryFloor(ram_gb=self.ram_gb, vram_gb=0.0),
                native_1bit=self.native_1bit,
                notes="offered by peers",
            )
        except ValidationError:
            return None


class ModelOffer(_Payload):
    id: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    licence_class: str = Field(max_length=32)
    card: ModelCard | None = None  # adverts of older nodes carry none


class LoadReport(_Payload):
    cpu_percent: float = Field(default=0.0, ge=0, le=100_000)
    active_jobs: int = Field(default=0, ge=0, le=1_000_000)


class ConsentSummary(_Payload):
    share_inference: bool = False
    share_rpc: bool = False
    max_remote_jobs: int = Field(default=0, ge=0)
    max_remote_tokens: int = Field(default=0, ge=0)
    rpc_memory_gb: float = Field(default=0.0, ge=0)
    share_library: bool = False
    contract: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")  # its SHA-256
    contract_version: int = Field(default=0, ge=0)


class Advert(_Payload):
    peer_id: str = Field(max_length=128)
    protocol: str = Field(max_length=16)
    seq: int = Field(ge=0)
    issued_at: float
    expires_at: float
    withdrawn: bool = False
    addrs: tuple[str, ...] = Field(default=(), max_length=32)
    relayed_addrs: tuple[str, ...] = Field(default=(), max_length=32)
    relay: bool = False
    hardware: dict[str, Any] = Field(default_factory=dict)
    hardware_summary: HardwareSummary = HardwareSummary()
    profile: str = Field(default="", max_length=64)
    models: tuple[ModelOffer, ...] = Field(default=(), max_length=512)
    load: LoadReport = LoadReport()
    consent: ConsentSummary = ConsentSummary()

    def serves(self, model_id: str) -> ModelOffer | None:
        return next((m for m in self.models if m.id == model_id), None)


class AdvertError(Exception):
    """An advert that must not be used; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def advert_key(peer_id: str, spec: ProtocolSpec) -> str:
    """``/aria/<32 hex chars of sha256(peer id)>``: the DHT key of a peer's advert.

    Hashed because py-libp2p's FIND_NODE handler refuses keys longer than 50 bytes
    that are not multihashes, and ``/aria/<base58 peer id>`` is 58 (see docs/p2p.md).
    """
    digest = hashlib.sha256(peer_id.encode("ascii", "replace")).hexdigest()
    return f"/{spec.dht_namespace}/{digest[:_KEY_HEX]}"


def provider_key(name: str) -> bytes:
    """A sha2-256 multihash of ``name``: the content key a provider record is filed under."""
    return b"\x12\x20" + hashlib.sha256(name.encode("utf-8")).digest()


def rendezvous_provider_key(spec: ProtocolSpec) -> bytes:
    return provider_key(spec.rendezvous_key)


def model_provider_key(model_id: str, spec: ProtocolSpec) -> bytes:
    return provider_key(spec.model_key_prefix + model_id)


def build_advert(
    key: NodeKey,
    spec: ProtocolSpec,
    *,
    now: float,
    seq: int,
    addrs: tuple[str, ...] = (),
    relayed_addrs: tuple[str, ...] = (),
    relay: bool = False,
    hardware: dict[str, Any] | None = None,
    hardware_summary: HardwareSummary | None = None,
    profile: str = "",
    models: tuple[ModelOffer, ...] = (),
    load: LoadReport | None = None,
    consent: ConsentSummary | None = None,
) -> Advert:
    """A fresh advert valid for ``spec.adverts.ttl_s`` from ``now``."""
    return Advert(
        peer_id=key.peer_id,
        protocol=spec.version,
        seq=seq,
        issued_at=now,
        expires_at=now + spec.adverts.ttl_s,
        addrs=addrs,
        relayed_addrs=relayed_addrs,
        relay=relay,
        hardware=hardware or {},
        hardware_summary=hardware_summary or HardwareSummary(),
        profile=profile,
        models=models,
        load=load or LoadReport(),
        consent=consent or ConsentSummary(),
    )


def withdraw(advert: Advert, spec: ProtocolSpec, *, now: float, seq: int) -> Advert:
    """The tombstone that replaces ``advert`` when its node stops."""
    return advert.model_copy(
        update={
            "seq": seq,
            "issued_at": now,
            "expires_at": now + spec.adverts.tombstone_ttl_s,
            "withdrawn": True,
            "models": (),
            "relayed_addrs": (),
        }
    )


def encode_advert(advert: Advert, key: NodeKey, spec: ProtocolSpec) -> bytes:
    """The DHT value: the signed envelope as compact JSON.

    Raises:
        ValueError: the record exceeds ``spec.advert_record`` (too many models or addrs).
    """
    value = seal("advert", advert, key).model_dump_json().encode("utf-8")
    if len(value) > spec.advert_record:
        raise ValueError(f"advert of {len(value)} bytes exceeds {spec.advert_record}")
    return value


def decode_advert(
    value: bytes, spec: ProtocolSpec, *, now: float, key: str | None = None
) -> Advert:
    """Verify a DHT value and return the advert it holds (withdrawn ones included).

    Raises:
        AdvertError: any rule in the module docstring is broken.
    """
    if len(value) > spec.advert_record:
        raise AdvertError("oversized", f"{len(value)} bytes exceeds {spec.advert_record}")
    try:
        envelope = SignedEnvelope.model_validate_json(value)
        signer, advert = open_envelope(envelope, "advert", Advert)
    except ValidationError:
        raise AdvertError("malformed", "not a signed ARIA advert envelope") from None
    except RecordError as exc:
        raise AdvertError(exc.reason, exc.detail) from None
    if key is not None and key != advert_key(signer, spec):
        raise AdvertError("wrong_key", f"advert of {signer} stored under {key}")
    try:
        compatible = major_of(advert.protocol) == spec.major
    except ValueError:
        compatible = False
    if not compatible:
        raise AdvertError("incompatible_version", f"advert speaks protocol {advert.protocol}")
    if advert.expires_at <= now:
        raise AdvertError("expired", f"advert expired {now - advert.expires_at:.0f} s ago")
    if advert.issued_at > now + spec.max_clock_skew_s:
        raise AdvertError("from_future", "advert issued in the future")
    if advert.expires_at - advert.issued_at > spec.adverts.max_ttl_s:
        raise AdvertError("ttl_too_long", "advert claims a lifetime above the maximum")
    return advert


def select_advert(values: list[bytes], spec: ProtocolSpec, *, now: float) -> int:
    """Index of the best of several values for one key: the valid one with the highest seq."""
    best, best_seq = 0, -1
    for index, value in enumerate(values):
        try:
            seq = decode_advert(value, spec, now=now).seq
        except AdvertError:
            continue
        if seq > best_seq:
            best, best_seq = index, seq
    return best
