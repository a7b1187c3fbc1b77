"""The ARIA handshake, run once on every new connection (sans-I/O).

Both sides prove who they are and what they speak before ARIA trusts a peer:

    initiator (dialer)                     responder
    Hello(signed NodeInfo, nonce N1)  -->
                                      <--  Welcome(signed NodeInfo, nonce N2, echo N1), End
    End                               -->                      (or Reject(reason), End)

Each side checks the other's record: signature and signer (``records``), signer ==
the peer the encrypted connection authenticated, same protocol MAJOR version,
timestamp within ``max_clock_skew_s`` of ``now``, nonce never seen before, and — for
the Welcome — that it echoes the initiator's nonce (so an old Welcome cannot be
replayed into a new session). The first failure ends the exchange with a ``Reject``
carrying a stable reason code.

Transitions (``_State``):
  initiator: IDLE -start-> SENT_HELLO -Welcome ok-> AWAIT_END -End-> DONE
  responder: IDLE -Hello ok-> AWAIT_END -End-> DONE
  any state: bad record -> FAILED (Reject sent); Reject/EOF/timeout/codec error -> FAILED
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum, auto
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aria.p2p.codec import CodecError, End, MessageDecoder, Violation, WireModel, encode_message
from aria.p2p.hardware_summary import HardwareSummary
from aria.p2p.keys import NodeKey, PeerId
from aria.p2p.records import RecordError, SignedEnvelope, open_envelope, seal
from aria.p2p.spec import ProtocolSpec, major_of

__all__ = [
    "HandshakeComplete",
    "HandshakeEvent",
    "HandshakeFailed",
    "HandshakeMachine",
    "NodeInfo",
    "ReplayGuard",
]


class NodeInfo(BaseModel):
    """The signed payload of Hello and Welcome (minor versions may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    peer_id: str = Field(max_length=128)
    protocol: str = Field(max_length=16)
    agent: str = Field(max_length=64)
    timestamp: float
    nonce: str = Field(pattern=r"^[0-9a-f]{32}$")
    echo_nonce: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    hardware: HardwareSummary = HardwareSummary()
    # the SHA-256 of the sender's consent contract in force (docs/consent.md)
    contract: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class _Versioned(BaseModel):
    """Just enough of any NodeInfo version to refuse an incompatible one politely."""

    model_config = ConfigDict(extra="ignore")
    peer_id: str
    protocol: str


class Hello(WireModel):
    type: Literal["hello"] = "hello"
    record: SignedEnvelope


class Welcome(WireModel):
    type: Literal["welcome"] = "welcome"
    record: SignedEnvelope


class Reject(WireModel):
    type: Literal["reject"] = "reject"
    reason: str = Field(max_length=64)
    detail: str = Field(default="", max_length=512)


_Message = Annotated[Hello | Welcome | Reject | End, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Hello | Welcome | Reject | End] = TypeAdapter(_Message)
_KNOWN = frozenset({"hello", "welcome", "reject", "end"})


@dataclass(frozen=True)
class HandshakeComplete:
    info: NodeInfo


@dataclass(frozen=True)
class HandshakeFailed:
    """``reason`` is a stable code; ``by_peer`` says the peer refused us (not we them)."""

    reason: str
    detail: str
    by_peer: bool = False
    violation: Violation | None = None


HandshakeEvent = HandshakeComplete | HandshakeFailed


class ReplayGuard:
    """Remembers recent nonces; shared by all handshakes of one node."""

    def __init__(self, capacity: int, lifetime_s: float) -> None:
        self._capacity = capacity
        self._lifetime = lifetime_s
        self._seen: OrderedDict[str, float] = OrderedDict()

    def fresh(self, nonce: str, now: float) -> bool:
        """True (and remembered) the first time ``nonce`` is offered within its lifetime."""
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now + self._lifetime
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


class _State(Enum):
    IDLE = auto()
    SENT_HELLO = auto()
    AWAIT_END = auto()
    DONE = auto()
    FAILED = auto()


class HandshakeMachine:
    """One side of one handshake; feed it bytes and ``now``, send what it returns."""

    def __init__(
        self,
        *,
        initiator: bool,
        key: NodeKey,
        agent: str,
        hardware: HardwareSummary,
        expected_peer: PeerId,
        replay: ReplayGuard,
        spec: ProtocolSpec,
        contract: str | None = None,
    ) -> None:
        self.initiator = initiator
        self._contract = contract
        self._key = key
        self._agent = agent
        self._hardware = hardware
        self._expected = expected_peer
        self._replay = replay
        self._spec = spec
        self._decoder = MessageDecoder(_ADAPTER, _KNOWN, spec.handshake_frame)
        self._state = _State.IDLE
        self._nonce = secrets.token_hex(16)
        self._outbox = bytearray()
        self._frames_seen = 0
        self.deadline: float | None = None
        self.peer_info: NodeInfo | None = None

    @property
    def done(self) -> bool:
        return self._state in (_State.DONE, _State.FAILED)

    def start(self, now: float) -> None:
        """Arm the timeout; the initiator also queues its Hello."""
        self.deadline = now + self._spec.handshake_timeout_s
        if self.initiator:
            self._send(Hello(record=self._record(now, echo=None)))
            self._state = _State.SENT_HELLO

    def data_to_send(self) -> bytes:
        data, self._outbox = bytes(self._outbox), bytearray()
        return data

    def receive_data(self, data: bytes, now: float) -> list[HandshakeEvent]:
        if self.done:
            return []
        try:
            messages = self._decoder.feed(data)
        except CodecError as exc:
            return [self._fail(exc.violation.value, exc.detail, violation=exc.violation)]
        events: list[HandshakeEvent] = []
        for message in messages:
            self._frames_seen += 1
            if self._frames_seen > self._spec.handshake_frames:
                events.append(
                    self._fail(
                        "too_many_frames",
                        "handshake sent too many frames",
                        violation=Violation.MALFORMED,
                    )
                )
            else:
                events.extend(self._on_message(message, now))
            if self.done:
                break
        return events

    def receive_eof(self, now: float) -> list[HandshakeEvent]:
        if self.done:
            return []
        return [
            self._fail(
                "truncated",
                "peer closed the stream mid-handshake",
                violation=Violation.TRUNCATED,
                send_reject=False,
            )
        ]

    def handle_timer(self, now: float) -> list[HandshakeEvent]:
        if self.done or self.deadline is None or now < self.deadline:
            return []
        return [self._fail("timeout", "handshake did not finish in time")]

    # -- transitions -------------------------------------------------------------

    def _on_message(
        self, message: Hello | Welcome | Reject | End, now: float
    ) -> list[HandshakeEvent]:
        state = self._state
        if isinstance(message, Reject):
            self._state = _State.FAILED
            return [HandshakeFailed(message.reason, message.detail, by_peer=True)]
        if state is _State.IDLE and not self.initiator and isinstance(message, Hello):
            return self._on_hello(message.record, now)
        if state is _State.SENT_HELLO and isinstance(message, Welcome):
            return self._on_welcome(message.record, now)
        if state is _State.AWAIT_END and isinstance(message, End):
            self._state = _State.DONE
            assert self.peer_info is not None
            return [HandshakeComplete(self.peer_info)]
        return [
            self._fail(
                "unexpected_message",
                f"{message.type!r} in state {state.name}",
                violation=Violation.MALFORMED,
            )
        ]

    def _on_hello(self, record: SignedEnvelope, now: float) -> list[HandshakeEvent]:
        try:
            info = self._check(record, now)
        except RecordError as exc:
            return [self._fail(exc.reason, exc.detail)]
        self.peer_info = info
        self._send(Welcome(record=self._record(now, echo=info.nonce)))
        self._send(End())
        self._state = _State.AWAIT_END
        return []

    def _on_welcome(self, record: SignedEnvelope, now: float) -> list[HandshakeEvent]:
        try:
            info = self._check(record, now)
            if info.echo_nonce != self._nonce:
                raise RecordError("bad_echo", "the welcome does not answer this session's hello")
        except RecordError as exc:
            return [self._fail(exc.reason, exc.detail)]
        self.peer_info = info
        self._send(End())
        self._state = _State.AWAIT_END
        return []

    def _check(self, record: SignedEnvelope, now: float) -> NodeInfo:
        """Raises: RecordError with the reason the peer is refused."""
        signer, versioned = open_envelope(record, "hello", _Versioned)
        try:
            compatible = major_of(versioned.protocol) == self._spec.major
        except ValueError:
            compatible = False
        if not compatible:
            raise RecordError(
                "incompatible_version",
                f"peer speaks ARIA protocol {versioned.protocol}, this node {self._spec.version}",
            )
        try:
            info = NodeInfo.model_validate_json(record.payload)
        except ValidationError as exc:
            raise RecordError("bad_payload", f"invalid node info: {exc}") from None
        if signer != self._expected:
            raise RecordError(
                "peer_mismatch", f"record signed by {signer}, connection is {self._expected}"
            )
        if abs(now - info.timestamp) > self._spec.max_clock_skew_s:
            raise RecordError("stale_timestamp", f"timestamp is {now - info.timestamp:+.0f} s off")
        if not self._replay.fresh(info.nonce, now):
            raise RecordError("replayed_nonce", "this hello was seen before")
        return info

    # -- helpers -----------------------------------------------------------------

    def _record(self, now: float, *, echo: str | None) -> SignedEnvelope:
        info = NodeInfo(
            peer_id=self._key.peer_id,
            protocol=self._spec.version,
            agent=self._agent,
            timestamp=now,
            nonce=self._nonce,
            echo_nonce=echo,
            hardware=self._hardware,
            contract=self._contract,
        )
        return seal("hello", info, self._key)

    def _send(self, message: WireModel) -> None:
        self._outbox.extend(encode_message(message, self._spec.handshake_frame))

    def _fail(
        self,
        reason: str,
        detail: str,
        *,
        violation: Violation | None = None,
        send_reject: bool = True,
    ) -> HandshakeFailed:
        if send_reject:
            self._send(Reject(reason=reason, detail=detail[:512]))
            self._send(End())
        self._state = _State.FAILED
        return HandshakeFailed(reason, detail, violation=violation)
