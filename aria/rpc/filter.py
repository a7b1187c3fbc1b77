"""A ggml-rpc protocol filter between a peer and this node's RPC worker (sans-I/O).

ggml-rpc trusts its client completely: tensor pointers, sizes, graph ops and a cache
flag that writes files. A lender therefore never lets a peer's bytes reach its worker
unparsed. :class:`RpcFilter` reads both directions of one connection (bytes in; bytes
to forward, or a :class:`Refusal`, out) and lets through only what llama.cpp's own
client sends, within what this session was given:

* the first command is ``HELLO``; every command is one of protocol 7.0.0
  (:mod:`aria.rpc.wire`), with the exact size the real client uses; the
  transport-upgrade (RDMA) capabilities in both HELLOs are zeroed;
* ``device`` is always 0 (a worker serves one device);
* every tensor lies inside a buffer the worker allocated *on this connection*, whose
  base the client asked for, with ``offset + size`` inside the tensor: the bounds
  ggml aborts on (``deserialize_tensor``, ``ggml_backend_tensor_set/get``);
* the buffers allocated on the connection never total more than the offer;
* the tensor cache is closed to peers: ``SET_TENSOR_HASH`` is answered here with "not
  cached" and never reaches the worker, and a ``SET_TENSOR``'s cache flag is cleared;
* a graph is bounded (nodes, tensors), names only tensors it carries, uses only the
  forward ops llama.cpp emits (never the custom ops whose parameters hold function
  pointers) with valid kernel enums; ``GRAPH_RECOMPUTE`` needs a graph still valid;
* the session ends when idle (no bytes and no answer pending) for ``idle_s``, after
  ``max_session_s``, or beyond ``max_client_bytes``.

A refusal is decided *before* the offending command's first byte is forwarded, so the
worker never sees a request it would abort on; the adapter then closes both sides.
Large ``SET_TENSOR`` payloads and ``GET_TENSOR`` answers stream through once their
headers passed, so weights are never held here whole.

Transitions: OPEN -first command HELLO-> SERVING -any violation/timer-> REFUSED.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aria.rpc.ledger import FilterLimits, Ledger, Refusal, Refused
from aria.rpc.wire import (
    FIXED_REQUEST_SIZE,
    HEADER,
    RESPONSE_SIZE,
    RPC_TENSOR,
    SET_TENSOR_HEADER,
    BufferTable,
    Command,
    GgmlTable,
    load_table,
)

__all__ = ["FilterLimits", "Refusal", "RpcFilter"]

_U64 = struct.Struct("<Q")
_NOT_CACHED = _U64.pack(1) + b"\x00"  # SET_TENSOR_HASH answer: result = 0


@dataclass
class _Expect:
    """One answer the client waits for, in order: from the worker, or made here."""

    command: Command
    size: int
    arg: int = 0  # ALLOC_BUFFER: the size asked; BUFFER_GET_BASE: the buffer
    local: bytes | None = None


@dataclass
class _Counters:
    client_bytes: int = 0
    worker_bytes: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    cache_flags_cleared: int = 0


class RpcFilter:
    """One peer connection to the worker; feed both directions, forward what it returns."""

    def __init__(self, limits: FilterLimits, table: GgmlTable | None = None) -> None:
        self.limits = limits
        self.table = table or load_table()
        self.refusal: Refusal | None = None
        self.stats = _Counters()
        self.ledger = Ledger(limits, self.table)
        self._hello_seen = False
        self._client = bytearray()
        self._worker = bytearray()
        self._to_worker = bytearray()
        self._to_client = bytearray()
        self._payload_left = 0  # SET_TENSOR bytes still to stream to the worker
        self._answer_left = 0  # GET_TENSOR bytes still to stream to the client
        self._expect: deque[_Expect] = deque()
        self._started = 0.0
        self._last_activity = 0.0
        self._idle_s = limits.idle_s

    # -- the sans-I/O surface -------------------------------------------------------

    @property
    def allocated_bytes(self) -> int:
        return self.ledger.live

    @property
    def buffers(self) -> BufferTable:
        return self.ledger.buffers

    @property
    def deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (None once refused)."""
        if self.refusal is not None:
            return None
        end = self._started + self.limits.max_session_s
        if self._expect or self._answer_left:
            return end  # the worker owes an answer: computing is not idling
        return min(end, self._last_activity + self._idle_s)

    def start(self, now: float) -> None:
        self._started = self._last_activity = now

    def shorten_idle(self, idle_s: float) -> None:
        """Let the session end sooner when idle (another peer waits for the worker)."""
        self._idle_s = min(self._idle_s, idle_s)

    def receive_client(self, data: bytes, now: float) -> None:
        """Bytes from the peer (its llama.cpp client)."""
        if self.refusal is not None:
            return
        self._last_activity = now
        self.stats.client_bytes += len(data)
        self._client += data
        self._guard(self._parse_client)

    def receive_worker(self, data: bytes, now: float) -> None:
        """Bytes from this node's RPC worker."""
        if self.refusal is not None:
            return
        self._last_activity = now
        self.stats.worker_bytes += len(data)
        self._worker += data
        self._guard(self._parse_worker)

    def handle_timer(self, now: float) -> None:
        if self.refusal is not None:
            return
        if now >= self._started + self.limits.max_session_s:
            self._refuse("duration", f"session reached its {self.limits.max_session_s:.0f} s limit")
        elif self.deadline is not None and now >= self.deadline:
            self._refuse("idle", f"session idle for {self._idle_s:.0f} s")

    def data_for_worker(self) -> bytearray:
        data, self._to_worker = self._to_worker, bytearray()
        return data

    def data_for_client(self) -> bytearray:
        data, self._to_client = self._to_client, bytearray()
        return data

    # -- plumbing -------------------------------------------------------------------

    def _refuse(self, reason: str, detail: str) -> None:
        self.refusal = Refusal(reason, detail)
        self._client.clear()
        self._worker.clear()

    def _guard(self, parse: Callable[[], None]) -> None:
        try:
            parse()
        except Refused as exc:
            self._refuse(exc.refusal.reason, exc.refusal.detail)
        except (ValueError, KeyError, struct.error) as exc:  # malformed beyond the checks
            self._refuse("protocol", f"malformed message ({exc})")

    def _stream(self, source: bytearray, pos: int, left: int, sink: bytearray) -> tuple[int, int]:
        take = min(left, len(source) - pos)
        sink += source[pos : pos + take]
        return pos + take, left - take

    # -- client -> worker -------------------------------------------------------------

    def _parse_client(self) -> None:
        if self.stats.client_bytes > self.limits.max_client_bytes:
            raise Refused("quota", f"session sent over {self.limits.max_client_bytes} bytes")
        buf, pos = self._client, 0
        try:
            while True:
                if self._payload_left:
                    pos, self._payload_left = self._stream(
                        buf, pos, self._payload_left, self._to_worker
                    )
                    if self._payload_left:
                        return
                if len(buf) - pos < HEADER.size:
                    return
                raw, size = HEADER.unpack_from(buf, pos)
                command = self._command(raw, size)
                if command is Command.SET_TENSOR:
                    if len(buf) - pos < HEADER.size + SET_TENSOR_HEADER:
                        return
                    head = bytes(buf[pos + HEADER.size : pos + HEADER.size + SET_TENSOR_HEADER])
                    head, self._payload_left = self.ledger.set_tensor(head, size)
                    self._to_worker += HEADER.pack(command, size) + head
                    self._consumed(command)
                    pos += HEADER.size + SET_TENSOR_HEADER
                    continue
                if len(buf) - pos < HEADER.size + size:
                    return
                body = bytes(buf[pos + HEADER.size : pos + HEADER.size + size])
                pos += HEADER.size + size
                self._request(command, body)
                self._consumed(command)
        finally:
            del buf[:pos]
            self._answer_local()

    def _command(self, raw: int, size: int) -> Command:
        """The command a header announces, if this session may send it (no state change)."""
        try:
            command = Command(raw)
        except ValueError:
            raise Refused("protocol", f"unknown command {raw}") from None
        if (command is Command.HELLO) == self._hello_seen:
            raise Refused("protocol", "HELLO must come first, and only once")
        fixed = FIXED_REQUEST_SIZE.get(command)
        if fixed is not None and size != fixed:
            raise Refused("protocol", f"{command.name} of {size} bytes (expected {fixed})")
        if command is Command.SET_TENSOR and size < SET_TENSOR_HEADER:
            raise Refused("protocol", "SET_TENSOR shorter than its header")
        if command is Command.GRAPH_COMPUTE and size > self.limits.max_graph_bytes:
            raise Refused("graph", f"graph of {size} bytes exceeds this session's limit")
        return command

    def _consumed(self, command: Command) -> None:
        self._hello_seen = True
        self.stats.commands[command.name] += 1
        self.stats.cache_flags_cleared = self.ledger.cache_flags_cleared

    def _request(self, command: Command, body: bytes) -> None:
        """Check one whole request; forward it (as rewritten) or answer it here."""
        forwarded = self.ledger.check(command, body)
        if forwarded is None:
            self._expect.append(_Expect(command, 1, local=_NOT_CACHED))
            return
        self._to_worker += HEADER.pack(command, len(forwarded)) + forwarded
        if command is Command.GET_TENSOR:
            size = _U64.unpack_from(body, RPC_TENSOR.itemsize + 8)[0]
            self._expect.append(_Expect(command, int(size)))
        elif command in RESPONSE_SIZE:
            arg = 0
            if command is Command.ALLOC_BUFFER:
                arg = _U64.unpack_from(body, 4)[0]
            elif command is Command.BUFFER_GET_BASE:
                arg = _U64.unpack_from(body)[0]
            self._expect.append(_Expect(command, RESPONSE_SIZE[command], int(arg)))

    # -- worker -> client -------------------------------------------------------------

    def _answer_local(self) -> None:
        while self._expect and self._expect[0].local is not None:
            self._to_client += self._expect.popleft().local or b""

    def _parse_worker(self) -> None:
        buf, pos = self._worker, 0
        try:
            while True:
                if self._answer_left:
                    pos, self._answer_left = self._stream(
                        buf, pos, self._answer_left, self._to_client
                    )
                    if self._answer_left:
                        return
                self._answer_local()
                if len(buf) == pos:
                    return
                if not self._expect:
                    raise Refused("worker", "the worker sent bytes nobody asked for")
                if len(buf) - pos < _U64.size:
                    return
                expect = self._expect[0]
                (size,) = _U64.unpack_from(buf, pos)
                if size != expect.size:
                    raise Refused("worker", f"{expect.command.name} answer of {size} bytes")
                if expect.command is Command.GET_TENSOR:
                    self._expect.popleft()
                    self._to_client += buf[pos : pos + _U64.size]
                    pos, self._answer_left = pos + _U64.size, size
                    continue
                if len(buf) - pos < _U64.size + size:
                    return
                body = bytes(buf[pos + _U64.size : pos + _U64.size + size])
                pos += _U64.size + size
                self._expect.popleft()
                self._to_client += _U64.pack(size) + self.ledger.answered(
                    expect.command, expect.arg, body
                )
        finally:
            del buf[:pos]
